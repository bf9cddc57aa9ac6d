"""The lineage graph: a thin typed wrapper around `nx.DiGraph` (DESIGN.md "Vocabulary of the lineage graph").

Edges point downstream: table → dataset → run → logged_model → model_version → alias, and
model_version → endpoint (commit → run, experiment → run, model_version → model_version for
migrations). Data lineage from the platform collectors: table → table (UC table lineage, a table
to the versions of it that runs read, storage identity across platforms), table → feature →
model_version (feature lineage), table → model_version (UC model-version dependencies),
table → vector_index and embedding endpoint → vector_index. Every edge carries `kind` (EdgeKind),
`evidence` (the field and snapshot that prove it, and how strong the proof is) and, for serving,
`attrs` (traffic % and the routes: served entities or deployments).

Node ids are stable and readable: `<type>:<scope>:<key>` where scope is the platform, e.g.
`run:databricks:<run_id>`, `model_version:fabric:churn_model/2`, `alias:fabric:churn_model@Production`,
`table:databricks:churn.gold.features@12` (a version read by a run; `@unknown` when the version is
not recorded — never confused with `@0`), `table:databricks:churn.gold.features` (the table as a
whole, no `@`: what UC lineage, dependencies, features and storage identity name),
`table:fabric:abfss://<ws>@onelake…/<item>/Tables/dbo/<shortcut>` (a OneLake shortcut),
`feature_table:databricks:<catalog.schema.feature>` (one UC feature), `dataset:databricks:features@<digest>`,
`logged_model:databricks:m-…`, `experiment:databricks:<experiment_id>`,
`endpoint:databricks:churn-scoring`, `endpoint:azureml:churn-aml` (deployments are edge routes, not
nodes), `vector_index:databricks:<name>`; a commit has no platform: `commit:<sha>`. When the store
holds two sources of the same kind on one platform, the scope of the entities of
those sources becomes `<platform>/<source>` (e.g. `run:databricks/dbx-west:<id>`), so ids never
collide; they stay stable as long as the set of sources per platform does not change. Sources of
different collector kinds on one platform (MLflow and the Databricks workspace collector) share
the plain platform scope: they describe one workspace.

Gaps (links that cannot be proven) are attached to the node where they occur, so a trace collects
them by walking the nodes it visits.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

import networkx as nx


class NodeType(str, Enum):
    """What a node is (meanings: lineage/vocabulary.py)."""
    TABLE = "table"
    FEATURE_TABLE = "feature_table"
    DATASET = "dataset"
    EXPERIMENT = "experiment"
    RUN = "run"
    COMMIT = "commit"
    LOGGED_MODEL = "logged_model"
    MODEL_VERSION = "model_version"
    ALIAS = "alias"
    ENDPOINT = "endpoint"
    VECTOR_INDEX = "vector_index"
    SEARCH_INDEX = "search_index"


# Upstream-to-downstream rank: every edge goes from a lower rank to a higher one, except
# model_version → model_version (a migration copy), which stays within its rank.
NODE_RANK: dict[NodeType, int] = {
    NodeType.TABLE: 0, NodeType.FEATURE_TABLE: 1, NodeType.DATASET: 2, NodeType.EXPERIMENT: 2,
    NodeType.COMMIT: 2, NodeType.RUN: 3, NodeType.LOGGED_MODEL: 4, NodeType.MODEL_VERSION: 5,
    NodeType.ALIAS: 6, NodeType.ENDPOINT: 7, NodeType.VECTOR_INDEX: 8, NodeType.SEARCH_INDEX: 8,
}


class EdgeKind(str, Enum):
    """What an edge says (direction and meaning of each: lineage/vocabulary.py)."""
    TABLE_READ_AS_DATASET = "table_read_as_dataset"
    DATASET_INPUT = "dataset_input"
    FEATURE_LOOKUP = "feature_lookup"
    TABLE_FEEDS_FEATURES = "table_feeds_features"
    SAME_STORAGE = "same_storage"
    TABLE_LINEAGE = "table_lineage"
    TABLE_VERSION = "table_version"
    MODEL_DEPENDENCY = "model_dependency"
    DECLARED_INPUT_VERSION = "declared_input_version"
    CODE_VERSION = "code_version"
    EXPERIMENT_RUN = "experiment_run"
    RUN_LOGGED_MODEL = "run_logged_model"
    RUN_REGISTERED = "run_registered"
    MODEL_REGISTERED = "model_registered"
    ARTIFACT_ORIGIN = "artifact_origin"
    MIGRATED_FROM = "migrated_from"
    ALIAS_OF = "alias_of"
    SERVES = "serves"
    INDEXES = "indexes"
    EMBEDS = "embeds"


# Edge kinds that join two nodes of one rank (every other edge goes from a lower rank to a higher one).
WITHIN_RANK_KINDS = frozenset({EdgeKind.MIGRATED_FROM, EdgeKind.TABLE_LINEAGE, EdgeKind.TABLE_VERSION,
                               EdgeKind.SAME_STORAGE})


class Basis(str, Enum):
    """How strong the proof of an edge is, strongest first (DESIGN.md evidence kinds 1–6)."""
    REGISTRY = "registry"
    ARTIFACT_ORIGIN = "artifact_origin"
    RUN_INPUT = "run_input"
    SERVING = "serving"
    STORAGE_IDENTITY = "storage_identity"
    CONVENTION = "convention"


class GapKind(str, Enum):
    """A link that cannot be proven, or two fields that disagree (meanings: lineage/vocabulary.py)."""
    NO_GIT_SHA = "no_git_sha"
    RUN_NOT_FOUND = "run_not_found"
    RUN_DELETED = "run_deleted"
    LOGGED_MODEL_NOT_FOUND = "logged_model_not_found"
    UNVERSIONED_INPUT = "unversioned_input"
    NO_INPUTS = "no_inputs"
    NO_ORIGIN = "no_origin"
    ORIGIN_UNREADABLE = "origin_unreadable"
    ORIGIN_CONFLICT = "origin_conflict"
    MIGRATION_SOURCE_NOT_FOUND = "migration_source_not_found"
    AMBIGUOUS = "ambiguous"
    ALIAS_MOVED_AFTER = "alias_moved_after"
    CYCLE = "cycle"
    COMMIT_MISMATCH = "commit_mismatch"
    INVALID_GIT_SHA = "invalid_git_sha"
    INPUT_VERSION_CONFLICT = "input_version_conflict"
    NO_RUN = "no_run"
    SERVED_VERSION_NOT_FOUND = "served_version_not_found"
    ENDPOINT_NOT_FOUND = "endpoint_not_found"


class Evidence(NamedTuple):
    """The field and snapshot that prove an edge. `snapshot_id` is the snapshot the graph was read
    at for that source; `seen_since` the snapshot that first recorded the value. (A NamedTuple:
    hundreds of thousands are made per build.)"""
    field: str
    snapshot_id: int
    source: str
    basis: Basis
    seen_since: int | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self._asdict()
        out["basis"] = self.basis.value
        return {k: v for k, v in out.items() if v is not None}


class Gap(NamedTuple):
    """A link that cannot be proven, on `node`. (A NamedTuple, like Evidence: a 100k-run build makes
    hundreds of thousands, and a frozen dataclass's __init__ was a visible share of the build.)"""
    kind: GapKind
    node: str
    message: str
    candidates: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gap": self.kind.value, "node": self.node, "message": self.message}
        if self.candidates:
            out["candidates"] = list(self.candidates)
        return out


@dataclass(frozen=True)
class Node:
    id: str
    type: NodeType
    platform: str | None
    name: str
    version: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type.value, "platform": self.platform, "name": self.name,
                "version": self.version, "attrs": self.attrs}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    evidence: Evidence
    attrs: dict[str, Any] = field(default_factory=dict)   # serving: traffic_pct and routes
    corroborated_by: tuple[dict[str, Any], ...] = ()      # further fields proving the same link

    def to_dict(self) -> dict[str, Any]:
        out = {"source": self.source, "target": self.target, "kind": self.kind.value,
               "evidence": self.evidence.to_dict()}
        if self.corroborated_by:
            out["evidence"]["corroborated_by"] = list(self.corroborated_by)
        if self.attrs:
            out["attrs"] = self.attrs
        return out


