"""The interactive lineage graph: Cytoscape.js through `streamlit-cytoscape`, laid out left to right.

Why this component: it is the maintained fork (2026) of `st-link-analysis`; its wheel bundles
Cytoscape.js, the dagre layered layout, its icons and font, so the page makes no request off the
machine; node labels are drawn on a canvas and its detail panel writes text with `textContent`,
so collected names cannot become markup; and a tap on a node comes back to Python as an event.
(`streamlit-flow-component`, React Flow, renders node content as Markdown with KaTeX and had no
release since February 2025.)

Elements and styles are plain data built here; the page only places them.
"""
from __future__ import annotations

from typing import Any

from lineage.explore import Neighbourhood
from lineage.graph import Basis, GapKind, LineageGraph, NodeType
from lineage.render import human_label, kind_word

# Fill per node kind: no red, which marks gaps and conflicts.
KIND_COLOURS: dict[NodeType, str] = {
    NodeType.TABLE: "#3b82f6", NodeType.FEATURE_TABLE: "#0ea5e9", NodeType.DATASET: "#06b6d4",
    NodeType.EXPERIMENT: "#9ca3af", NodeType.RUN: "#f59e0b", NodeType.COMMIT: "#8b5cf6",
    NodeType.LOGGED_MODEL: "#ec4899", NodeType.MODEL_VERSION: "#22c55e", NodeType.ALIAS: "#15803d",
    NodeType.ENDPOINT: "#0f766e", NodeType.VECTOR_INDEX: "#78716c", NodeType.SEARCH_INDEX: "#a8a29e",
}
EDGE_COLOUR = "#6b7280"
ALERT = "#dc2626"
MORE = "more"            # the node group of "N more" stubs
# Gaps that say two records disagree (a conflict), as opposed to a link that is missing.
CONFLICTS = frozenset({GapKind.ORIGIN_CONFLICT, GapKind.COMMIT_MISMATCH, GapKind.INPUT_VERSION_CONFLICT,
                       GapKind.AMBIGUOUS})
# Information, not a gap (issue 13): shown in the list, never as a red mark.
INFORMATION = frozenset({GapKind.ALIAS_MOVED_AFTER})

PICK_EVENT = "pick"
LAYOUT = {"name": "dagre", "rankDir": "LR", "nodeSep": 14, "rankSep": 36, "padding": 40, "fit": True,
          "animate": False, "nodeDimensionsIncludeLabels": True}


def gap_marks(graph: LineageGraph, node_id: str) -> tuple[str, list[str]]:
    """("conflict" | "gap" | "", the messages) for one node."""
    gaps = [g for g in graph.gaps.get(node_id, []) if g.kind not in INFORMATION]
    if not gaps:
        return "", []
    mark = "conflict" if any(g.kind in CONFLICTS for g in gaps) else "gap"
    return mark, [f"{g.kind.value.replace('_', ' ')}: {g.message}" for g in gaps]


def edge_caption(edge: dict[str, Any]) -> str:
    caption = edge["kind"].replace("_", " ")
    traffic = (edge.get("attrs") or {}).get("traffic_pct")
    return caption if traffic is None else f"{caption} {traffic:g}%"


def elements(graph: LineageGraph, hood: Neighbourhood) -> dict[str, list[dict[str, Any]]]:
    """Cytoscape elements: nodes carry a human name (the canvas label), their kind, platform, id
    and gaps (the detail panel); underscore fields drive the style and stay out of the panel."""
    nodes = []
    for n in sorted(hood.nodes, key=lambda x: (hood.distance.get(x, 0), x)):
        d = graph.node_data(n)
        mark, messages = gap_marks(graph, n)
        data = {"id": n, "label": d["type"].value, "name": human_label(graph, n), "kind": kind_word(d["type"]),
                "platform": d["platform"] or "git", "hops": hood.distance.get(n, 0),
                "_size": 44 if n == hood.focus else 26,
                "_border_width": 5 if mark else (3 if n == hood.focus else 1),
                "_border_color": ALERT if mark else ("#111827" if n == hood.focus else "#ffffff"),
                "_border_style": "dashed" if mark == "gap" else "solid"}
        if messages:
            data["gaps"] = " · ".join(messages)
        nodes.append({"data": data})
    edges = []
    for i, e in enumerate(hood.edges):
        basis = e["evidence"].get("basis")
        edges.append({"data": {"id": f"e{i}", "source": e["source"], "target": e["target"],
                               "label": "convention" if basis == Basis.CONVENTION.value else "recorded",
                               "caption": edge_caption(e), "field": e["evidence"].get("field") or "",
                               "basis": basis or ""}})
    for (via, side), count in sorted(hood.hidden.items()):
        stub = f"{MORE}:{side}:{via}"
        nodes.append({"data": {"id": stub, "label": MORE, "name": f"{count} more", "of": human_label(graph, via),
                               "_size": 18, "_border_width": 1, "_border_color": EDGE_COLOUR,
                               "_border_style": "dotted"}})
        ends = (stub, via) if side == "upstream" else (via, stub)
        edges.append({"data": {"id": f"m:{stub}", "source": ends[0], "target": ends[1], "label": MORE,
                               "caption": ""}})
    return {"nodes": nodes, "edges": edges}


