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
from gates.identity import Identity, canonical_identity
from gates.reviews import (DECISION_LABELS, DECISIONS, AuthorCheck, ReviewEntry, ReviewError, StaleReview, approval_block,
                           author_check, may_review, read_log, submit_review, verify)
from gates.writeback import WritebackOutcome, write_back
from lineage.conventions import version_order
from store import Store, StoreMissing
from ui import lineage_loaders
from ui.format import GAP, page_url, short_sha
from ui.shared_reader import SharedReader

TTL = 300
# Plain symbols: table cells cannot use Streamlit's icon font, and emoji need a system font.
STATUS_ICON = {"PASS": "✓ PASS", "FAIL": "✗ FAIL", "UNKNOWN": "? UNKNOWN"}


def _key(source: str, name: str, version: str) -> str:
    return f"{source}\x1f{name}\x1f{version}"


def split_key(key: str) -> tuple[str, str, str]:
    source, name, version = key.split("\x1f")
    return source, name, version


def params_for(key: str) -> dict[str, str]:
    """The URL state of one chosen version."""
    source, name, version = split_key(key)
    return {"source": source, "model": name, "version": version}


def choice_from_params(params: dict[str, str], choices: list[tuple[str, str]]) -> str | None:
    """The choice label a link names (`model` + `version`, `source` when several hold it), or None."""
    model, version, source = params.get("model"), params.get("version"), params.get("source")
    hits = [(k, c) for k, c in choices if split_key(k)[1:] == (model, version)
            and (not source or split_key(k)[0] == source)]
    return hits[0][1] if hits else None


# -- cached reads -------------------------------------------------------------------------------------
@st.cache_resource(ttl=TTL, max_entries=4, show_spinner=False)
def _context(store_path: str, stamp: int) -> Context:
    """Entities as of now, with the lineage graph the lineage pages already cache for this state.

    One per store state, shared by the queue and every gate view (and every session): each read
    opens the store, and the entities, serving routes and history frames are the same for all of
    them. Read-only once built (its lazy parts are filled the same way by whoever comes first)."""
    graph = lineage_loaders.lineage_graph(store_path, stamp, None)
    points = lineage_loaders.points_at(store_path, stamp, None)
    with SharedReader(Store(store_path)).open() as store:     # five entity reads, one connection
        return Context(store, points=points, graph=graph)


@dataclass(frozen=True)
class _Evaluated:
    """The queue's candidates, each evaluated once per store state (`results[key]` = (result, policy name))."""
    candidates: pd.DataFrame
    results: dict[str, tuple[GateResult, str]]
    log: list[ReviewEntry]


@st.cache_resource(ttl=TTL, max_entries=4, show_spinner=False)
def _evaluated(store_path: str, stamp: int, config_path: str) -> _Evaluated:
    """Raises StoreMissing or PolicyError (not cached: the next run tries again)."""
    config = load_config(config_path)
    ctx = _context(store_path, stamp)
    with ctx.store.open():      # the baselines' and the evaluations' reads, one connection
        return _evaluate_candidates(ctx, config)


def _evaluate_candidates(ctx: Context, config: Config) -> _Evaluated:
    policies: dict[str, Any] = {}

    def policy(name: str):
        if name not in policies:
            policies[name] = policy_for(name, config.review.policy_dir)
        return policies[name]

    cands = candidates(ctx, policy)
    lister = mlflow_artifact_lister(config)
    results = {}
    for c in cands.itertuples():
        p = policy(c.name)
        results[_key(c.source, c.name, c.version)] = (
            evaluate(ctx, p, c.source, c.name, c.version, artifact_lister=lister), p.name)
    return _Evaluated(cands, results, read_log(ctx.store))


