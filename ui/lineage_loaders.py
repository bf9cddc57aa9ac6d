"""Cached data for the Lineage explorer and Audit trace pages.

The graph is built once per *tuple of snapshot ids* (what "as of T" resolves to), held with
`st.cache_resource` (a shared, unpickled object: 100k-run graphs are not copied per rerun), so
two dates that resolve to the same snapshots share one graph and a new snapshot builds a new one.
Everything a page shows is shaped here or in `lineage/`; pages only lay out.
"""
from __future__ import annotations

import contextlib
import json
import weakref
from collections.abc import Mapping
from datetime import date, datetime, time, timezone
from typing import Any

import pandas as pd
import streamlit as st

from lineage.build import build_graph
from lineage.explore import Neighbourhood, neighbourhood, node_ids
from lineage.graph import Gap, LineageGraph, Node, NodeType
from lineage.load import load_rows
from lineage.render import human_label, kind_word, to_dot
from lineage.report import evidence_text, render_markdown
from lineage.trace import LineageAnswer, TargetError, TraceAnswer, trace
from store import Store, StoreMissing
from store.lineage_rows import snapshot_times
from store.queries import SnapshotPoint, resolve_as_of

TTL = 300


def as_of_for(day: date | None) -> datetime | None:
    """A picked day means the end of that day (UTC); no day, or today, means now."""
    if day is None or day >= datetime.now(timezone.utc).date():
        return None
    return datetime.combine(day, time.max, tzinfo=timezone.utc)


@st.cache_data(ttl=TTL, show_spinner=False)
def points_at(store_path: str, stamp: int, as_of: datetime | None) -> dict[str, SnapshotPoint]:
    return resolve_as_of(Store(store_path), as_of)


@st.cache_resource(max_entries=8, show_spinner="Building the lineage graph…")
def _graph(store_path: str, snapshot_key: tuple[tuple[str, int], ...], _points: dict[str, SnapshotPoint]) -> LineageGraph:
    return build_graph(load_rows(Store(store_path), _points))


def lineage_graph(store_path: str, stamp: int, as_of: datetime | None) -> LineageGraph | None:
    """The graph as of a time; None when nothing is collected."""
    try:
        points = points_at(store_path, stamp, as_of)
    except StoreMissing:
        return None
    key = tuple(sorted((s, p.snapshot_id) for s, p in points.items()))
    return _graph(store_path, key, points)


@st.cache_data(ttl=TTL, show_spinner=False)
def snapshot_finished(store_path: str, stamp: int) -> dict[int, datetime]:
    return snapshot_times(Store(store_path))


# -- explorer -------------------------------------------------------------------------------------
def filter_options(graph: LineageGraph) -> tuple[list[str], list[str]]:
    platforms = sorted({p for p in (graph.node_data(n)["platform"] for n in graph.node_ids()) if p})
    types = [t.value for t in NodeType if graph.ids_of_type(t)]
    return platforms, types


def focus_options(graph: LineageGraph, platforms: list[str], types: list[str]) -> list[str]:
    return node_ids(graph, platforms, types)


DIRECTIONS = ["both", "upstream", "downstream"]
DEPTHS = (1, 8)
CAPS = [15, 30, 60, 120]
DEFAULTS = {"dir": "both", "depth": 3, "cap": 30}


def url_state(params: Mapping[str, str]) -> dict[str, Any]:
    """The explorer's state from a pasted link (`?node=…&depth=…&dir=…&cap=…&as_of=YYYY-MM-DD`);
    values that do not parse fall back to the defaults, so a mangled link still opens the page."""
    out: dict[str, Any] = {"node": params.get("node") or None, **DEFAULTS, "as_of": None}
    if params.get("dir") in DIRECTIONS:
        out["dir"] = params["dir"]
    with contextlib.suppress(TypeError, ValueError):
        out["depth"] = min(max(int(params.get("depth", "")), DEPTHS[0]), DEPTHS[1])
    with contextlib.suppress(TypeError, ValueError):
        cap = int(params.get("cap", ""))
        out["cap"] = min(CAPS, key=lambda c: abs(c - cap))
    with contextlib.suppress(TypeError, ValueError):
        out["as_of"] = date.fromisoformat(params.get("as_of", ""))
    return out


def url_params(node: str, depth: int, direction: str, cap: int, day: date | None) -> dict[str, str]:
    """The link that reopens this view: only what differs from the defaults, besides the node."""
    out = {"node": node}
    for name, value in (("depth", depth), ("dir", direction), ("cap", cap)):
        if value != DEFAULTS[name]:
            out[name] = str(value)
    if day is not None:
        out["as_of"] = day.isoformat()
    return out


