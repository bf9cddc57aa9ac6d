"""Data for the Promotion gates page: the queue, one gate, the review history — cached, and the
one write (a review) routed through gates/reviews.py.

Cached loaders take (store path, stamp, config path); a review checkpoints the store, which changes
the stamp, so the page shows the new entry at once. Every read opens and closes its own read-only
connection, so no reader is open when a review is written (DuckDB does not mix read-only and
read-write connections to one file within a process).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from collectors.config import Config, load_config
from gates.artifacts import mlflow_artifact_lister
from gates.evaluate import PASS, Context, GateResult, TargetNotFound, candidates, evaluate
from gates.policy import PolicyError, policy_for
from gates.identity import Identity
from gates.reviews import (DECISION_LABELS, AuthorCheck, ReviewError, StaleReview, approval_block, author_check, may_review,
                           read_log, submit_review, verify)
from gates.writeback import WritebackOutcome, write_back
from store import Store, StoreMissing
from ui import lineage_loaders
from ui.format import GAP, short_sha

TTL = 300
# Plain symbols: table cells cannot use Streamlit's icon font, and emoji need a system font.
STATUS_ICON = {"PASS": "✓ PASS", "FAIL": "✗ FAIL", "UNKNOWN": "? UNKNOWN"}


def _key(source: str, name: str, version: str) -> str:
    return f"{source}\x1f{name}\x1f{version}"


def split_key(key: str) -> tuple[str, str, str]:
    source, name, version = key.split("\x1f")
    return source, name, version


# -- cached reads -------------------------------------------------------------------------------------
def _context(store_path: str, stamp: int) -> Context:
    """Entities as of now, with the lineage graph the lineage pages already cache for this state."""
    graph = lineage_loaders.lineage_graph(store_path, stamp, None)
    points = lineage_loaders.points_at(store_path, stamp, None)
    return Context(Store(store_path), points=points, graph=graph)


@st.cache_data(ttl=TTL, show_spinner=False)
def queue(store_path: str, stamp: int, config_path: str) -> dict[str, Any]:
    """{"frame": candidates with gate status, "choices": [(key, label)], "error": str | None}."""
    config = load_config(config_path)
    try:
        ctx = _context(store_path, stamp)
    except StoreMissing:
        return {"frame": pd.DataFrame(), "choices": [], "error": None}
    policies: dict[str, Any] = {}

    def policy(name: str):
        if name not in policies:
            policies[name] = policy_for(name, config.review.policy_dir)
        return policies[name]

    try:
        cands = candidates(ctx, policy)
    except PolicyError as e:
        return {"frame": pd.DataFrame(), "choices": [], "error": f"Policy problem: {e}"}
    lister = mlflow_artifact_lister(config)
    log = read_log(ctx.store)
    last_decision = {}
    for e in log:
        if e["kind"] == "review":
            last_decision[_key(e["source"], e["model_name"], e["version"])] = (
                f"{DECISION_LABELS.get(e['decision'], e['decision'])} by {e['reviewer']}")
    rows = []
    for c in cands.itertuples():
        result = evaluate(ctx, policy(c.name), c.source, c.name, c.version, artifact_lister=lister)
        counts = result.counts()
        rows.append({"key": _key(c.source, c.name, c.version), "platform": c.platform, "source": c.source,
                     "model": c.name, "version": c.version,
                     "baseline": baseline_cell(c.baseline_state, c.baseline_version, c.baseline_label),
                     "gate": STATUS_ICON[result.status],
                     "blocking": ", ".join(x.name for x in result.blocking) or "—",
                     "pass": counts["PASS"], "fail": counts["FAIL"], "unknown": counts["UNKNOWN"],
                     "last_decision": last_decision.get(_key(c.source, c.name, c.version), "not reviewed")})
    frame = pd.DataFrame(rows, columns=["key", "platform", "source", "model", "version", "baseline", "gate",
                                        "blocking", "pass", "fail", "unknown", "last_decision"])
    choices = [(r["key"], f"{r['model']} v{r['version']} · {r['platform']} ({r['source']}) · candidate · {r['gate']}")
               for r in rows]
    queued = {r["key"] for r in rows}
    others = ctx.versions.sort_values(["name", "platform", "version"])
    for r in others.itertuples():
        k = _key(r.source, r.name, str(r.version))
        if k not in queued:
            choices.append((k, f"{r.name} v{r.version} · {r.platform} ({r.source})"))
    return {"frame": frame, "choices": choices, "error": None}


def baseline_cell(state: str, version, label: str) -> str:
    """The queue's baseline column: the version and what names it, or why there is none."""
    # pandas hands a missing baseline over as NaN, which is truthy.
    if state == "found" and isinstance(version, str) and version:
        return f"v{version} ({label})"
    return "none: first promotion" if state == "first_promotion" else "unknown (blocks)"


