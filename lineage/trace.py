"""Trace (upstream) and impact (downstream) over a built LineageGraph — the `python -m lineage` answers.

A trace starts at a target (an alias, a model version, an endpoint, a run) and walks every edge
upstream: model version → run / logged model (registry), → the run and model on another platform
(MLmodel origin), → the version it was copied from (migration tag), run → commit, run → dataset →
table@version ← the table as a whole ← its upstream tables (UC lineage); an endpoint ← the versions
it serves (traffic % on the edge). The trace code knows node and edge *types*, not how they were
joined, so nodes and edges added by the platform collectors (features, endpoints, indexes) are
traced without change.

`inputs` lists the data upstream of the target: each table version a run read (`level: version`,
with `version_known`), then the tables reached only by name — upstream through UC table lineage,
UC model-version dependencies, shortcuts (`level: table` or `file`) — and UC features
(`level: feature`). Name-level entries have `version: null` and no `version_known`: table lineage
records no versions, so there is nothing to be unknown; a table already listed at a version is
not repeated by name. `serving` lists, for an endpoint, the versions it serves with traffic.

Gaps are data: those the builder attached to visited nodes, plus `alias_moved_after` when the
alias pointed elsewhere after the time asked.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from lineage.answer import (AliasRef, Hop, ImpactAnswer, InputRef, LineageAnswer, NodeRef, RunRef, ServingRef,
                            SnapshotRef, TraceAnswer)
from lineage.graph import Gap, GapKind, LineageGraph, NodeType

__all__ = ["Hop", "ImpactAnswer", "LineageAnswer", "TargetError", "TraceAnswer", "impact", "parse_as_of",
           "resolve_targets", "trace", "upstream_hops"]

TRACE_KINDS = ("model", "endpoint", "run")
IMPACT_KINDS = ("table", "run", "commit", "model", "dataset")


class TargetError(Exception):
    """The target is malformed (`usage`), absent (`not_found`) or names several nodes (`ambiguous`)."""

    def __init__(self, kind: str, message: str, candidates: list[str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.candidates = candidates or []


def _matches(graph: LineageGraph, type: NodeType, platform: str | None, pred) -> list[str]:
    out = []
    for nid in graph.ids_of_type(type):
        d = graph.node_data(nid)
        if platform and d["platform"] != platform:
            continue
        if pred(d):
            out.append(nid)
    return sorted(out)


def resolve_targets(graph: LineageGraph, target: str, platform: str | None = None,
                    allowed: tuple[str, ...] = TRACE_KINDS, many: bool = False) -> list[str]:
    """Node ids named by a target. One node unless `many` (impact of table:NAME takes every version)."""
    if target in graph:
        return [target]
    kind, sep, rest = target.partition(":")
    if not sep or not rest or kind not in allowed:
        raise TargetError("usage", f"target {target!r} must be one of "
                          + ", ".join(_TARGET_FORMS[k] for k in allowed) + " (or a node id)")
    if kind == "model":
        if "@" in rest:
            name, _, alias = rest.rpartition("@")
            found = _matches(graph, NodeType.ALIAS, platform,
                             lambda d: d["name"] == name and d["attrs"].get("alias") == alias)
            what = f"alias {alias!r} of model {name!r}"
        elif "/" in rest:
            name, _, version = rest.rpartition("/")
            found = _matches(graph, NodeType.MODEL_VERSION, platform,
                             lambda d: d["name"] == name and d["version"] == version)
            what = f"version {version} of model {name!r}"
        else:
            raise TargetError("usage", f"target {target!r}: use model:NAME@ALIAS or model:NAME/VERSION")
    elif kind == "endpoint":
        found = _matches(graph, NodeType.ENDPOINT, platform, lambda d: d["name"] == rest)
        what = f"endpoint {rest!r}"
        if not found:
            known = _matches(graph, NodeType.ENDPOINT, platform, lambda d: d["attrs"].get("collected", True))
            listing = (f"; endpoints collected: {', '.join(graph.node_data(n)['name'] for n in known)}" if known
                       else "; no endpoint is collected at that time (Databricks serving and Azure ML online "
                            "endpoints come from the databricks and azureml sources)")
            raise TargetError("not_found", f"{what} not found{' on ' + platform if platform else ''} as of "
                              f"{_as_of_label(graph)}{listing}", known)
    elif kind == "run":
        found = _matches(graph, NodeType.RUN, platform, lambda d: d["attrs"].get("run_id") == rest)
        collected = [n for n in found if graph.node_data(n)["attrs"].get("collected", True)]
        found = collected or found
        what = f"run {rest!r}"
    elif kind == "commit":
        sha = rest.lower()
        found = _matches(graph, NodeType.COMMIT, None, lambda d: d["name"].lower().startswith(sha)) if len(sha) >= 7 else []
        what = f"commit {rest!r}"
    elif kind == "dataset":
        found = _matches(graph, NodeType.DATASET, platform,
                         lambda d: d["name"] == rest or f"{d['name']}@{d['version']}" == rest)
        what = f"dataset {rest!r}"
    else:  # table
        name, _, version = rest.rpartition("@") if "@" in rest else (rest, "", "")
        found = _matches(graph, NodeType.TABLE, platform,
                         lambda d: d["name"] == name and (not version or d["version"] == version))
        what = f"table {rest!r}"
        many = True
    if not found:
        raise TargetError("not_found", f"{what} not found{' on ' + platform if platform else ''} as of "
                          f"{_as_of_label(graph)}")
    if len(found) > 1 and not many:
        raise TargetError("ambiguous", f"{target!r} is ambiguous: {len(found)} candidates (use --platform or a "
                          "node id)", found)
    return found


_TARGET_FORMS = {"model": "model:NAME@ALIAS, model:NAME/VERSION", "endpoint": "endpoint:NAME", "run": "run:RUN_ID",
                 "table": "table:NAME[@VERSION]", "commit": "commit:SHA", "dataset": "dataset:NAME[@DIGEST]"}


def _as_of_label(graph: LineageGraph) -> str:
    if not graph.snapshots:
        return "the time asked (no snapshot at or before it)"
    return ", ".join(f"{s} snapshot {p['snapshot_id']}" for s, p in graph.snapshots.items())


def trace(graph: LineageGraph, target: str, *, as_of: str, platform: str | None = None,
          depth: int | None = None) -> TraceAnswer:
    """Everything upstream of the target, with runs, git SHAs, inputs and gaps summarised."""
    (start,) = resolve_targets(graph, target, platform)
    closure = graph.ancestors(start, depth) | {start}
    gaps = graph.gaps_of(sorted(closure)) + _alias_moves(graph, [n for n in closure
                                                                 if graph.node_data(n)["type"] == NodeType.ALIAS])
    if not any(graph.node_data(n)["type"] == NodeType.RUN for n in closure):
        gaps.append(Gap(GapKind.NO_RUN, start, f"the trace of {target} reaches no run"
                        + (f" within {depth} hop(s)" if depth is not None else "")
                        + ": what trained it, from which code and data, is not recorded"))
    return TraceAnswer(**_common(graph, target, [start], closure, gaps, as_of), runs=_runs(graph, closure),
                       git_shas=_shas(graph, closure), inputs=_inputs(graph, closure),
                       serving=_serving(graph, closure), hops=upstream_hops(graph, start, closure))


def impact(graph: LineageGraph, target: str, *, as_of: str, platform: str | None = None,
           depth: int | None = None) -> ImpactAnswer:
    """Everything downstream of the target: the model versions, aliases and endpoints that depend on it."""
    starts = resolve_targets(graph, target, platform, allowed=IMPACT_KINDS, many=True)
    closure = set(starts)
    for s in starts:
        closure |= graph.descendants(s, depth)

    def listed(type: NodeType) -> list[Any]:
        ids = [n for n in sorted(closure) if graph.node_data(n)["type"] == type and n not in starts]
        if type == NodeType.ALIAS:
            return [AliasRef(n, d["platform"], d["name"], d["version"], d["attrs"].get("alias"))
                    for n in ids for d in [graph.node_data(n)]]
        return [NodeRef(n, d["platform"], d["name"], d["version"]) for n in ids for d in [graph.node_data(n)]]
    return ImpactAnswer(**_common(graph, target, starts, closure, graph.gaps_of(sorted(set(starts))), as_of),
                        runs=_runs(graph, closure - set(starts)), model_versions=listed(NodeType.MODEL_VERSION),
                        aliases=listed(NodeType.ALIAS), endpoints=listed(NodeType.ENDPOINT))


def _common(graph: LineageGraph, target: str, starts: list[str], closure: set[str], gaps: list[Gap],
            as_of: str) -> dict[str, Any]:
    """The fields both answers share. Node attrs are copied: the answer never aliases the graph."""
    nodes = [replace(node, attrs=dict(node.attrs)) for node in (graph.node(n) for n in sorted(closure))]
    edges = [graph.edge(s, t) for s, t in sorted(graph.subgraph_edges(closure))]
    unique: dict[tuple[str, str, str], Gap] = {}
    for gap in gaps:
        unique.setdefault((gap.kind.value, gap.node, gap.message), gap)
    return {"target": target, "target_nodes": starts, "as_of": as_of,
            "snapshots": {s: SnapshotRef.of(p) for s, p in graph.snapshots.items()}, "nodes": nodes, "edges": edges,
            "gaps": list(unique.values())}


def _runs(graph: LineageGraph, closure: set[str]) -> list[RunRef]:
    out = []
    for n in sorted(closure):
        d = graph.node_data(n)
        if d["type"] != NodeType.RUN:
            continue
        a = d["attrs"]
        out.append(RunRef(n, d["platform"], a.get("source"), a.get("run_id"), a.get("run_name"), a.get("experiment"),
                          a.get("git_sha"), a.get("lifecycle_stage"), a.get("collected", True)))
    return out


def _shas(graph: LineageGraph, closure: set[str]) -> list[str]:
    return sorted(graph.node_data(n)["name"] for n in closure if graph.node_data(n)["type"] == NodeType.COMMIT)


def _inputs(graph: LineageGraph, closure: set[str]) -> list[InputRef]:
    """Table versions that fed the runs, tables reached by name (lineage, dependencies), features,
    and datasets that no table backs."""
    nodes = graph.node_data

    def basis(n: str) -> list[str]:
        return sorted({graph.edge_data(n, s)["evidence"].basis.value for s in graph.successors(n) if s in closure})

    def via(n: str) -> list[str]:
        return sorted({graph.edge_data(n, s)["kind"].value for s in graph.successors(n) if s in closure})

    at_version = {(nodes(n)["platform"], nodes(n)["name"]) for n in closure
                  if nodes(n)["type"] == NodeType.TABLE and not nodes(n)["attrs"].get("whole_table")}
    out = []
    for n in sorted(closure):
        d = nodes(n)
        a = d["attrs"]
        if d["type"] == NodeType.TABLE and not a.get("whole_table"):
            out.append(InputRef(n, "table", "version", d["platform"], d["name"], d["version"], basis(n),
                                version_known=a.get("version_known", True)))
        elif d["type"] == NodeType.TABLE:
            if (d["platform"], d["name"]) in at_version:
                continue
            out.append(InputRef(n, "table", "file" if a.get("upstream_kind") == "file" else "table", d["platform"],
                                d["name"], None, basis(n), via=via(n)))
        elif d["type"] == NodeType.FEATURE_TABLE:
            out.append(InputRef(n, "feature_table", "feature", d["platform"], d["name"], None, basis(n), via=via(n)))
        elif d["type"] == NodeType.DATASET and not any(
                nodes(p)["type"] in (NodeType.TABLE, NodeType.FEATURE_TABLE) for p in graph.predecessors(n)):
            out.append(InputRef(n, "dataset", "dataset", d["platform"], d["name"], d["version"], ["run_input"],
                                version_known=False))
    return out


def _serving(graph: LineageGraph, closure: set[str]) -> list[ServingRef]:
    """Endpoint → model version links in the closure, with traffic % and routes (highest first)."""
    out = []
    for n in closure:
        d = graph.node_data(n)
        if d["type"] != NodeType.ENDPOINT:
            continue
        for v in graph.predecessors(n):
            e = graph.edge_data(v, n)
            if v not in closure or e["kind"].value != "serves":
                continue
            vd = graph.node_data(v)
            attrs = e.get("attrs") or {}
            out.append(ServingRef(n, d["name"], d["platform"], v, vd["name"], vd["version"], attrs.get("traffic_pct"),
                                  attrs.get("routes", []), d["attrs"].get("pending_config", [])))
    return sorted(out, key=lambda x: (x.endpoint, -(x.traffic_pct or 0), x.model_version))


def _alias_moves(graph: LineageGraph, aliases: list[str]) -> list[Gap]:
    """An alias traced as of T that pointed at another version (or vanished) after T."""
    gaps = []
    for nid in aliases:
        a = graph.node_data(nid)["attrs"]
        source = a.get("source")
        point = graph.snapshots.get(source)
        history = getattr(graph, "alias_history", {}).get((source, a.get("model"), a.get("alias")), [])
        if point is None or not history:
            continue
        sid = point["snapshot_id"]
        later = [h for h in history if h["valid_from"] > sid]
        current = next((h for h in history if h["valid_from"] <= sid and (h["valid_to"] is None or h["valid_to"] > sid)),
                       None)
        moves = [f"version {h['version']} from {h['seen_from']} (snapshot {h['valid_from']})" for h in later]
        if current and current["valid_to"] is not None and not any(h["valid_from"] == current["valid_to"] for h in later):
            moves.insert(0, f"removed at snapshot {current['valid_to']}")
        if moves:
            gaps.append(Gap(GapKind.ALIAS_MOVED_AFTER, nid,
                            f"{a.get('model')}@{a.get('alias')} pointed at version {a.get('points_to')} at the time "
                            f"asked; afterwards it moved: " + "; then ".join(moves), tuple(moves)))
    return gaps


def upstream_hops(graph: LineageGraph, start: str, closure: set[str]) -> list[Hop]:
    """Depth-first, one hop per line: the readable chain printed by the CLI and shown on the audit page."""
    hops: list[Hop] = []
    shown: set[str] = {start}

    def visit(node: str, depth: int) -> None:
        preds = sorted((p for p in graph.predecessors(node) if p in closure), key=_hop_order(graph, node))
        for p in preds:
            e = graph.edge_dict(p, node)
            repeated = p in shown
            hops.append(Hop(depth, p, node, e["kind"], e["evidence"], repeated))
            if not repeated:
                shown.add(p)
                visit(p, depth + 1)

    visit(start, 1)
    return hops


_ORDER = {NodeType.MODEL_VERSION: 0, NodeType.RUN: 1, NodeType.LOGGED_MODEL: 2, NodeType.COMMIT: 3,
          NodeType.DATASET: 4, NodeType.TABLE: 5, NodeType.FEATURE_TABLE: 5, NodeType.ENDPOINT: 6,
          NodeType.EXPERIMENT: 9}


_BASIS_ORDER = {b: i for i, b in enumerate(("registry", "artifact_origin", "run_input", "serving",
                                            "storage_identity", "convention"))}


def _hop_order(graph: LineageGraph, node: str):
    """Strongest proof first, then the most traffic (served versions), then upstream kinds in
    reading order (run, model, commit, data)."""
    def key(p: str):
        e = graph.edge_data(p, node)
        return (graph.node_data(p)["type"] == NodeType.EXPERIMENT, _BASIS_ORDER.get(e["evidence"].basis.value, 9),
                -((e.get("attrs") or {}).get("traffic_pct") or 0), _ORDER.get(graph.node_data(p)["type"], 6), p)
    return key


def parse_as_of(text: str | None, now: datetime) -> tuple[datetime | int | None, str]:
    """`--as-of` value → (what resolve_as_of takes, label). A bare date means the end of that day (UTC)."""
    from datetime import time, timezone

    if text is None or text.strip() == "" or text.strip().lower() == "now":
        return None, now.isoformat()
    value = text.strip()
    if value.isdigit():
        return int(value), f"snapshot {int(value)}"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise TargetError("usage", f"--as-of {text!r}: expected an ISO time (2026-11-01T12:00Z), a date or a "
                          "snapshot id") from None
    if len(value) == 10:  # a date: everything collected that day counts
        when = datetime.combine(when.date(), time.max)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when, when.isoformat()