# Labels per graph object, kept as long as `_graph`'s cache keeps the graph: the focus picker lists
# every node, and a 100k-run graph should not be relabelled on every widget change.
_LABELS: weakref.WeakKeyDictionary[LineageGraph, dict[str, str]] = weakref.WeakKeyDictionary()


def node_names(graph: LineageGraph, node_ids: list[str]) -> dict[str, str]:
    """Human label per node id, for pickers (ids stay the values)."""
    known = _LABELS.setdefault(graph, {})
    return {n: known.get(n) or known.setdefault(n, human_label(graph, n)) for n in node_ids}


def explore(graph: LineageGraph, focus: str, direction: str, depth: int,
            cap: int | None = None) -> tuple[Neighbourhood, str, pd.DataFrame]:
    """The focus's neighbourhood (nearest `cap` nodes), its static DOT drawing (the fallback for
    print and evidence packs) and its edges as a table a person reads."""
    hood = neighbourhood(graph, focus, direction, depth, cap)
    dot = to_dot(graph, hood.nodes, focus)
    edges = pd.DataFrame([{"From": human_label(graph, e["source"]), "To": human_label(graph, e["target"]),
                           "Link": e["kind"].replace("_", " "),
                           "Basis": "convention" if e["evidence"].get("basis") == "convention" else "recorded field",
                           "Evidence": evidence_text(e["evidence"])} for e in hood.edges],
                         columns=["From", "To", "Link", "Basis", "Evidence"])
    return hood, dot, edges


def gaps_table(graph: LineageGraph, hood: Neighbourhood) -> pd.DataFrame:
    """Gaps and conflicts on the nodes drawn, conflicts first, then nearest the focus."""
    from ui.lineage_graph_view import CONFLICTS, INFORMATION

    rows = []
    for n in hood.nodes:
        for g in graph.gaps.get(n, []):
            mark = "information" if g.kind in INFORMATION else "conflict" if g.kind in CONFLICTS else "gap"
            rows.append({"Node": human_label(graph, n), "Mark": mark, "What": g.kind.value.replace("_", " "),
                         "Message": g.message, "_order": ({"conflict": 0, "gap": 1}.get(mark, 2),
                                                          hood.distance.get(n, 0))})
    rows.sort(key=lambda r: r.pop("_order"))
    return pd.DataFrame(rows, columns=["Node", "Mark", "What", "Message"])


def node_details(graph: LineageGraph, node_id: str) -> tuple[dict[str, Any], list[str]]:
    return graph.node(node_id).to_dict(), [f"{g.kind.value.replace('_', ' ')}: {g.message}"
                                          for g in graph.gaps.get(node_id, [])]


# -- audit trace ----------------------------------------------------------------------------------
def alias_choices(graph: LineageGraph) -> pd.DataFrame:
    """Every alias ever seen (not only those alive at the graph's time), with its node id."""
    rows = []
    for (source, model, alias), history in sorted(graph.alias_history.items()):
        scope = graph.scopes.get(source)
        if scope is None:
            continue
        rows.append({"label": f"{model}@{alias} · {scope}", "node_id": f"alias:{scope}:{model}@{alias}",
                     "source": source, "model": model, "alias": alias, "current": history[-1]["version"]
                     if history[-1]["valid_to"] is None else None})
    return pd.DataFrame(rows, columns=["label", "node_id", "source", "model", "alias", "current"])


def endpoint_choices(graph: LineageGraph) -> pd.DataFrame:
    """Every endpoint ever seen (Databricks serving, Azure ML online), current or not, with its node id."""
    rows = []
    for (source, name), seen in sorted(graph.endpoint_history.items()):
        scope = graph.scopes.get(source)
        if scope is None:
            continue
        rows.append({"label": f"{name} · {scope}" + ("" if seen["current"] else " (removed)"),
                     "node_id": f"endpoint:{scope}:{name}", "source": source, "endpoint": name,
                     "current": seen["current"]})
    return pd.DataFrame(rows, columns=["label", "node_id", "source", "endpoint", "current"])


def serving_table(answer: TraceAnswer) -> pd.DataFrame:
    """Endpoint → version with traffic: one row per route (served entity or deployment)."""
    rows = []
    for x in answer.serving:
        for r in x.routes or [{}]:
            rows.append({"endpoint": x.endpoint_name, "route": r.get("deployment") or r.get("served_entity"),
                         "model": x.model, "version": x.version, "traffic_pct": r.get("traffic_pct"),
                         "state": r.get("provisioning_state") or r.get("deployment_state")})
    return pd.DataFrame(rows, columns=["endpoint", "route", "model", "version", "traffic_pct", "state"])


