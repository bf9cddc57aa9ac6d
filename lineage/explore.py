"""Questions the explorer page asks of a graph: pick nodes by filter, the neighbourhood of a focus."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lineage.graph import LineageGraph, NodeType


def node_ids(graph: LineageGraph, platforms: list[str] | None = None, types: list[str] | None = None) -> list[str]:
    """Node ids matching the filters (a commit has no platform and passes any platform filter)."""
    wanted_types = {NodeType(t) for t in types} if types else set(NodeType)
    out = []
    for t in wanted_types:
        for n in graph.ids_of_type(t):
            platform = graph.g.nodes[n]["platform"]
            if platforms and platform is not None and platform not in platforms:
                continue
            out.append(n)
    return sorted(out)


@dataclass
class Neighbourhood:
    focus: str
    nodes: set[str]
    upstream: list[str]      # direct neighbours, for click-through
    downstream: list[str]
    edges: list[dict[str, Any]]


def neighbourhood(graph: LineageGraph, focus: str, direction: str = "both", depth: int = 2) -> Neighbourhood:
    nodes = {focus}
    if direction in ("upstream", "both"):
        nodes |= graph.ancestors(focus, depth)
    if direction in ("downstream", "both"):
        nodes |= graph.descendants(focus, depth)
    edges = [graph.edge_dict(s, t) for s, t in sorted(graph.subgraph_edges(nodes))]
    return Neighbourhood(focus, nodes, sorted(graph.predecessors(focus)), sorted(graph.successors(focus)), edges)
