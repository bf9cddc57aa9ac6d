"""Shared state of the lineage builder: row helpers, node ids, and the node constructors that
several evidence kinds use (a table as a whole, an endpoint, the model version a row names).
The evidence kinds themselves live in `lineage.evidence_*`; `lineage.build` composes them."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, NamedTuple

import pandas as pd

from lineage.graph import Basis, Evidence, Gap, GapKind, LineageGraph, NodeType
from store.lineage_rows import LineageRows

UNKNOWN_VERSION = "unknown"


def _s(value: Any) -> str | None:
    """A cell as a clean string, or None for NULL/empty (rows come through `_rows`: NaN is None)."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return text if text.strip() else None


def _i(value: Any) -> int | None:
    return None if value is None else int(value)


def _rows(frame: pd.DataFrame):
    """Rows as namedtuples with NULL/NaN as None, columns converted in bulk (Arrow-backed string
    columns are slow to iterate cell by cell)."""
    if frame is None or frame.empty:
        return iter(())
    columns = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns]
    from collections import namedtuple

    Row = namedtuple("Row", list(frame.columns), rename=True)
    return map(Row._make, zip(*columns))


class Scopes:
    """The scope segment of node ids: the platform, or `platform/source` when two sources of the
    same collector kind share a platform (two MLflow workspaces on Databricks would otherwise give
    colliding run ids). Sources of different kinds on one platform (the MLflow source and the
    Databricks workspace source of one workspace) share the plain platform scope, so the table
    both of them see is one node."""

    def __init__(self, source_platforms: dict[str, str], source_kinds: dict[str, str] | None = None):
        kinds = source_kinds or {}
        per_group: dict[tuple[str, str], list[str]] = defaultdict(list)
        for source, platform in source_platforms.items():
            per_group[(platform, kinds.get(source, "mlflow"))].append(source)
        self.platform = dict(source_platforms)
        self.scope = {s: (p if len(per_group[(p, kinds.get(s, "mlflow"))]) == 1 else f"{p}/{s}")
                      for s, p in source_platforms.items()}

    def of(self, source: str) -> str:
        return self.scope[source]


def _json_list(raw: Any) -> list[str]:
    """A JSON list column read as text (or already a list) → its strings; anything else → []."""
    if raw is None:
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [str(v) for v in value if v is not None and str(v).strip()] if isinstance(value, list) else []


def _json_dict(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}


def node_id(type: NodeType, scope: str | None, key: str) -> str:
    return f"{type.value}:{key}" if scope is None else f"{type.value}:{scope}:{key}"


def table_node_id(scope: str, name: str, version: int | None) -> str:
    return node_id(NodeType.TABLE, scope, f"{name}@{UNKNOWN_VERSION if version is None else version}")


class _Delta(NamedTuple):
    """One Delta input of a run: its row, run and dataset nodes, table, and recorded version."""
    r: Any
    run: str
    ds: str
    table: str
    version: int | None


def _run_id_of(graph: LineageGraph, run: str) -> str:
    return graph.node_data(run)["attrs"].get("run_id", run)


class BuilderState:
    def __init__(self, rows: LineageRows):
        self.rows = rows
        platforms = dict(rows.source_platforms)
        for source, point in rows.points.items():
            platforms.setdefault(source, point.platform)
        self.scopes = Scopes(platforms, rows.source_kinds)
        self.graph = LineageGraph()
        self.runs_by_id: dict[str, list[str]] = defaultdict(list)            # run_id → node ids (all sources)
        self.run_node: dict[tuple[str, str], str] = {}                       # (source, run_id) → node id
        self.models_by_id: dict[str, list[str]] = defaultdict(list)          # logged model id → node ids
        self.model_node: dict[tuple[str, str], str] = {}
        self.versions_by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (platform, name, version)
        self.version_node: dict[tuple[str, str, str], str] = {}              # (source, name, version)
        self.migrations: list[tuple[str, str, Any, str, str]] = []          # (source version, copy, row, tag, value)
        # (platform, table name) → {table@version node: (source, snapshot_id, valid_from)} of run reads.
        self.table_versions: dict[tuple[str, str], dict[str, tuple[str, Any, Any]]] = defaultdict(dict)
        self.whole_tables: dict[str, tuple[str, str]] = {}                  # table node → (platform, name)
        self.endpoint_nodes: dict[tuple[str, str], str] = {}                # (scope, endpoint name) → node id
        self.job_runs: dict[tuple[str, str], list[Any]] = defaultdict(list)  # (platform, job_run_id) → rows

    def ev(self, field: str, snapshot_id: Any, source: str, basis: Basis, seen_since: Any = None,
           detail: str | None = None) -> Evidence:
        return Evidence(field, int(snapshot_id), source, basis, _i(seen_since), detail)

    def gap(self, kind: GapKind, node: str, message: str, candidates: list[str] | tuple[str, ...] = ()) -> None:
        self.graph.add_gap(Gap(kind, node, message, tuple(sorted(candidates)) if candidates else ()))

    # -- node constructors shared by several evidence kinds ----------------------------------------
    def _table(self, source: str, name: str, **attrs: Any) -> str:
        """The table as a whole (no version): what lineage, dependencies and features name."""
        name = name.rstrip("/") or name
        platform = self.scopes.platform[source]
        nid = self.graph.add_node(node_id(NodeType.TABLE, self.scopes.of(source), name), NodeType.TABLE, platform,
                                  name, None, source=source, table=name, whole_table=True, **attrs)
        self.whole_tables[nid] = (platform, name)
        return nid

    def _version_for(self, source: str, name: str, version: str) -> tuple[str | None, list[str]]:
        """The model version a serving/feature/dependency row names: same source first, else the
        one version of that name on the platform; (None, candidates) when none or several."""
        nid = self.version_node.get((source, name, version))
        if nid is not None:
            return nid, [nid]
        found = [c for c in self.versions_by_key.get((self.scopes.platform[source], name, version), [])
                 if self.graph.node_data(c)["attrs"].get("collected", True)]
        return (found[0] if len(found) == 1 else None), found


    def _endpoint(self, source: str, name: str, **attrs: Any) -> str:
        scope = self.scopes.of(source)
        nid = self.graph.add_node(node_id(NodeType.ENDPOINT, scope, name), NodeType.ENDPOINT,
                                  self.scopes.platform[source], name, None, source=source, endpoint=name, **attrs)
        self.endpoint_nodes[(scope, name)] = nid
        return nid