def picked_node(value: Any) -> str | None:
    """The node a tap chose, from the component's return value (a "N more" stub means its owner)."""
    if not isinstance(value, dict) or value.get("action") != PICK_EVENT:
        return None
    target = (value.get("data") or {}).get("target_id")
    if not isinstance(target, str):
        return None
    if target.startswith(f"{MORE}:"):
        return target.split(":", 2)[2]
    return target


def kinds_drawn(graph: LineageGraph, hood: Neighbourhood) -> list[NodeType]:
    """The node kinds in view, in upstream-to-downstream order (the legend's order)."""
    present = {graph.node_data(n)["type"] for n in hood.nodes}
    return [t for t in KIND_COLOURS if t in present]


def legend_html(kinds: list[NodeType]) -> str:
    """Our own fixed words and colours (no collected text), for `st.html`."""
    dot = ('<span style="display:inline-flex;align-items:center;gap:.3rem;margin-right:.9rem">'
           '<span style="width:.8rem;height:.8rem;border-radius:50%;background:{c};{b}"></span>{t}</span>')
    line = ('<span style="display:inline-flex;align-items:center;gap:.3rem;margin-right:.9rem">'
            '<span style="width:2rem;border-top:2px {s} {c}"></span>{t}</span>')
    items = [dot.format(c=KIND_COLOURS[k], b="", t=kind_word(k)) for k in kinds]
    marks = [line.format(s="solid", c=EDGE_COLOUR, t="recorded field"),
             line.format(s="dashed", c=EDGE_COLOUR, t="convention (a param or tag)"),
             dot.format(c="#ffffff", b=f"border:3px solid {ALERT}", t="conflict"),
             dot.format(c="#ffffff", b=f"border:3px dashed {ALERT}", t="gap"),
             dot.format(c="#ffffff", b="border:3px solid #111827", t="focus"),
             dot.format(c="#ffffff", b=f"border:1px dotted {EDGE_COLOUR}", t="N more: tap to focus there")]
    return ('<div data-testid="lineage-legend" style="font-size:.85rem;line-height:1.9">'
            '<div><b>Nodes</b>&nbsp; ' + "".join(items) + "</div>"
            '<div><b>Edges and marks</b>&nbsp; ' + "".join(marks) + "</div></div>")


def render(graph: LineageGraph, hood: Neighbourhood, key: str, on_change=None, height: int = 520):
    """Draw the neighbourhood; returns the component's value (the last tap, if any)."""
    from streamlit_cytoscape import EdgeStyle, Event, NodeStyle, streamlit_cytoscape

    shared = {"width": "data(_size)", "height": "data(_size)", "border-width": "data(_border_width)",
              "border-color": "data(_border_color)", "border-style": "data(_border_style)",
              "text-wrap": "wrap", "text-max-width": "120px", "font-size": 13, "text-valign": "bottom",
              "text-margin-y": 3, "min-zoomed-font-size": 0}
    node_styles = [NodeStyle(t.value, KIND_COLOURS[t], "name", custom_styles=shared) for t in NodeType]
    node_styles.append(NodeStyle(MORE, "#f3f4f6", "name", custom_styles={**shared, "color": EDGE_COLOUR}))
    edge_common = {"font-size": 9, "min-zoomed-font-size": 0, "text-rotation": "autorotate",
                   "text-background-opacity": 0, "color": "#374151", "arrow-scale": 0.8}
    edge_styles = [
        EdgeStyle("recorded", EDGE_COLOUR, "caption", directed=True, curve_style="bezier",
                  custom_styles={**edge_common, "line-style": "solid"}),
        EdgeStyle("convention", EDGE_COLOUR, "caption", directed=True, curve_style="bezier",
                  custom_styles={**edge_common, "line-style": "dashed"}),
        EdgeStyle(MORE, "#d1d5db", directed=False, curve_style="bezier", custom_styles={"line-style": "dotted"}),
    ]
    return streamlit_cytoscape(elements(graph, hood), layout=LAYOUT, node_styles=node_styles,
                               edge_styles=edge_styles, height=height, key=key, on_change=on_change,
                               events=[Event(PICK_EVENT, "tap", "node")])
