"""DOT source for `st.graphviz_chart` (rendered client-side). Labels are plain quoted strings with
quotes and backslashes escaped — never HTML labels — so collected names cannot inject markup."""
from __future__ import annotations

from lineage.graph import LineageGraph, NodeType

_STYLE = {
    NodeType.TABLE: ("cylinder", "#dbeafe"), NodeType.FEATURE_TABLE: ("cylinder", "#bfdbfe"),
    NodeType.DATASET: ("note", "#e0f2fe"), NodeType.EXPERIMENT: ("folder", "#f3f4f6"),
    NodeType.RUN: ("box", "#fef3c7"), NodeType.COMMIT: ("component", "#ede9fe"),
    NodeType.LOGGED_MODEL: ("box3d", "#fce7f3"), NodeType.MODEL_VERSION: ("box3d", "#dcfce7"),
    NodeType.ALIAS: ("tag", "#bbf7d0"), NodeType.ENDPOINT: ("doubleoctagon", "#fee2e2"),
    NodeType.VECTOR_INDEX: ("hexagon", "#f5f5f4"), NodeType.SEARCH_INDEX: ("hexagon", "#f5f5f4"),
}


def quote(text: object) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def node_label(graph: LineageGraph, node_id: str) -> str:
    d = graph.g.nodes[node_id]
    t: NodeType = d["type"]
    a = d["attrs"]
    if t == NodeType.RUN:
        title = f"{a.get('run_name') or ''}\n{(a.get('run_id') or '')[:12]}"
    elif t == NodeType.COMMIT:
        title = d["name"][:12]
    elif t == NodeType.MODEL_VERSION:
        title = f"{d['name']} v{d['version']}"
    elif t == NodeType.ALIAS:
        title = f"{d['name']}@{a.get('alias')}"
    elif t == NodeType.TABLE:
        name = d["name"] if len(d["name"]) <= 40 else "…" + d["name"][-39:]
        title = (f"{name}\n({a.get('upstream_kind') or 'table'}, all versions)" if a.get("whole_table")
                 else f"{name}\n@{d['version']}")
    elif t == NodeType.DATASET:
        title = f"{d['name']}\n{d['version'] or ''}"
    else:
        title = d["name"]
    platform = d["platform"] or "git"
    return f"{t.value} · {platform}\n{title}"


def to_dot(graph: LineageGraph, node_ids: set[str], focus: str | None = None) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [style="filled,rounded" fontname="Helvetica" fontsize=10];',
             '  edge [fontname="Helvetica" fontsize=8 color="#6b7280"];']
    for n in sorted(node_ids):
        d = graph.g.nodes[n]
        shape, fill = _STYLE.get(d["type"], ("box", "#ffffff"))
        border = ' penwidth=3 color="#dc2626"' if n == focus else ""
        gaps = " ⚠" if graph.gaps.get(n) else ""
        lines.append(f"  {quote(n)} [label={quote(node_label(graph, n) + gaps)} shape={shape} "
                     f'fillcolor="{fill}"{border}];')
    for s, t in sorted(graph.subgraph_edges(node_ids)):
        e = graph.g.edges[s, t]
        style = ' style="dashed"' if e["evidence"].basis.value == "convention" else ""
        label = e["kind"].value
        traffic = (e.get("attrs") or {}).get("traffic_pct")
        if traffic is not None:
            label += f" {traffic:g}%"
        lines.append(f"  {quote(s)} -> {quote(t)} [label={quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines)
