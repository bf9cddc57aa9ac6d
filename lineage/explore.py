"""Questions the explorer page asks of a graph: pick nodes by filter, the neighbourhood of a focus."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lineage.graph import LineageGraph, NodeType


def node_ids(graph: LineageGraph, platforms: list[str] | None = None, types: list[str] | None = None) -> list[str]:
    """Node ids matching the filters (a commit has no platform and passes any platform filter)."""
    wanted_types = {NodeType(t) for t in types} if types else set(NodeType)
    out = []
    for t in wanted_types:
        for n in graph.ids_of_type(t):
            platform = graph.node_data(n)["platform"]
            if platforms and platform is not None and platform not in platforms:
                continue
            out.append(n)
    return sorted(out)


@dataclass
class Neighbourhood:
    focus: str
    nodes: set[str]          # what is drawn: the focus and, nearest first, at most `cap` - 1 others
    upstream: list[str]      # direct neighbours, for click-through
    downstream: list[str]
    edges: list[dict[str, Any]]
    # (shown node, "upstream"/"downstream") → how many nodes within the depth are left out behind
    # it on that side (the "N more" stubs).
    hidden: dict[tuple[str, str], int] = field(default_factory=dict)
    distance: dict[str, int] = field(default_factory=dict)   # hops from the focus, for every node drawn

    @property
    def hidden_total(self) -> int:
        return sum(self.hidden.values())


def _reach(step, start: str, depth: int) -> dict[str, tuple[int, str]]:
    """node → (hops, the neighbour it was reached from), breadth first, within `depth` hops."""
    seen: dict[str, tuple[int, str]] = {}
    frontier = [start]
    for hops in range(1, depth + 1):
        nxt = []
        for current in frontier:
            for n in sorted(step(current)):
                if n != start and n not in seen:
                    seen[n] = (hops, current)
                    nxt.append(n)
        frontier = nxt
    return seen


def neighbourhood(graph: LineageGraph, focus: str, direction: str = "both", depth: int = 2,
                  cap: int | None = None) -> Neighbourhood:
    """The nodes within `depth` hops of the focus, upstream, downstream or both. With a `cap`, only
    the nearest `cap` nodes (the focus included) are kept, and each kept node counts the nodes left
    out behind it, so a deep, wide neighbourhood draws as a readable core with "N more" stubs."""
    reached: dict[str, tuple[int, str]] = {}
    side: dict[str, str] = {}
    if direction in ("upstream", "both"):
        reached.update(_reach(graph.predecessors, focus, depth))
        side.update(dict.fromkeys(reached, "upstream"))
    if direction in ("downstream", "both"):
        for n, v in _reach(graph.successors, focus, depth).items():
            if n not in reached or v[0] < reached[n][0]:
                reached[n], side[n] = v, "downstream"
    order = sorted(reached, key=lambda n: (reached[n][0], n))
    keep = order if cap is None else order[: max(cap - 1, 0)]
    nodes = {focus, *keep}
    hidden: dict[tuple[str, str], int] = {}
    for n in order[len(keep):]:
        via = reached[n][1]
        while via not in nodes:          # climb back towards the focus to the first node drawn
            via = reached[via][1]
        hidden[(via, side[n])] = hidden.get((via, side[n]), 0) + 1
    edges = [graph.edge_dict(s, t) for s, t in sorted(graph.subgraph_edges(nodes))]
    distance = {focus: 0, **{n: reached[n][0] for n in keep}}
    return Neighbourhood(focus, nodes, sorted(graph.predecessors(focus)), sorted(graph.successors(focus)), edges,
                         hidden, distance)
