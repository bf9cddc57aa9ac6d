"""Human renderings of a trace or impact answer: the CLI's chain and the Markdown evidence pack.

Both show the same facts as the JSON (`LineageAnswer.to_json`): one hop per line with its evidence,
then runs, git SHAs, data inputs, gaps and the snapshots the answer rests on.
"""
from __future__ import annotations

from typing import Any

from lineage.answer import ImpactAnswer, InputRef, LineageAnswer, TraceAnswer


def evidence_text(evidence: dict[str, Any]) -> str:
    parts = [f"{evidence.get('basis')}: {evidence.get('field')}",
             f"{evidence.get('source')} snapshot {evidence.get('snapshot_id')}"]
    if evidence.get("seen_since") is not None:
        parts.append(f"since snapshot {evidence['seen_since']}")
    if evidence.get("detail"):
        parts.append(str(evidence["detail"]))
    if evidence.get("corroborated_by"):
        parts.append("corroborated by " + ", ".join(c.get("field", "?") for c in evidence["corroborated_by"]))
    return " · ".join(parts)


def _traffic(pct: Any) -> str:
    return "traffic not routed" if pct is None else f"{pct:g}% of traffic"


def _routes(routes: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r.get('deployment') or r.get('served_entity')} {_traffic(r.get('traffic_pct'))}"
                     for r in routes) or "no routes"


def _version(i: InputRef) -> str:
    """An input's version; name-level entries (lineage, dependencies, features) say so."""
    if i.version is not None:
        return str(i.version)
    return {"table": "— (table, by name)", "file": "— (files)", "feature": "— (UC feature)"}.get(i.level, "—")


def _snapshots_line(answer: LineageAnswer) -> str:
    return ", ".join(f"{s} #{p.snapshot_id} ({p.finished_at})" for s, p in answer.snapshots.items()) or "none"


def render_text(answer: LineageAnswer) -> str:
    lines = [f"{answer.question} {answer.target} as of {answer.as_of}",
             f"snapshots: {_snapshots_line(answer)}", ""]
    if isinstance(answer, TraceAnswer):
        lines.append(answer.target_nodes[0])
        for hop in answer.hops:
            indent = "  " * hop.depth
            tail = "  (shown above)" if hop.repeated else ""
            lines.append(f"{indent}← {hop.upstream}  [{hop.kind} · {evidence_text(hop.evidence)}]{tail}")
        lines += ["", "runs:"]
        lines += [f"  {r.platform} {r.run_id} ({r.run_name or '—'}, experiment {r.experiment or '—'}) "
                  f"git {r.git_sha or '— (none)'}" for r in answer.runs] or ["  none"]
        lines += ["git SHAs:"] + ([f"  {sha}" for sha in answer.git_shas] or ["  none"])
        if answer.serving:
            lines += ["serving:"] + [f"  {x.endpoint_name} ← {x.model} v{x.version} "
                                     f"({_traffic(x.traffic_pct)}; {_routes(x.routes)})" for x in answer.serving]
        lines += ["inputs:"] + ([f"  {i.platform} {i.name} @ {_version(i)} ({', '.join(i.basis)})"
                                 for i in answer.inputs] or ["  none"])
    elif isinstance(answer, ImpactAnswer):
        lines.append("starting at: " + ", ".join(answer.target_nodes))
        for key, items in _downstream(answer):
            lines.append(f"{key.replace('_', ' ')}:")
            lines += [f"  {i.id}" for i in items] or ["  none"]
    lines.append("gaps:")
    lines += [f"  {g.kind.value}: {g.message}" for g in answer.gaps] or ["  none"]
    return "\n".join(lines)


def _md(value: Any) -> str:
    """Collected text in a Markdown table cell: no pipes, no line breaks, code-quoted."""
    text = "—" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _downstream(answer: ImpactAnswer) -> list[tuple[str, list[Any]]]:
    return [("model_versions", answer.model_versions), ("aliases", answer.aliases), ("endpoints", answer.endpoints)]


def render_markdown(answer: LineageAnswer) -> str:
    out = [f"# Evidence pack: {answer.question} `{_md(answer.target)}`", "",
           f"- As of: {_md(answer.as_of)}", f"- Target node: `{_md(', '.join(answer.target_nodes))}`", "",
           "## Snapshots this rests on", "", "| source | snapshot | finished at | platform |", "|---|---|---|---|"]
    out += [f"| {_md(src)} | {p.snapshot_id} | {_md(p.finished_at)} | {_md(p.platform)} |"
            for src, p in answer.snapshots.items()]
    if isinstance(answer, TraceAnswer):
        out += ["", "## Chain (one hop per line, upstream)", "", "| depth | upstream | → downstream | kind | evidence |",
                "|---|---|---|---|---|"]
        out += [f"| {h.depth} | `{_md(h.upstream)}` | `{_md(h.downstream)}` | {h.kind} | {_md(evidence_text(h.evidence))} |"
                for h in answer.hops]
        out += ["", "## Runs", "", "| platform | run id | name | experiment | git SHA |", "|---|---|---|---|---|"]
        out += [f"| {_md(r.platform)} | `{_md(r.run_id)}` | {_md(r.run_name)} | {_md(r.experiment)} | "
                f"{_md(r.git_sha)} |" for r in answer.runs]
        if answer.serving:
            out += ["", "## Serving", "", "| endpoint | model | version | traffic | routes |", "|---|---|---|---|---|"]
            out += [f"| {_md(x.endpoint_name)} | {_md(x.model)} | {_md(x.version)} | "
                    f"{_md(_traffic(x.traffic_pct))} | {_md(_routes(x.routes))} |" for x in answer.serving]
        out += ["", "## Data inputs", "", "| platform | name | version | basis |", "|---|---|---|---|"]
        out += [f"| {_md(i.platform)} | {_md(i.name)} | {_md(_version(i))} | {_md(', '.join(i.basis))} |"
                for i in answer.inputs]
    elif isinstance(answer, ImpactAnswer):
        for key, items in _downstream(answer):
            out += ["", f"## {key.replace('_', ' ').capitalize()}", ""]
            out += [f"- `{_md(i.id)}`" for i in items] or ["- none"]
    out += ["", "## Gaps", ""]
    out += [f"- **{g.kind.value}** (`{_md(g.node)}`): {_md(g.message)}" for g in answer.gaps] or ["- none"]
    return "\n".join(out) + "\n"