@st.cache_data(ttl=TTL, show_spinner=False)
def queue(store_path: str, stamp: int, config_path: str) -> dict[str, Any]:
    """{"frame": candidates with gate status, "choices": [(key, label)], "error": str | None}."""
    try:
        done = _evaluated(store_path, stamp, config_path)
    except StoreMissing:
        return {"frame": pd.DataFrame(), "choices": [], "blocks": [], "error": None}
    except PolicyError as e:
        return {"frame": pd.DataFrame(), "choices": [], "blocks": [], "error": f"Policy problem: {e}"}
    last_decision = {}
    for e in done.log:
        if e.kind == "review":
            last_decision[_key(e.source, e.model_name, e.version)] = (
                f"{DECISION_LABELS.get(e.decision, e.decision)} by {e.reviewer}")
    rows = []
    for c in done.candidates.itertuples():
        k = _key(c.source, c.name, c.version)
        result = done.results[k][0]
        counts = result.counts()
        rows.append({"key": k, "platform": c.platform, "source": c.source,
                     "model": c.name, "version": c.version,
                     "baseline": baseline_cell(c.baseline_state, c.baseline_version, c.baseline_label),
                     "gate": STATUS_ICON[result.status],
                     "blocking": ", ".join(x.name for x in result.blocking) or "—",
                     "pass": counts["PASS"], "fail": counts["FAIL"], "unknown": counts["UNKNOWN"],
                     "last_decision": last_decision.get(k, "not reviewed"),
                     # Each row opens its version in the Lineage explorer (our own node id, percent-encoded).
                     "lineage": page_url("lineage_explorer", node=result.lineage.node) if result.lineage else None,
                     "_blocks": [criterion_line(x) for x in result.blocking]})
    blocks = [{"candidate": f"{r['model']} v{r['version']} · {r['platform']} ({r['source']})", "why": r.pop("_blocks")}
              for r in rows]
    blocks = [b for b in blocks if b["why"]]
    frame = pd.DataFrame(rows, columns=["key", "platform", "source", "model", "version", "baseline", "gate",
                                        "blocking", "pass", "fail", "unknown", "last_decision", "lineage"])
    choices = [(r["key"], f"{r['model']} v{r['version']} · {r['platform']} ({r['source']}) · candidate · {r['gate']}")
               for r in rows]
    queued = {r["key"] for r in rows}
    others = _context(store_path, stamp).versions.sort_values(
        ["name", "platform", "version"], key=lambda col: col.map(version_order) if col.name == "version" else col)
    for r in others.itertuples():
        k = _key(r.source, r.name, str(r.version))
        if k not in queued:
            choices.append((k, f"{r.name} v{r.version} · {r.platform} ({r.source})"))
    return {"frame": frame, "choices": choices, "blocks": blocks, "error": None}


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
    policy_name: str = ""        # how a person names the policy (its hash is in result.policy)


@st.cache_data(ttl=TTL, show_spinner=False)
def gate(store_path: str, stamp: int, config_path: str, key: str) -> GateView:
    """One version's gate: a queued candidate's evaluation is reused, any other version is evaluated here."""
    config = load_config(config_path)
    source, name, version = split_key(key)
    try:
        done = _evaluated(store_path, stamp, config_path)
        if key in done.results:
            result, policy_name = done.results[key]
            return GateView(result, policy_name=policy_name)
        policy = policy_for(name, config.review.policy_dir)
        result = evaluate(_context(store_path, stamp), policy, source, name, version,
                          artifact_lister=mlflow_artifact_lister(config))
    except PolicyError as e:
        return GateView(None, f"Policy problem: {e}")
    except (TargetNotFound, StoreMissing) as e:
        return GateView(None, str(e))
    return GateView(result, policy_name=policy.name)


@st.cache_data(ttl=TTL, show_spinner=False)
def history(store_path: str, stamp: int, name: str, version: str | None = None) -> pd.DataFrame:
    """Review log entries of a model (or one version), newest first; notes are plain text."""
    frame = pd.DataFrame([e.to_dict() for e in read_log(Store(store_path), name, version)])
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
def sort_criteria(result: GateResult) -> list[Any]:
    """Blocking criteria first, otherwise in the order the gate checked them."""
    return sorted(result.criteria, key=lambda c: not c.blocking)


