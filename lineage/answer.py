"""The records a trace or an impact answer is made of (what `lineage.trace` hands to gates, pages, the CLI).

Each record is frozen, with named fields, so a consumer that misspells a field fails loudly instead
of reading None. `to_dict` / `to_json` give exactly the keys of the `python -m lineage … --json`
contract (DESIGN.md), in the same order; keys that a kind of entry does not have (an input known
only by name has no `version_known`) are left out, as before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from lineage.graph import Edge, Gap, Node


@dataclass(frozen=True)
class SnapshotRef:
    """The snapshot of one source the answer rests on."""
    snapshot_id: int
    finished_at: str
    platform: str
    scope: str

    @classmethod
    def of(cls, point: dict[str, Any]) -> SnapshotRef:
        return cls(point["snapshot_id"], point["finished_at"], point["platform"], point["scope"])

    def to_dict(self) -> dict[str, Any]:
        return {"snapshot_id": self.snapshot_id, "finished_at": self.finished_at, "platform": self.platform,
                "scope": self.scope}


@dataclass(frozen=True)
class RunRef:
    """A run in the closure: which run, which commit."""
    id: str
    platform: str | None
    source: str | None
    run_id: str | None
    run_name: str | None
    experiment: str | None
    git_sha: str | None
    lifecycle_stage: str | None
    collected: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "platform": self.platform, "source": self.source, "run_id": self.run_id,
                "run_name": self.run_name, "experiment": self.experiment, "git_sha": self.git_sha,
                "lifecycle_stage": self.lifecycle_stage, "collected": self.collected}


@dataclass(frozen=True)
class InputRef:
    """Data upstream of the target. `level` is version, table, file, feature or dataset; entries known
    only by name have `version` None, `version_known` None (not in the JSON) and `via` (the edge kinds)."""
    id: str
    type: str
    level: str
    platform: str | None
    name: str
    version: str | None
    basis: list[str]
    version_known: bool | None = None
    via: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type, "level": self.level, "platform": self.platform,
                               "name": self.name, "version": self.version}
        if self.version_known is not None:
            out["version_known"] = self.version_known
        out["basis"] = self.basis
        if self.via is not None:
            out["via"] = self.via
        return out


@dataclass(frozen=True)
class ServingRef:
    """One endpoint → model version link, with its traffic and routes (platform data, kept as read)."""
    endpoint: str
    endpoint_name: str
    platform: str | None
    model_version: str
    model: str
    version: str | None
    traffic_pct: float | None
    routes: list[dict[str, Any]]
    pending_config: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "endpoint_name": self.endpoint_name, "platform": self.platform,
                "model_version": self.model_version, "model": self.model, "version": self.version,
                "traffic_pct": self.traffic_pct, "routes": self.routes, "pending_config": self.pending_config}


@dataclass(frozen=True)
class NodeRef:
    """A model version or endpoint downstream of an impact target."""
    id: str
    platform: str | None
    name: str
    version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "platform": self.platform, "name": self.name, "version": self.version}


@dataclass(frozen=True)
class AliasRef(NodeRef):
    alias: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "alias": self.alias}


@dataclass(frozen=True)
class LineageAnswer:
    """What both questions share; `TraceAnswer` and `ImpactAnswer` add their summaries."""
    question: ClassVar[str] = ""
    target: str
    target_nodes: list[str]
    as_of: str
    snapshots: dict[str, SnapshotRef]
    nodes: list[Node]
    edges: list[Edge]
    gaps: list[Gap]

    def _summary(self) -> dict[str, Any]:
        return {}

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "target_nodes": self.target_nodes, "question": self.question,
                "as_of": self.as_of, "snapshots": {s: p.to_dict() for s, p in self.snapshots.items()},
                **self._summary(), "nodes": [n.to_dict() for n in self.nodes],
                "edges": [e.to_dict() for e in self.edges], "gaps": [g.to_dict() for g in self.gaps]}


@dataclass(frozen=True)
class Hop:
    """One upstream step: `upstream` feeds `downstream` through an edge of `kind`."""
    depth: int
    upstream: str
    downstream: str
    kind: str
    evidence: dict[str, Any]
    repeated: bool = False


@dataclass(frozen=True)
class TraceAnswer(LineageAnswer):
    question: ClassVar[str] = "trace"
    runs: list[RunRef] = field(default_factory=list)
    git_shas: list[str] = field(default_factory=list)
    inputs: list[InputRef] = field(default_factory=list)
    serving: list[ServingRef] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)

    def _summary(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs], "git_shas": self.git_shas,
                "inputs": [i.to_dict() for i in self.inputs], "serving": [x.to_dict() for x in self.serving]}


@dataclass(frozen=True)
class ImpactAnswer(LineageAnswer):
    question: ClassVar[str] = "impact"
    runs: list[RunRef] = field(default_factory=list)
    model_versions: list[NodeRef] = field(default_factory=list)
    aliases: list[AliasRef] = field(default_factory=list)
    endpoints: list[NodeRef] = field(default_factory=list)

    def _summary(self) -> dict[str, Any]:
        return {"runs": [r.to_dict() for r in self.runs], "model_versions": [v.to_dict() for v in self.model_versions],
                "aliases": [a.to_dict() for a in self.aliases], "endpoints": [e.to_dict() for e in self.endpoints]}