@dataclass
class GateView:
    result: GateResult | None
    error: str | None = None


@st.cache_data(ttl=TTL, show_spinner=False)
def gate(store_path: str, stamp: int, config_path: str, key: str) -> GateView:
    config = load_config(config_path)
    source, name, version = split_key(key)
    try:
        policy = policy_for(name, config.review.policy_dir)
        result = evaluate(_context(store_path, stamp), policy, source, name, version,
                          artifact_lister=mlflow_artifact_lister(config))
    except PolicyError as e:
        return GateView(None, f"Policy problem: {e}")
    except (TargetNotFound, StoreMissing) as e:
        return GateView(None, str(e))
    return GateView(result)


@st.cache_data(ttl=TTL, show_spinner=False)
def history(store_path: str, stamp: int, name: str, version: str | None = None) -> pd.DataFrame:
    """Review log entries of a model (or one version), newest first; notes are plain text."""
    rows = read_log(Store(store_path), name, version)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["who"] = [f"{r} ({'verified' if v else 'unverified'})" for r, v in
                    zip(frame["reviewer"], frame["reviewer_verified"])]
    frame["what"] = [DECISION_LABELS.get(d, d) if k == "review" else f"write-back {d}"
                     for k, d in zip(frame["kind"], frame["decision"])]
    frame["hash"] = frame["entry_hash"].str[:12]
    return frame.sort_values("entry_id", ascending=False)[
        ["entry_id", "recorded_at", "version", "what", "who", "gate_status", "note", "snapshot_ids", "hash"]]


@st.cache_data(ttl=TTL, show_spinner=False)
def chain(store_path: str, stamp: int) -> dict[str, Any]:
    try:
        report = verify(Store(store_path))
    except StoreMissing:
        return {"ok": True, "entries": 0, "head_hash": "", "problems": []}
    return report.to_json()


