"""Build the lineage graph from store rows: a pure function of `LineageRows` (no I/O).

Joins in DESIGN.md order, within and across platforms:
  1. registry fields: version `run_id` → run; `models:/<id>` → LoggedModel → `source_run_id`;
  2. artifact origin: the version's MLmodel `run_id` / `model_id` → the run / LoggedModel that made
     it, on any collected source (the cross-platform join for copied artifacts);
  3. run inputs: dataset → run; Delta source → table@version (0 and unknown kept apart);
  4. serving config: endpoint served entities → model versions (when a collector provides them);
  6. conventions: git SHA (recorded by the collector with its field), `delta_feature_version`
     filling an unknown Delta version, the `waymark.migrated_from` version tag.
A link that cannot be proven becomes a named gap on the node; two candidates are a gap naming
both, never a pick. Frames are walked as bulk-converted row tuples (100k runs build in seconds).
"""
from __future__ import annotations

import gc
from collections import defaultdict
from typing import Any

import pandas as pd

from lineage.conventions import parse_migrated_from
from lineage.graph import Basis, EdgeKind, Evidence, Gap, GapKind, LineageGraph, NodeType
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


def node_id(type: NodeType, scope: str | None, key: str) -> str:
    return f"{type.value}:{key}" if scope is None else f"{type.value}:{scope}:{key}"


def table_node_id(scope: str, name: str, version: int | None) -> str:
    return node_id(NodeType.TABLE, scope, f"{name}@{UNKNOWN_VERSION if version is None else version}")


def build_graph(rows: LineageRows) -> LineageGraph:
    """The graph of `rows` (conventions were applied when the rows were read: see `lineage.load`)."""
    # Hundreds of thousands of small dicts: the cyclic GC would rescan them again and again while
    # nothing here can form a reference cycle, so it is paused for the build (≈ a third of the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Builder(rows).build()
    finally:
        if enabled:
            gc.enable()