def criteria_frame(result: GateResult) -> pd.DataFrame:
    rows = [{"status": STATUS_ICON[c.status], "criterion": c.name, "actual": c.actual, "required": c.required,
             "blocks": "yes" if c.blocking else "", "evidence": c.evidence} for c in result.criteria]
    frame = pd.DataFrame(rows, columns=["status", "criterion", "actual", "required", "blocks", "evidence"])
    order = {"yes": 0, "": 1}
    return frame.sort_values("blocks", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def criterion_line(c: Any) -> str:
    """One criterion in full, as plain text (a table cell would cut it): what, found, required, proof."""
    return f"{c.name}: {c.actual} (required {c.required}) — {c.evidence}"


def metrics_frame(result: GateResult) -> pd.DataFrame:
    """Long form: metric, series (candidate / baseline), value — NaN/missing left out (shown as gaps)."""
    t = result.target
    rows = []
    for metric, value in result.metrics.get("candidate", {}).items():
        if value is not None:
            rows.append({"metric": metric, "series": f"candidate v{t.version}", "value": value})
    b = result.baseline
    for metric, value in result.metrics.get("baseline", {}).items():
        if value is not None and b:
            rows.append({"metric": metric, "series": f"baseline v{b.version} ({b.label})", "value": value})
    return pd.DataFrame(rows, columns=["metric", "series", "value"])


def metrics_table(result: GateResult) -> pd.DataFrame:
    """One row per metric: candidate, baseline, their difference and the policy's lower bound (NaN: none)."""
    cand, base = result.metrics.get("candidate", {}), result.metrics.get("baseline", {}) if result.baseline else {}
    bounds = dict(zip(*[thresholds_frame(result)[c] for c in ("metric", "threshold")]))
    rows = []
    for metric in dict.fromkeys([*cand, *base]):
        c, b = cand.get(metric), base.get(metric)
        rows.append({"metric": metric, "candidate": c, "baseline": b,
                     "difference": c - b if c is not None and b is not None else None,
                     "threshold": bounds.get(metric)})
    return pd.DataFrame(rows, columns=["metric", "candidate", "baseline", "difference", "threshold"])


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
    lin = result.lineage
    runs = pd.DataFrame([{"platform": r.platform, "run": r.run_name or r.run_id,
                          "git_sha": short_sha(r.git_sha), "experiment": r.experiment or GAP}
                         for r in (lin.runs if lin else [])], columns=["platform", "run", "git_sha", "experiment"])
    # Name-level inputs carry no version_known (None): only an explicit False is "unknown".
    inputs = pd.DataFrame([{"platform": i.platform, "input": i.name,
                            "version": i.version if i.version_known is not False else f"{GAP} (unknown)"}
                           for i in (lin.inputs if lin else [])], columns=["platform", "input", "version"])
    gaps = pd.DataFrame([{"gap": g.kind.value, "where": g.node, "message": g.message}
                         for g in (lin.gaps if lin else [])], columns=["gap", "where", "message"])
    # A missing cell reads as the gap mark, never "None".
    return {k: f.astype(object).where(f.notna(), GAP) for k, f in
            (("runs", runs), ("inputs", inputs), ("gaps", gaps))}


def review_permission(config: Config, identity: Identity | None, result: GateResult,
                      chain_report: dict[str, Any]) -> dict[str, Any]:
    """What the review form may do: `may_review` + `why` (the form is disabled when False), the
    approval block, who authored the run, and whether write-back is possible and for whom."""
    if not chain_report["ok"]:
        ok, why = False, ("The review log fails verification, so no review can be recorded until it is restored "
                          "from a trusted copy (`python -m gates verify` lists the problems).")
    else:
        ok, why = may_review(config, identity, result.target.name)
    block = approval_block(config, identity, result) if ok and identity else None
    src = next((s for s in config.sources if s.name == result.target.source), None)
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
    entry: ReviewEntry | None = None
    writeback: WritebackOutcome | None = None
    registry: str | None = None     # for an approval: one plain sentence on whether the alias moved


def submit(config: Config, identity: Identity | None, result: GateResult, decision: str | None, note: str,
           writeback: bool) -> SubmitOutcome:
    """Record a review (and optionally write the approval back); caches are cleared after any write."""
    if decision is None:
        return SubmitOutcome(False, "Choose a decision (approve, reject or request changes): nothing was recorded.")
    store = Store(config.store_path)
    try:
        policy = policy_for(result.target.name, config.review.policy_dir)
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
    msg = (f"Recorded review #{entry.entry_id} (hash {entry.entry_hash[:12]}…): "
           f"{DECISION_LABELS[decision]} of {result.target.name} v{result.target.version}.")
    registry = None
    if decision == "approve":
        registry = registry_sentence(config, identity, result, policy, writeback, outcome)
    return SubmitOutcome(True, msg, entry=entry, writeback=outcome, registry=registry)


def registry_sentence(config: Config, identity: Identity | None, result: GateResult, policy: Any,
                      requested: bool, outcome: WritebackOutcome | None) -> str:
    """Whether an approval moved the alias in the registry, said as one plain sentence."""
    seen = result.baseline.alias if result.baseline else None
    alias = f"{result.target.name}@{policy.alias_to_move(seen, result.target.platform)}"
    if outcome is not None and outcome.ok:
        if policy.writeback_action == "alias":
            return f"The alias moved: {outcome.message} in the {result.target.source} registry."
        return f"The alias did not move (this policy tags instead): {outcome.message}."
    if outcome is not None:
        return f"The alias did not move: {alias} was left as it was ({outcome.message})."
    src = next((s for s in config.sources if s.name == result.target.source), None)
    if not (src and src.allow_registry_writes):
        why = f"source {result.target.source} does not allow registry writes, so Waymark only records the review"
    elif identity is None or not identity.may_write_registry:
        why = "an unverified approval is recorded but never changes a registry"
    elif not requested:
        why = "write-back was not asked for"
    else:   # pragma: no cover — requested and allowed always yields an outcome
        why = "no write-back was attempted"
    return f"The alias did not move: {alias} is unchanged ({why})."


def decision_options(perm: dict[str, Any]) -> tuple[str, ...]:
    """The decisions the form offers: approve only when this reviewer may approve this gate."""
    return tuple(d for d in DECISIONS if d != "approve" or not perm["approve_block"])


def same_as_latest(config: Config, identity: Identity | None, result: GateResult,
                   decision: str) -> ReviewEntry | None:
    """The latest review of this version if it is the same one again (decision, reviewer and the
    gate status seen), else None: the page asks before recording a repeat."""
    if identity is None:
        return None
    t = result.target
    entries = [e for e in read_log(Store(config.store_path), t.name, str(t.version))
               if e.kind == "review" and e.source == t.source]
    if not entries:
        return None
    last = entries[-1]
    same = (last.decision == decision and last.reviewer == canonical_identity(config, identity).name
            and last.gate_status == result.status)
    return last if same else None


# -- the review form's state (st.session_state; the callbacks run before the page script) -----------
OUTCOME_KEY, PENDING_KEY = "gates_review_outcome", "gates_review_pending"


def form_keys(candidate_key: str) -> dict[str, str]:
    """Widget keys of the review form, one set per candidate (a choice never carries over)."""
    import hashlib

    tag = hashlib.sha256(candidate_key.encode("utf-8")).hexdigest()[:12]
    return {f: f"review_{f}_{tag}" for f in ("decision", "note", "writeback")}


def record_review(config: Config, identity: Identity | None, result: GateResult, candidate_key: str,
                  confirmed: bool = False) -> None:
    """The form's submit (and the repeat's confirm) callback: checks, asks first on a repeat,
    records, and clears the form after a review is recorded. The page shows what it left in
    OUTCOME_KEY / PENDING_KEY."""
    state, keys = st.session_state, form_keys(candidate_key)
    pending = state.pop(PENDING_KEY, None)
    if confirmed:
        if not pending or pending["candidate"] != candidate_key:
            return
        decision, note, writeback = pending["decision"], pending["note"], pending["writeback"]
    else:
        decision, note, writeback = (state.get(keys["decision"]), state.get(keys["note"]) or "",
                                     bool(state.get(keys["writeback"])))
        previous = same_as_latest(config, identity, result, decision) if decision else None
        if previous is not None:
            state[PENDING_KEY] = {"candidate": candidate_key, "decision": decision, "note": note,
                                  "writeback": writeback, "entry_id": previous.entry_id,
                                  "question": (f"You already recorded {DECISION_LABELS[decision]} for "
                                               f"v{result.target.version} on {str(previous.recorded_at)[:10]}. "
                                               "Record again?")}
            return
    outcome = submit(config, identity, result, decision, note, writeback)
    state[OUTCOME_KEY] = outcome
    if outcome.ok:
        state[keys["decision"]] = None
        state[keys["note"]] = ""
        state[keys["writeback"]] = False


def cancel_repeat() -> None:
    st.session_state.pop(PENDING_KEY, None)


def alias_to_move(config: Config, result: GateResult) -> str:
    """The alias an approval of this result would move on write-back (see gates/writeback.py)."""
    policy = policy_for(result.target.name, config.review.policy_dir)
    return policy.alias_to_move(result.baseline.alias if result.baseline else None, result.target.platform)


def passed(result: GateResult) -> bool:
    return result.status == PASS