def pending_table(answer: TraceAnswer) -> pd.DataFrame:
    """A Databricks endpoint's pending config (an update in progress): shown, not traced."""
    seen, rows = set(), []
    for x in answer.serving:
        if x.endpoint in seen:
            continue
        seen.add(x.endpoint)
        rows += [{"endpoint": x.endpoint_name, "served_entity": p.get("served_entity"), "model": p.get("model"),
                  "version": p.get("version"), "traffic_pct": p.get("traffic_pct"), "state": p.get("deployment_state")}
                 for p in x.pending_config or []]
    return pd.DataFrame(rows, columns=["endpoint", "served_entity", "model", "version", "traffic_pct", "state"])


@st.cache_data(ttl=TTL, show_spinner=False)
def audit_trace(store_path: str, stamp: int, node_id: str, as_of: datetime | None) -> tuple[TraceAnswer | None, str]:
    """(answer, message): the trace of one alias (or endpoint) at a time; message when not found."""
    graph = lineage_graph(store_path, stamp, as_of)
    if graph is None:
        return None, "Nothing collected yet."
    label = as_of.isoformat() if as_of else datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        return trace(graph, node_id, as_of=label), ""
    except TargetError as e:
        return None, str(e)


def node_label(node: Node | None, node_id: str = "") -> str:
    """A node as a person names it: `run:databricks:f469…` → "run gbm-retrain-nov (databricks)"."""
    if not node:
        return node_id
    kind, name, version, attrs = node.type.value, node.name or "", node.version, node.attrs or {}
    if kind == NodeType.ALIAS.value:
        text = f"{name}@{attrs.get('alias')}" if attrs.get("alias") else name
    elif kind == NodeType.MODEL_VERSION.value:
        text = f"{name} v{version}" if version else name
    elif kind == NodeType.COMMIT.value:
        text = name[:10]
    elif version:
        text = f"{name}@{version}"
    else:
        text = name
    platform = node.platform
    return f"{kind.replace('_', ' ')} {text}" + (f" ({platform})" if platform else "")


def chain_table(answer: TraceAnswer, finished: dict[int, datetime]) -> pd.DataFrame:
    """One row per hop, upstream from the target, each node by its name (its id alongside, for the
    tooltip and the evidence pack), with its evidence and the snapshot time."""
    nodes = {n.id: n for n in answer.nodes}
    rows = []
    for h in answer.hops:
        sid = h.evidence.get("snapshot_id")
        rows.append({"upstream": node_label(nodes.get(h.upstream), h.upstream),
                     "downstream": node_label(nodes.get(h.downstream), h.downstream), "kind": h.kind.replace("_", " "),
                     "basis": h.evidence.get("basis"), "field": h.evidence.get("field"),
                     "source": h.evidence.get("source"), "snapshot": sid, "snapshot_time": finished.get(sid),
                     "since_snapshot": h.evidence.get("seen_since"), "repeated": h.repeated, "depth": h.depth,
                     "upstream_id": h.upstream, "downstream_id": h.downstream})
    return pd.DataFrame(rows, columns=["upstream", "downstream", "kind", "basis", "field", "source", "snapshot",
                                       "snapshot_time", "since_snapshot", "repeated", "depth", "upstream_id",
                                       "downstream_id"])


def summary_tables(answer: TraceAnswer) -> dict[str, pd.DataFrame]:
    return {
        # Decisive first: which run, which commit (then where; the id last, for the ticket).
        "runs": pd.DataFrame([r.to_dict() for r in answer.runs],
                             columns=["run_name", "git_sha", "experiment", "platform", "source", "lifecycle_stage",
                                      "run_id"]),
        "inputs": pd.DataFrame([{**i.to_dict(), "version": None if i.version is None else str(i.version)}
                                for i in answer.inputs],
                               columns=["name", "version", "level", "version_known", "platform", "basis"]),
        "gaps": pd.DataFrame([g.to_dict() for g in real_gaps(answer)], columns=["gap", "node", "message"]),
    }


@st.cache_data(ttl=TTL, show_spinner=False)
def alias_timeline(store_path: str, stamp: int, source: str, model: str) -> pd.DataFrame:
    """Every alias of one model on one source over time: alias, version, from, until (open = now)."""
    graph = lineage_graph(store_path, stamp, None)
    if graph is None:
        return pd.DataFrame(columns=["alias", "version", "from", "until", "snapshot_from"])
    now = pd.Timestamp.now(tz="UTC")
    rows = []
    for (src, name, alias), history in graph.alias_history.items():
        if src != source or name != model:
            continue
        for h in history:
            rows.append({"alias": alias, "version": f"v{h['version']}", "from": pd.Timestamp(h["seen_from"]),
                         "until": pd.Timestamp(h["seen_until"]) if h["seen_until"] else now,
                         "snapshot_from": h["valid_from"]})
    return pd.DataFrame(rows, columns=["alias", "version", "from", "until", "snapshot_from"])