class _Builder:
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
        self._ambiguous_runs: set[str] = set()

    def ev(self, field: str, snapshot_id: Any, source: str, basis: Basis, seen_since: Any = None,
           detail: str | None = None) -> Evidence:
        return Evidence(field, int(snapshot_id), source, basis, _i(seen_since), detail)

    def gap(self, kind: GapKind, node: str, message: str, candidates: list[str] | tuple[str, ...] = ()) -> None:
        self.graph.add_gap(Gap(kind, node, message, tuple(sorted(candidates))))

    def build(self) -> LineageGraph:
        g = self.graph
        g.snapshots = {s: {"snapshot_id": p.snapshot_id, "finished_at": p.finished_at.isoformat(),
                           "platform": p.platform, "scope": self.scopes.of(s)}
                       for s, p in sorted(self.rows.points.items())}
        g.scopes = dict(self.scopes.scope)
        g.alias_history = self._alias_history()
        experiments = self._experiments()
        self._runs(experiments)
        self._run_inputs()
        self._logged_models()
        self._model_versions()
        self._aliases()
        self._endpoints()
        g.freeze()
        self._break_cycles()
        return g

    # -- tracking --------------------------------------------------------------------------------
    def _experiments(self) -> dict[tuple[str, str], str]:
        out = {}
        for r in _rows(self.rows.experiments):
            scope = self.scopes.of(r.source)
            nid = self.graph.add_node(node_id(NodeType.EXPERIMENT, scope, r.experiment_id), NodeType.EXPERIMENT,
                                      self.scopes.platform[r.source], _s(r.name) or r.experiment_id,
                                      source=r.source, experiment_id=r.experiment_id)
            out[(r.source, r.experiment_id)] = nid
        return out

    def _runs(self, experiments: dict[tuple[str, str], str]) -> None:
        g = self.graph
        conv_cols = [(f"conv_param_{i}", p) for i, p in enumerate(self.rows.version_params)
                     if f"conv_param_{i}" in self.rows.runs.columns]
        self.run_conventions: dict[str, dict[str, str]] = {}
        for r in _rows(self.rows.runs):
            scope = self.scopes.of(r.source)
            exp_node = experiments.get((r.source, _s(r.experiment_id)))
            sha = _s(r.git_sha)
            nid = g.add_node(node_id(NodeType.RUN, scope, r.run_id), NodeType.RUN, self.scopes.platform[r.source],
                             _s(r.run_name) or r.run_id, None, source=r.source, run_id=r.run_id,
                             run_name=_s(r.run_name), experiment_id=_s(r.experiment_id),
                             experiment=g.node_data(exp_node)["name"] if exp_node else None,
                             status=_s(r.status), lifecycle_stage=_s(r.lifecycle_stage),
                             start_time=_i(r.start_time), git_sha=sha, git_sha_from=_s(r.git_sha_from),
                             collected=True)
            self.runs_by_id[r.run_id].append(nid)
            self.run_node[(r.source, r.run_id)] = nid
            if exp_node:
                g.add_edge(exp_node, nid, EdgeKind.EXPERIMENT_RUN,
                           self.ev("runs.experiment_id", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))
            if sha:
                commit = g.add_node(node_id(NodeType.COMMIT, None, sha), NodeType.COMMIT, None, sha, sha=sha)
                g.add_edge(commit, nid, EdgeKind.CODE_VERSION,
                           self.ev(f"runs.git_sha (from {_s(r.git_sha_from) or 'unknown field'})", r.snapshot_id, r.source,
                                   Basis.CONVENTION, r.valid_from))
            else:
                self.gap(GapKind.NO_GIT_SHA, nid, f"run {r.run_id} ({_s(r.run_name) or 'unnamed'}) records no git "
                         "commit: no mlflow.source.git.commit tag and no git SHA param")
            if _s(r.lifecycle_stage) == "deleted":
                self.gap(GapKind.RUN_DELETED, nid, f"run {r.run_id} is deleted in {r.source}; its record may be "
                         "purged at any time")
            if conv_cols:
                found = {param: v for col, param in conv_cols if (v := _s(getattr(r, col)))}
                if found:
                    self.run_conventions[nid] = found

    def _run_inputs(self) -> None:
        g = self.graph
        frame = self.rows.run_inputs
        with_inputs: set[str] = set()
        # Unversioned Delta inputs per run, to decide whether a version param can fill them.
        unversioned: dict[str, list[str]] = defaultdict(list)
        delta_rows = []
        for r in _rows(frame):
            run = self.run_node.get((r.source, r.run_id))
            if run is None:
                continue
            with_inputs.add(run)
            scope = self.scopes.of(r.source)
            platform = self.scopes.platform[r.source]
            name = _s(r.dataset_name) or "dataset"
            digest = _s(r.digest) or "nodigest"
            ds = g.add_node(node_id(NodeType.DATASET, scope, f"{name}@{digest}"), NodeType.DATASET, platform, name,
                            digest, source=r.source, digest=digest, source_type=_s(r.source_type), path=_s(r.path))
            g.add_edge(ds, run, EdgeKind.DATASET_INPUT,
                       self.ev("run.inputs.dataset_inputs", r.snapshot_id, r.source, Basis.RUN_INPUT, r.valid_from,
                               detail=f"context={_s(r.context) or 'none'}"))
            table = _s(r.table_name) or (_s(r.path) if _s(r.source_type) == "delta_table" else None)
            if table is None:
                continue
            known = bool(r.version_known) if r.version_known is not None else False
            version = _i(r.table_version) if known else None
            if version is None:
                unversioned[run].append(ds)
            delta_rows.append((r, run, ds, table, version))
        for r, run, ds, table, version in delta_rows:
            scope = self.scopes.of(r.source)
            platform = self.scopes.platform[r.source]
            evidence = self.ev("run_inputs.source_json.delta_table_version", r.snapshot_id, r.source,
                               Basis.RUN_INPUT, r.valid_from)
            if version is None:
                filled = self._convention_version(run, ds, table, unversioned[run], r)
                if filled is not None:
                    version, evidence = filled
            tid = g.add_node(table_node_id(scope, table, version), NodeType.TABLE, platform, table,
                             UNKNOWN_VERSION if version is None else str(version), source=r.source,
                             table=table, version_known=version is not None,
                             version_from=evidence.field if version is not None else None)
            g.add_edge(tid, ds, EdgeKind.TABLE_READ_AS_DATASET, evidence)
            if version is None:
                self.gap(GapKind.UNVERSIONED_INPUT, tid, f"run {r.run_id} read {table} without a recorded Delta "
                         "version: unknown, or 0 (MLflow omits version 0 from the dataset source)")
        for (_source, run_id), nid in self.run_node.items():
            if nid not in with_inputs:
                self.gap(GapKind.NO_INPUTS, nid, f"run {run_id} records no "
                         "dataset inputs: the data it trained on is not known")

    def _convention_version(self, run: str, ds: str, table: str, unversioned: list[str], r: Any):
        params = self.run_conventions.get(run) or {}
        if not params:
            return None
        if len(set(unversioned)) > 1:
            if run in self._ambiguous_runs:
                return None
            self._ambiguous_runs.add(run)
            self.gap(GapKind.AMBIGUOUS, run, f"convention param(s) {sorted(params)} could version any of "
                     f"{len(set(unversioned))} unversioned Delta inputs; none picked", sorted(set(unversioned)))
            return None
        if len(set(params.values())) > 1:
            self.gap(GapKind.AMBIGUOUS, run, f"convention params disagree on the Delta version of {table}: "
                     f"{params}; none picked", [f"{table}@{v}" for v in params.values()])
            return None
        param, value = next(iter(params.items()))
        try:
            version = int(value)
        except ValueError:
            return None
        return version, self.ev(f"runs.params.{param}", r.snapshot_id, r.source, Basis.CONVENTION, r.valid_from,
                                detail="the Delta source recorded no version; filled from the run param")

    # -- models ----------------------------------------------------------------------------------
    def _logged_models(self) -> None:
        g = self.graph
        for r in _rows(self.rows.logged_models):
            scope = self.scopes.of(r.source)
            nid = g.add_node(node_id(NodeType.LOGGED_MODEL, scope, r.model_id), NodeType.LOGGED_MODEL,
                             self.scopes.platform[r.source], _s(r.name) or r.model_id, None, source=r.source,
                             model_id=r.model_id, source_run_id=_s(r.source_run_id))
            self.models_by_id[r.model_id].append(nid)
            self.model_node[(r.source, r.model_id)] = nid
            run_id = _s(r.source_run_id)
            if run_id is None:
                continue
            run = self.run_node.get((r.source, run_id))
            if run is None:
                self.gap(GapKind.RUN_NOT_FOUND, nid, f"logged model {r.model_id} names source run {run_id}, "
                         f"which {r.source} does not hold (deleted or in another workspace)")
                continue
            g.add_edge(run, nid, EdgeKind.RUN_LOGGED_MODEL,
                       self.ev("logged_models.source_run_id", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))

    def _model_versions(self) -> None:
        g = self.graph
        frame = self.rows.model_versions
        for r in _rows(frame):
            scope = self.scopes.of(r.source)
            platform = self.scopes.platform[r.source]
            nid = g.add_node(node_id(NodeType.MODEL_VERSION, scope, f"{r.name}/{r.version}"), NodeType.MODEL_VERSION,
                             platform, r.name, str(r.version), source=r.source, status=_s(r.status),
                             stage=_s(r.stage), source_uri=_s(r.source_uri), run_id=_s(r.run_id),
                             model_id=_s(r.model_id), creation_time=_i(r.creation_time))
            self.versions_by_key[(platform, r.name, str(r.version))].append(nid)
            self.version_node[(r.source, r.name, str(r.version))] = nid
        origins = {(r.source, r.name, str(r.version)): r for r in _rows(self.rows.model_origins)}
        tag_cols = [(f"conv_tag_{i}", t) for i, t in enumerate(self.rows.migration_tags)
                    if f"conv_tag_{i}" in frame.columns]
        for r in _rows(frame):
            key = (r.source, r.name, str(r.version))
            nid = self.version_node[key]
            linked = self._registry_links(r, nid)
            linked |= self._origin_links(r, nid, origins.get(key), registry_run=_s(r.run_id))
            for col, tag in tag_cols:
                value = _s(getattr(r, col))
                if value:
                    linked |= self._migration_link(r, nid, tag, value)
            if not linked and (origin := origins.get(key)) is not None and _s(origin.read_status) == "unreadable":
                self.gap(GapKind.ORIGIN_UNREADABLE, nid, f"{r.name}/{r.version}: no run or model in the registry, "
                         f"and its MLmodel could not be read ({_s(origin.detail) or 'no detail'})")
            elif not linked:
                where = _s(r.source_uri) or "an unknown location"
                self.gap(GapKind.NO_ORIGIN, nid, f"{r.name}/{r.version} was registered from {where} with no run, "
                         "no logged model and no MLmodel origin: what produced it is not recorded")

    def _registry_links(self, r: Any, nid: str) -> bool:
        g = self.graph
        linked = False
        run_id = _s(r.run_id)
        if run_id:
            run = self.run_node.get((r.source, run_id))
            if run is None:
                # Another collector of the same workspace (e.g. the Databricks UC registry next to
                # the MLflow tracking source) may hold the run: one candidate is a link, two a gap.
                others = self._candidates(self.runs_by_id, run_id, r.source)
                if len(others) > 1:
                    self.gap(GapKind.AMBIGUOUS, nid, f"{r.name}/{r.version} names run {run_id}, held by "
                             f"{len(others)} sources; none picked", others)
                    return False
                run = others[0] if others else None
            if run is None:
                run = g.add_node(node_id(NodeType.RUN, self.scopes.of(r.source), run_id), NodeType.RUN,
                                 self.scopes.platform[r.source], run_id, None, source=r.source, run_id=run_id,
                                 collected=False)
                self.gap(GapKind.RUN_NOT_FOUND, run, f"{r.name}/{r.version} names run {run_id}, which {r.source} "
                         "does not hold (deleted and purged, or in a workspace not collected)")
            g.add_edge(run, nid, EdgeKind.RUN_REGISTERED,
                       self.ev("model_versions.run_id", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))
            linked = True
        model_id = _s(r.model_id)
        if model_id:
            model = self.model_node.get((r.source, model_id))
            if model is None:
                self.gap(GapKind.LOGGED_MODEL_NOT_FOUND, nid, f"{r.name}/{r.version} names logged model {model_id}, "
                         f"which {r.source} does not hold")
            else:
                field = ("model_versions.source (models:/<id>)" if _s(r.source_uri) == f"models:/{model_id}"
                         else "model_versions.model_id")
                g.add_edge(model, nid, EdgeKind.MODEL_REGISTERED,
                           self.ev(field, r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))
                linked = True
        return linked

    def _candidates(self, index: dict[str, list[str]], key: str, source: str) -> list[str]:
        """Same-source match first (ids are unique per workspace); else every source that holds it."""
        found = index.get(key, [])
        attrs = {n: self.graph.node_data(n)["attrs"] for n in found}
        same = [n for n in found if attrs[n].get("source") == source and attrs[n].get("collected", True)]
        return same or [n for n in found if attrs[n].get("collected", True)]

    def _origin_links(self, r: Any, nid: str, origin: Any, registry_run: str | None) -> bool:
        if origin is None or _s(origin.read_status) != "ok":
            return False
        g = self.graph
        linked = False
        run_id = _s(origin.origin_run_id)
        if run_id:
            runs = self._candidates(self.runs_by_id, run_id, r.source)
            if len(runs) == 1:
                g.add_edge(runs[0], nid, EdgeKind.ARTIFACT_ORIGIN,
                           self.ev("model_origins.origin_run_id (MLmodel run_id)", origin.snapshot_id, r.source,
                                   Basis.ARTIFACT_ORIGIN, origin.valid_from))
                linked = True
            elif len(runs) > 1:
                self.gap(GapKind.AMBIGUOUS, nid, f"the MLmodel of {r.name}/{r.version} names run {run_id}, held by "
                         f"{len(runs)} sources; none picked", runs)
            elif not registry_run:
                self.gap(GapKind.RUN_NOT_FOUND, nid, f"the MLmodel of {r.name}/{r.version} names run {run_id}, which "
                         "no collected source holds (deleted, or in a workspace not collected)")
            if registry_run and registry_run != run_id:
                self.gap(GapKind.ORIGIN_CONFLICT, nid, f"{r.name}/{r.version}: the registry names run {registry_run} "
                         f"but its MLmodel names run {run_id}; both are shown",
                         [registry_run, run_id])
        model_id = _s(origin.origin_model_id) or (
            _s(origin.origin_model_uuid) if (_s(origin.origin_model_uuid) or "").startswith("m-") else None)
        if model_id:
            models = self._candidates(self.models_by_id, model_id, r.source)
            if len(models) == 1:
                g.add_edge(models[0], nid, EdgeKind.ARTIFACT_ORIGIN,
                           self.ev("model_origins.origin_model_id (MLmodel model_id)", origin.snapshot_id, r.source,
                                   Basis.ARTIFACT_ORIGIN, origin.valid_from))
                linked = True
            elif len(models) > 1:
                self.gap(GapKind.AMBIGUOUS, nid, f"the MLmodel of {r.name}/{r.version} names logged model {model_id}, "
                         f"held by {len(models)} sources; none picked", models)
        return linked

    def _migration_link(self, r: Any, nid: str, tag: str, value: str) -> bool:
        parsed = parse_migrated_from(value)
        if parsed is None:
            self.gap(GapKind.MIGRATION_SOURCE_NOT_FOUND, nid, f"{r.name}/{r.version}: tag {tag}={value!r} is not "
                     "in the documented form <platform>:<model>/<version>")
            return False
        candidates = [c for c in self.versions_by_key.get(parsed, []) if c != nid]
        if len(candidates) == 1:
            self.graph.add_edge(candidates[0], nid, EdgeKind.MIGRATED_FROM,
                                self.ev(f"model_versions.tags.{tag}", r.snapshot_id, r.source, Basis.CONVENTION,
                                        r.valid_from, detail=value))
            return True
        if candidates:
            self.gap(GapKind.AMBIGUOUS, nid, f"{r.name}/{r.version}: tag {tag}={value!r} matches versions on "
                     f"{len(candidates)} sources; none picked", candidates)
        else:
            self.gap(GapKind.MIGRATION_SOURCE_NOT_FOUND, nid, f"{r.name}/{r.version}: tag {tag}={value!r} names a "
                     "version no collected source holds at this time")
        return False

    def _aliases(self) -> None:
        g = self.graph
        for r in _rows(self.rows.model_aliases):
            scope = self.scopes.of(r.source)
            nid = g.add_node(node_id(NodeType.ALIAS, scope, f"{r.name}@{r.alias}"), NodeType.ALIAS,
                             self.scopes.platform[r.source], r.name, str(r.version), source=r.source, alias=r.alias,
                             model=r.name, points_to=str(r.version), since_snapshot=_i(r.valid_from))
            version = self.version_node.get((r.source, r.name, str(r.version)))
            if version is None:
                version = g.add_node(node_id(NodeType.MODEL_VERSION, scope, f"{r.name}/{r.version}"),
                                     NodeType.MODEL_VERSION, self.scopes.platform[r.source], r.name, str(r.version),
                                     source=r.source, collected=False)
                self.gap(GapKind.NO_ORIGIN, version, f"alias {r.name}@{r.alias} points at version {r.version}, "
                         f"which {r.source} did not list")
            g.add_edge(version, nid, EdgeKind.ALIAS_OF,
                       self.ev("model_aliases.version", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))

    def _endpoints(self) -> None:
        """Serving entities (kind 4): rows of source, endpoint, model_name, model_version[, traffic_pct]."""
        frame = self.rows.endpoints
        if frame is None or frame.empty:
            return
        g = self.graph
        for r in _rows(frame):
            scope = self.scopes.of(r.source)
            nid = g.add_node(node_id(NodeType.ENDPOINT, scope, r.endpoint), NodeType.ENDPOINT,
                             self.scopes.platform[r.source], r.endpoint, None, source=r.source)
            version = self.version_node.get((r.source, r.model_name, str(r.model_version)))
            if version is None:
                candidates = self.versions_by_key.get((self.scopes.platform[r.source], r.model_name,
                                                       str(r.model_version)), [])
                version = candidates[0] if len(candidates) == 1 else None
            if version is None:
                self.gap(GapKind.NO_ORIGIN, nid, f"endpoint {r.endpoint} serves {r.model_name}/{r.model_version}, "
                         "which no collected registry holds")
                continue
            g.add_edge(version, nid, EdgeKind.SERVES,
                       self.ev("endpoints.served_entities", r.snapshot_id, r.source, Basis.SERVING, r.valid_from))

    # -- history and checks -----------------------------------------------------------------------
    def _alias_history(self) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        out: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in _rows(self.rows.alias_history):
            out[(r.source, r.name, r.alias)].append({
                "version": str(r.version), "valid_from": int(r.valid_from), "valid_to": _i(r.valid_to),
                "seen_from": pd.Timestamp(r.seen_from).isoformat(),
                "seen_until": None if r.seen_until is None else pd.Timestamp(r.seen_until).isoformat()})
        return dict(out)

    def _break_cycles(self) -> None:
        """Edges point downstream, so a cycle can only come from a convention (a migration tag loop)."""
        g = self.graph
        while (cycle := g.find_cycle()) is not None:
            weakest = next(((s, t) for s, t in cycle if g.g.edges[s, t]["evidence"].basis == Basis.CONVENTION),
                           cycle[-1])
            g.g.remove_edge(*weakest)
            self.gap(GapKind.CYCLE, weakest[1], f"the link {weakest[0]} → {weakest[1]} would close a cycle "
                     f"({' → '.join(s for s, _ in cycle)}); it was dropped", [s for s, _ in cycle])

