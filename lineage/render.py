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
    d = graph.node_data(node_id)
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


_KIND_WORD = {
    NodeType.TABLE: "table", NodeType.FEATURE_TABLE: "feature", NodeType.DATASET: "dataset",
    NodeType.EXPERIMENT: "experiment", NodeType.RUN: "run", NodeType.COMMIT: "commit",
    NodeType.LOGGED_MODEL: "logged model", NodeType.MODEL_VERSION: "model", NodeType.ALIAS: "alias",
    NodeType.ENDPOINT: "endpoint", NodeType.VECTOR_INDEX: "vector index", NodeType.SEARCH_INDEX: "search index",
}


def kind_word(t: NodeType) -> str:
    """The node type as a person says it ("logged model", not `logged_model`)."""
    return _KIND_WORD.get(t, t.value.replace("_", " "))


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def human_label(graph: LineageGraph, node_id: str) -> str:
    """One line a person reads instead of the node id: `run:databricks:f469…` becomes
    "run gbm-retrain-nov (databricks)". The scope (platform, or platform/source when a platform has
    two sources) keeps two same-named things apart; the id itself goes in a tooltip or detail."""
    d = graph.node_data(node_id)
    t: NodeType = d["type"]
    a = d["attrs"]
    name = str(d["name"] or "")
    if t == NodeType.RUN:
        title = a.get("run_name") or (a.get("run_id") or name)[:8]
    elif t == NodeType.COMMIT:
        return f"commit {name[:8]}"
    elif t == NodeType.MODEL_VERSION:
        title = f"{name} v{d['version']}"
    elif t == NodeType.ALIAS:
        title = f"{name}@{a.get('alias')}"
    elif t == NodeType.TABLE:
        # A OneLake path reads by its tail ("…/dbo/churn_features"), not its workspace GUID.
        title = ("…/" + "/".join(name.rstrip("/").split("/")[-2:])) if "://" in name else _short(name)
        title = title + ("" if a.get("whole_table") or d["version"] is None else f" @{d['version']}")
    elif t == NodeType.DATASET:
        title = f"{name} {d['version']}" if d["version"] else name
    elif t == NodeType.LOGGED_MODEL:
        title = f"{name} {(a.get('model_id') or '')[:10]}".strip()
    else:
        title = _short(name)
    scope = node_id.split(":", 2)[1] if node_id.count(":") >= 2 else (d["platform"] or "")
    return f"{kind_word(t)} {title}" + (f" ({scope})" if scope else "")


def to_dot(graph: LineageGraph, node_ids: set[str], focus: str | None = None) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [style="filled,rounded" fontname="Helvetica" fontsize=10];',
             '  edge [fontname="Helvetica" fontsize=8 color="#6b7280"];']
    for n in sorted(node_ids):
        d = graph.node_data(n)
        shape, fill = _STYLE.get(d["type"], ("box", "#ffffff"))
        border = ' penwidth=3 color="#dc2626"' if n == focus else ""
        gaps = " ⚠" if graph.gaps.get(n) else ""
        lines.append(f"  {quote(n)} [label={quote(node_label(graph, n) + gaps)} shape={shape} "
                     f'fillcolor="{fill}"{border}];')
    for s, t in sorted(graph.subgraph_edges(node_ids)):
        e = graph.edge_data(s, t)
        style = ' style="dashed"' if e["evidence"].basis.value == "convention" else ""
        label = e["kind"].value
        traffic = (e.get("attrs") or {}).get("traffic_pct")
        if traffic is not None:
            label += f" {traffic:g}%"
        lines.append(f"  {quote(s)} -> {quote(t)} [label={quote(label)}{style}];")
    lines.append("}")
    return "\n".join(lines)