# Information about the trace, not a missing link: the alias moved on after the time asked.
NOT_GAPS = ("alias_moved_after",)


def real_gaps(answer: LineageAnswer) -> list[Gap]:
    return [g for g in answer.gaps if g.kind.value not in NOT_GAPS]


def notes(answer: LineageAnswer) -> list[Gap]:
    return [g for g in answer.gaps if g.kind.value in NOT_GAPS]


def parse_day(text: str | None) -> tuple[date | None, str]:
    """(day, problem) from a typed date: empty is now; anything but YYYY-MM-DD is named back."""
    text = (text or "").strip()
    if not text:
        return None, ""
    try:
        return date.fromisoformat(text), ""
    except ValueError:
        return None, f"“{text}” is not a date: type it as YYYY-MM-DD, for example 2026-10-15."


def alias_absent(graph: LineageGraph, source: str, model: str, alias: str, day: date | None) -> str:
    """The plain sentence for an alias that did not exist at the time asked."""
    when = day.isoformat() if day else "now"
    history = graph.alias_history.get((source, model, alias)) or []
    seen = sorted(str(h["seen_from"])[:10] for h in history if h.get("seen_from"))
    first = f"; first seen {seen[0]}" if seen else "; it was never seen in a snapshot"
    return f"{model}@{alias} did not exist on {when}{first}."


def evidence_pack(answer: LineageAnswer, generated_by: str, now: datetime | None = None) -> tuple[str, str, str]:
    """(JSON, Markdown, printable HTML), each stamped with when and by whom it was generated and the
    sha256 of its content. The JSON is `python -m lineage trace --json` plus the three stamp keys; its
    sha256 is of the rest, keys sorted, compact. The Markdown's is of the pack without its stamp lines."""
    import hashlib

    from ui.print_pack import printable

    at = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    content = answer.to_json()
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode("utf-8")).hexdigest()
    pack = json.dumps({"generated_at": at, "generated_by": generated_by, "sha256": digest, **content},
                      indent=2, default=str)
    markdown_body = render_markdown(answer)
    md_digest = hashlib.sha256(markdown_body.encode("utf-8")).hexdigest()
    from ui.safe_text import md as escape

    stamp = (f"- Generated at: {at}\n- Generated by: {escape(generated_by)}\n"
             f"- sha256 of this pack without these three lines: `{md_digest}`\n")
    title_end = markdown_body.index("\n\n") + 2
    markdown = markdown_body[:title_end] + stamp + markdown_body[title_end:]
    return pack, markdown, printable(markdown, title=answer.target)


# -- the Audit trace's state in the URL ---------------------------------------------------------
def state_from_params(params: dict[str, str], aliases: pd.DataFrame, endpoints: pd.DataFrame) -> dict[str, Any]:
    """Widget values from a pasted link (`?source=…&model=…&alias=…&as_of=YYYY-MM-DD`, or
    `?endpoint=…`); a value that names nothing collected is ignored, not an error."""
    state: dict[str, Any] = {"audit_day": params.get("as_of") or None}

    def matching(frame: pd.DataFrame, **want: str | None) -> pd.DataFrame:
        for column, value in want.items():
            if value:
                frame = frame[frame[column] == value]
        return frame

    if params.get("endpoint") and not endpoints.empty:
        found = matching(endpoints, endpoint=params["endpoint"], source=params.get("source"))
        if not found.empty:
            state.update(audit_start="Endpoint", audit_endpoint=found.iloc[0]["label"])
    elif params.get("alias") and params.get("model") and not aliases.empty:
        found = matching(aliases, model=params["model"], alias=params["alias"], source=params.get("source"))
        if not found.empty:
            state.update(audit_start="Alias", audit_alias=found.iloc[0]["label"])
    return state


def params_for(start: str, chosen: pd.Series, day: date | None) -> dict[str, str]:
    """The URL query of what is shown now."""
    out = ({"endpoint": chosen["endpoint"], "source": chosen["source"]} if start == "Endpoint"
           else {"model": chosen["model"], "alias": chosen["alias"], "source": chosen["source"]})
    if day is not None:
        out["as_of"] = day.isoformat()
    return out


def kind_name(type_value: str) -> str:
    """A node type value ("logged_model") as words ("logged model"), for the type filter."""
    return kind_word(NodeType(type_value))