class LineageGraph:
    """Typed access to the DiGraph; nodes and edges are added only through this class."""

    def __init__(self) -> None:
        self.g = nx.DiGraph()
        self.gaps: dict[str, list[Gap]] = {}
        # Filled by the builder: {source: {snapshot_id, finished_at, platform}} the graph was read at.
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.scopes: dict[str, str] = {}                       # source → scope segment of node ids
        # (source, model, alias) → every assignment ever seen, for "moved after" (all times, not as-of).
        self.alias_history: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        # (source, endpoint) → {"first_seen": snapshot id, "current": bool}: every endpoint ever seen.
        self.endpoint_history: dict[tuple[str, str], dict[str, Any]] = {}
        self._by_type: dict[NodeType, list[str]] | None = None
        self._staged_nodes: dict[str, dict[str, Any]] = {}
        self._staged_edges: dict[tuple[str, str], dict[str, Any]] = {}

    # -- building --------------------------------------------------------------------------------
    # Nodes and edges are staged in dicts and handed to networkx in bulk by `freeze()`: per-call
    # `DiGraph.add_node/add_edge` dominated the build time on 100k-run stores.
    def add_node(self, node_id: str, type: NodeType, platform: str | None, name: str,
                 version: str | None = None, **attrs: Any) -> str:
        existing = self._staged_nodes.get(node_id) or (self.g.nodes[node_id] if node_id in self.g else None)
        if existing is not None:
            for k, v in attrs.items():
                if v is not None:
                    existing["attrs"][k] = v
            return node_id
        self._staged_nodes[node_id] = {"type": type, "platform": platform, "name": name, "version": version,
                                       "attrs": {k: v for k, v in attrs.items() if v is not None}}
        return node_id

    def node_data(self, node_id: str) -> dict[str, Any]:
        staged = self._staged_nodes.get(node_id)
        return staged if staged is not None else self.g.nodes[node_id]

    def add_edge(self, source: str, target: str, kind: EdgeKind, evidence: Evidence,
                 attrs: dict[str, Any] | None = None) -> None:
        """One edge per pair: a second proof of the same link is kept as corroboration."""
        key = (source, target)
        data = self._staged_edges.get(key)
        if data is None and len(self.g) and self.g.has_edge(source, target):   # empty until freeze()
            data = self.g.edges[key]
        if data is None:
            self._staged_edges[key] = ({"kind": kind, "evidence": evidence, "attrs": attrs} if attrs
                                       else {"kind": kind, "evidence": evidence})
            return
        first: Evidence = data["evidence"]
        if (data["kind"], first.field, first.source) == (kind, evidence.field, evidence.source):
            return
        extra = data.setdefault("corroborated_by", [])
        if not any((e["kind"], e["field"], e["source"]) == (kind.value, evidence.field, evidence.source) for e in extra):
            extra.append({"kind": kind.value, **evidence.to_dict()})

    def has_edge(self, source: str, target: str) -> bool:
        """Whether an edge is staged or present (usable while building)."""
        return (source, target) in self._staged_edges or self.g.has_edge(source, target)

    def staged_edges(self) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
        """Edges added but not yet frozen, as ((source, target), data)."""
        return iter(self._staged_edges.items())

    def freeze(self) -> None:
        """Move staged nodes and edges into the DiGraph (an edge's ends must be staged or present)."""
        self.g.add_nodes_from(self._staged_nodes.items())
        self.g.add_edges_from((s, t, d) for (s, t), d in self._staged_edges.items())
        self._staged_nodes, self._staged_edges = {}, {}
        self._by_type = None

    def add_gap(self, gap: Gap) -> None:
        self.gaps.setdefault(gap.node, []).append(gap)

    # -- reading ---------------------------------------------------------------------------------
    def __contains__(self, node_id: object) -> bool:
        return node_id in self.g

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    def node_ids(self) -> list[str]:
        return list(self.g.nodes)

    def edge_count(self) -> int:
        return self.g.number_of_edges()

    def edge_data(self, source: str, target: str) -> dict[str, Any]:
        """The stored edge: `kind` (EdgeKind), `evidence` (Evidence), optional `attrs` and
        `corroborated_by`. Read it; change edges only through this class."""
        return self.g.edges[source, target]

    def remove_edge(self, source: str, target: str) -> None:
        """Drop one link (the builder breaks a cycle this way and records why as a gap)."""
        self.g.remove_edge(source, target)

    def node(self, node_id: str) -> Node:
        d = self.g.nodes[node_id]
        return Node(node_id, d["type"], d["platform"], d["name"], d["version"], d["attrs"])

    def edge(self, source: str, target: str) -> Edge:
        d = self.g.edges[source, target]
        return Edge(source, target, d["kind"], d["evidence"], d.get("attrs") or {}, tuple(d.get("corroborated_by", ())))

    def edge_dict(self, source: str, target: str) -> dict[str, Any]:
        return self.edge(source, target).to_dict()

    def nodes(self, type: NodeType | None = None) -> Iterator[Node]:
        ids = self.g.nodes if type is None else self.ids_of_type(type)
        for node_id in ids:
            yield self.node(node_id)

    def ids_of_type(self, type: NodeType) -> list[str]:
        if self._by_type is None:
            index: dict[NodeType, list[str]] = {t: [] for t in NodeType}
            for node_id, t in self.g.nodes(data="type"):
                index[t].append(node_id)
            self._by_type = index
        return self._by_type[type]

    def edges(self) -> Iterator[Edge]:
        for s, t in self.g.edges:
            yield self.edge(s, t)

    def predecessors(self, node_id: str) -> list[str]:
        return list(self.g.predecessors(node_id))

    def successors(self, node_id: str) -> list[str]:
        return list(self.g.successors(node_id))

    def gaps_of(self, node_ids: Iterable[str]) -> list[Gap]:
        return [gap for n in node_ids for gap in self.gaps.get(n, ())]

    def all_gaps(self) -> list[Gap]:
        return [gap for gaps in self.gaps.values() for gap in gaps]

    # -- traversal -------------------------------------------------------------------------------
    def ancestors(self, node_id: str, depth: int | None = None) -> set[str]:
        """Upstream nodes within `depth` hops (None: all), by breadth-first search."""
        return self._bfs(node_id, self.g.predecessors, depth)

    def descendants(self, node_id: str, depth: int | None = None) -> set[str]:
        """Downstream nodes within `depth` hops (None: all), by breadth-first search."""
        return self._bfs(node_id, self.g.successors, depth)

    @staticmethod
    def _bfs(start: str, step, depth: int | None) -> set[str]:
        seen = {start}
        queue = deque([(start, 0)])
        while queue:
            current, d = queue.popleft()
            if depth is not None and d >= depth:
                continue
            for nxt in step(current):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append((nxt, d + 1))
        seen.discard(start)
        return seen

    def subgraph_edges(self, node_ids: set[str]) -> list[tuple[str, str]]:
        return [(s, t) for s, t in self.g.subgraph(node_ids).edges]

    def cycle_edges(self) -> dict[tuple[str, str], list[str]]:
        """Every edge that lies on a cycle → the nodes of its strongly connected part, sorted. Every
        edge goes from a lower NODE_RANK to a higher one except edges within a rank (model_version →
        model_version migrations, table → table lineage, versions and storage identity), so a cycle
        can only lie among those: only they are searched (fast on 100k-run graphs)."""
        rank = {n: NODE_RANK[t] for n, t in self.g.nodes(data="type")}
        flat = nx.DiGraph([(s, t) for s, t in self.g.edges if rank[s] == rank[t]])
        out: dict[tuple[str, str], list[str]] = {}
        for part in nx.strongly_connected_components(flat):
            if len(part) > 1:
                out.update({edge: sorted(part) for edge in flat.subgraph(part).edges})
        return out

    def is_dag(self) -> bool:
        return nx.is_directed_acyclic_graph(self.g)