# -- shaping (pure) ----------------------------------------------------------------------------------
def criteria_frame(result: GateResult) -> pd.DataFrame:
    rows = [{"status": STATUS_ICON[c.status], "criterion": c.name, "actual": c.actual, "required": c.required,
             "blocks": "yes" if c.blocking else "", "evidence": c.evidence} for c in result.criteria]
    frame = pd.DataFrame(rows, columns=["status", "criterion", "actual", "required", "blocks", "evidence"])
    order = {"yes": 0, "": 1}
    return frame.sort_values("blocks", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def metrics_frame(result: GateResult) -> pd.DataFrame:
    """Long form: metric, series (candidate / baseline), value — NaN/missing left out (shown as gaps)."""
    t = result.target
    rows = []
    for metric, value in result.metrics.get("candidate", {}).items():
        if value is not None:
            rows.append({"metric": metric, "series": f"candidate v{t['version']}", "value": value})
    b = result.baseline
    for metric, value in result.metrics.get("baseline", {}).items():
        if value is not None and b:
            rows.append({"metric": metric, "series": f"baseline v{b['version']} ({b['label']})", "value": value})
    return pd.DataFrame(rows, columns=["metric", "series", "value"])


def metric_gaps(result: GateResult) -> list[str]:
    """Metrics logged but left out of the chart, and why (NaN, ±inf as MLflow's SQL store keeps it)."""
    return [f"{metric} ({series}): {why}" for series, gaps in result.metric_gaps.items()
            for metric, why in sorted(gaps.items())]


def thresholds_frame(result: GateResult) -> pd.DataFrame:
    """The lower bound of each one-sided `≥` threshold, drawn as a rule on the metrics chart."""
    rows = [{"metric": c.name.split(":", 1)[1], "threshold": c.min} for c in result.criteria
            if c.kind == "threshold" and c.min is not None and c.max is None]
    return pd.DataFrame(rows, columns=["metric", "threshold"])


def lineage_frames(result: GateResult) -> dict[str, pd.DataFrame]:
    lin = result.lineage or {}
    runs = pd.DataFrame([{"platform": r.get("platform"), "run": r.get("run_name") or r.get("run_id"),
                          "git_sha": short_sha(r.get("git_sha")), "experiment": r.get("experiment") or GAP}
                         for r in lin.get("runs", [])], columns=["platform", "run", "git_sha", "experiment"])
    inputs = pd.DataFrame([{"platform": i.get("platform"), "input": i.get("name"),
                            "version": i.get("version") if i.get("version_known", True) else f"{GAP} (unknown)"}
                           for i in lin.get("inputs", [])], columns=["platform", "input", "version"])
    gaps = pd.DataFrame([{"gap": g.get("gap"), "where": g.get("node"), "message": g.get("message")}
                         for g in lin.get("gaps", [])], columns=["gap", "where", "message"])
    return {"runs": runs, "inputs": inputs, "gaps": gaps}


def review_permission(config: Config, identity: Identity | None, result: GateResult,
                      chain_report: dict[str, Any]) -> dict[str, Any]:
    """What the review form may do: `may_review` + `why` (the form is disabled when False), the
    approval block, who authored the run, and whether write-back is possible and for whom."""
    if not chain_report["ok"]:
        ok, why = False, ("The review log fails verification, so no review can be recorded until it is restored "
                          "from a trusted copy (`python -m gates verify` lists the problems).")
    else:
        ok, why = may_review(config, identity, result.target["name"])
    block = approval_block(config, identity, result) if ok and identity else None
    src = next((s for s in config.sources if s.name == result.target["source"]), None)
    allowed = bool(src and src.allow_registry_writes)
    return {"may_review": ok, "why": why, "approve_block": block, "authors": author_check(config, result),
            "writeback_allowed": allowed and identity is not None and identity.may_write_registry,
            "writeback_unverified": allowed and identity is not None and not identity.may_write_registry}


def authors_frame(check: AuthorCheck) -> pd.DataFrame:
    """The run's authors (plain text cells): their name on the platform and the identity it maps to."""
    rows = [{"name": raw, "identity": who, "known": "yes"} for raw, who in check.known]
    rows += [{"name": raw, "identity": GAP, "known": "no: matches no identity in [review]"} for raw in check.unknown]
    if check.no_author:
        rows.append({"name": GAP, "identity": GAP, "known": f"no: {check.run_label} records no MLflow user"})
    return pd.DataFrame(rows, columns=["name", "identity", "known"])


# -- the write -------------------------------------------------------------------------------------
@dataclass
class SubmitOutcome:
    ok: bool
    message: str
    stale: bool = False
    entry: dict[str, Any] | None = None
    writeback: WritebackOutcome | None = None


def submit(config: Config, identity: Identity | None, result: GateResult, decision: str, note: str,
           writeback: bool) -> SubmitOutcome:
    """Record a review (and optionally write the approval back); caches are cleared after any write."""
    store = Store(config.store_path)
    try:
        policy = policy_for(result.target["name"], config.review.policy_dir)
        entry = submit_review(store, config, policy, identity, seen=result, decision=decision, note=note,
                              artifact_lister=mlflow_artifact_lister(config))
    except StaleReview as e:
        st.cache_data.clear()
        return SubmitOutcome(False, str(e), stale=True)
    except (ReviewError, PolicyError) as e:
        return SubmitOutcome(False, str(e))
    outcome = None
    if writeback and decision == "approve":
        outcome = write_back(store, config, policy, entry)
    st.cache_data.clear()
    msg = f"Recorded review #{entry['entry_id']} (hash {entry['entry_hash'][:12]}…)."
    if outcome is not None:
        msg += f" Write-back: {outcome.message}"
    return SubmitOutcome(True, msg, entry=entry, writeback=outcome)


def alias_to_move(config: Config, result: GateResult) -> str:
    """The alias an approval of this result would move on write-back (see gates/writeback.py)."""
    policy = policy_for(result.target["name"], config.review.policy_dir)
    return policy.alias_to_move(result.baseline, result.target["platform"])


def passed(result: GateResult) -> bool:
    return result.status == PASS
