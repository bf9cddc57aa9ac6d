"""Promotion gates: the candidates per model with their gate, one candidate's criteria, metrics
beside the baseline, lineage and gaps, the review form and the decision history."""
import altair as alt
import streamlit as st

from gates.reviews import DECISION_LABELS, DECISIONS
from ui import gates_loaders as gl
from ui.identity import current_identity
from ui.safe_text import label, md
from ui.session import store_key, workspace

ws = workspace()
key = store_key()
config_path = str(ws.config_path)

st.title("Promotion gates")
st.caption("Every candidate newer than its baseline (the version holding @champion or @Production; on Azure ML "
           "the one with the most endpoint traffic), gated by its policy: thresholds, no worse than the baseline, "
           "reproducibility and lineage. Reviews are signed, append-only and hash-chained.")

identity = current_identity(ws.config)
if identity is None:
    st.warning("No reviewer identity: sign in, or set `[review] local_identity` in the config. "
               "You can read gates but not review.", icon=":material/person_off:")
elif identity.verified:
    st.caption(f":material/verified_user: Signed in as **{md(identity.name)}** (verified, OIDC)")
else:
    st.caption(f":material/person: Reviewing as **{md(identity.name)}** — unverified local identity "
               "(configure OIDC sign-in to verify reviewers)")

q = gl.queue(*key, config_path)
if q["error"]:
    st.error(md(q["error"]), icon=":material/rule:")
    st.stop()
if not q["choices"]:
    st.info("No model versions collected yet. Take a snapshot on the **Snapshots** page.")
    st.stop()

st.subheader("Queue")
frame = q["frame"]
if frame.empty:
    st.success("No candidates: no version is newer than its baseline on any model.")
else:
    st.dataframe(frame.drop(columns=["key"]), hide_index=True, width="stretch",
                 column_config={"platform": "Platform", "source": "Source", "model": "Model", "version": "Version",
                                "baseline": "Baseline", "gate": "Gate", "blocking": "What blocks",
                                "pass": "Pass", "fail": "Fail", "unknown": "Unknown",
                                "last_decision": "Last decision",
                                "lineage": st.column_config.LinkColumn("Lineage", display_text="Lineage →",
                                                                       help="Open this version in the Lineage explorer")})
    if q["blocks"]:
        # A table cell cuts long text: what blocks each candidate, in full, wrapped.
        st.markdown("**What blocks**\n\n" + "\n".join(
            f"- **{md(b['candidate'], one_line=True)}**\n" + "\n".join(f"    - {md(w, one_line=True)}" for w in b["why"])
            for b in q["blocks"]))

keys = {choice: k for k, choice in q["choices"]}
# A pasted link (`?source=…&model=…&version=…`) chooses the version once per session; the choice
# then writes the URL.
linked = gl.choice_from_params(st.query_params.to_dict(), q["choices"])
if st.session_state.get("gates_candidate") not in keys:     # first visit, or relabelled by a new gate status
    st.session_state.pop("gates_candidate", None)
    if linked is not None:
        st.session_state["gates_candidate"] = linked
chosen = st.selectbox("Candidate (or any version)", list(keys), key="gates_candidate")
st.query_params.from_dict(gl.params_for(keys[chosen]))
view = gl.gate(*key, config_path, keys[chosen])
if view.error or view.result is None:
    st.error(md(view.error) if view.error else "No gate result.", icon=":material/rule:")
    st.stop()
result = view.result
t = result.target
base = result.baseline

if result.status == "PASS":
    st.success(f"Gate PASS — {md(t.name)} v{md(t.version)} ({md(t.platform)}) meets every criterion "
               "of its policy.", icon=":material/check_circle:")
else:
    st.error(f"Gate FAIL — {md(t.name)} v{md(t.version)} ({md(t.platform)}) is blocked by: "
             + ", ".join(md(c.name) for c in result.blocking), icon=":material/block:")
cols = st.columns(4)
cols[0].metric("Baseline now", f"v{label(base.version)}" if base else
               ("none" if result.baseline_state == "first_promotion" else "unknown"))
cols[1].metric("Passing", result.counts()["PASS"])
cols[2].metric("Failing", result.counts()["FAIL"])
cols[3].metric("Unknown", result.counts()["UNKNOWN"])
if result.baseline_state == "found":
    st.caption(md(result.baseline_summary))
elif result.baseline_state == "first_promotion":
    st.info(md(result.baseline_summary), icon=":material/fiber_new:")
elif result.baseline_state:
    st.warning(md(result.baseline_summary), icon=":material/help:")
st.caption(f"Policy **{md(view.policy_name)}** (sha256 {md(result.policy.sha256[:12])}…) · snapshots "
           + ", ".join(f"{md(s)} #{md(i)}" for s, i in result.snapshot_ids.items()))

st.subheader("Criteria")
st.dataframe(gl.criteria_frame(result), hide_index=True, width="stretch",
             column_config={"status": "Status", "criterion": "Criterion", "actual": "Actual",
                            "required": "Required", "blocks": "Blocks", "evidence": "Evidence"})
with st.expander("Evidence of each criterion, in full", expanded=bool(result.blocking)):
    st.markdown("\n".join(f"- {gl.STATUS_ICON[c.status]} · {md(gl.criterion_line(c), one_line=True)}"
                          + (" · **blocks**" if c.blocking else "") for c in gl.sort_criteria(result)))

st.subheader("Metrics beside the baseline")
metrics = gl.metrics_frame(result)
if metrics.empty:
    st.info("No usable metric values (missing or NaN) for this version or its baseline.")
else:
    # Figures first (a chart costs the browser about a second to draw; it is there on request).
    st.dataframe(gl.metrics_table(result), hide_index=True, width="stretch",
                 column_config={"metric": "Metric",
                                "candidate": st.column_config.NumberColumn(f"Candidate v{t.version}",
                                                                           format="%.4f"),
                                "baseline": st.column_config.NumberColumn(
                                    f"Baseline v{base.version}" if base else "Baseline", format="%.4f"),
                                "difference": st.column_config.NumberColumn("Difference", format="%+.4f"),
                                "threshold": st.column_config.NumberColumn("Threshold (≥)", format="%.4f")})
    if st.toggle("Show as a chart", key="gates_metrics_chart"):
        bars = alt.Chart(metrics).mark_bar().encode(
            x=alt.X("metric:N", title=None), xOffset="series:N",
            y=alt.Y("value:Q", title="value", scale=alt.Scale(zero=False)),
            color=alt.Color("series:N", title=None),
            tooltip=["metric", "series", alt.Tooltip("value:Q", format=".4f")])
        thresholds = gl.thresholds_frame(result)
        chart = bars
        if not thresholds.empty:
            chart = bars + alt.Chart(thresholds).mark_tick(color="#c0392b", thickness=2, size=40).encode(
                x="metric:N", y="threshold:Q", tooltip=["metric", "threshold"])
        st.altair_chart(chart.properties(height=280), width="stretch")

gaps = gl.metric_gaps(result)
if gaps:
    st.caption("Not charted, not a finite number: " + "; ".join(gaps))

st.subheader("Lineage")
lineage = gl.lineage_frames(result)
if result.lineage is None:
    st.caption("No lineage trace for this policy or version (see the lineage criteria above).")
else:
    left, right = st.columns(2)
    left.caption("Runs upstream")
    left.dataframe(lineage["runs"], hide_index=True, width="stretch")
    right.caption("Inputs (data versions)")
    right.dataframe(lineage["inputs"], hide_index=True, width="stretch")
    if lineage["gaps"].empty:
        st.caption("No lineage gaps.")
    else:
        st.caption(f"{len(lineage['gaps'])} gap(s)")
        st.dataframe(lineage["gaps"], hide_index=True, width="stretch")

st.subheader("Review")
chain = gl.chain(*key)
perm = gl.review_permission(ws.config, identity, result, chain)
if not chain["ok"]:
    st.error(md(perm["why"]), icon=":material/link_off:")
elif not perm["may_review"]:
    st.info(md(perm["why"]), icon=":material/lock:")
st.caption("Separation of duties: who authored the producing run, as the config knows them")
st.dataframe(gl.authors_frame(perm["authors"]), hide_index=True, width="stretch",
             column_config={"name": "Name on the platform", "identity": "Identity", "known": "Known"})
if perm["writeback_unverified"]:
    st.caption(":material/sync_disabled: Your identity is unverified, so an approval is recorded as unverified "
               "and does **not** move the alias in the registry. Only a reviewer signed in with OIDC can write "
               "to a registry.")
candidate = keys[chosen]
fields = gl.form_keys(candidate)
options = gl.decision_options(perm)
if st.session_state.get(fields["decision"]) not in (None, *options):
    del st.session_state[fields["decision"]]      # a choice this gate no longer offers
locked = not perm["may_review"]
with st.form("review"):
    decision = st.radio("Decision", options, index=None, format_func=DECISION_LABELS.get, horizontal=True,
                        disabled=locked, key=fields["decision"])
    if perm["may_review"] and perm["approve_block"]:
        st.caption(f":material/block: Approve is not offered: {md(perm['approve_block'])}")
    st.text_area("Note (required)", placeholder="What did you check, and why this decision?",
                 max_chars=4000, disabled=locked, key=fields["note"])
    if perm["writeback_allowed"] and "approve" in options:
        st.checkbox(f"On approval, also move @{label(gl.alias_to_move(ws.config, result))} in the "
                    f"{label(t.source)} registry", disabled=locked, key=fields["writeback"])
    st.form_submit_button("Record review", type="primary", disabled=locked, on_click=gl.record_review,
                          args=(ws.config, identity, result, candidate))
pending = st.session_state.get(gl.PENDING_KEY)
if pending and pending["candidate"] == candidate:
    with st.container(border=True):
        st.warning(md(pending["question"]), icon=":material/content_copy:")
        yes, no = st.columns(2)
        yes.button("Record again", type="primary", on_click=gl.record_review,
                   args=(ws.config, identity, result, candidate, True))
        no.button("Cancel", on_click=gl.cancel_repeat)
outcome = st.session_state.pop(gl.OUTCOME_KEY, None)
if outcome is not None:
    if outcome.ok:
        st.success(md(outcome.message), icon=":material/task_alt:")
        if outcome.writeback is not None and not outcome.writeback.ok:
            st.error(md(outcome.registry), icon=":material/sync_problem:")
        elif outcome.writeback is not None:
            st.success(md(outcome.registry), icon=":material/sync:")
        elif outcome.registry:
            st.info(md(outcome.registry), icon=":material/sync_disabled:")
    elif outcome.stale:
        st.warning(md(outcome.message), icon=":material/update:")
    else:
        st.error(md(outcome.message), icon=":material/gpp_bad:")

st.subheader("Decision history")
hist = gl.history(*key, t.name)
if hist.empty:
    st.caption(f"No review of {md(t.name)} yet.")
else:
    st.dataframe(hist, hide_index=True, width="stretch",
                 column_config={"entry_id": st.column_config.NumberColumn("#", format="%d"),
                                "recorded_at": "When (UTC)", "version": "Version", "what": "Decision",
                                "who": "Reviewer", "gate_status": "Gate seen", "note": "Note",
                                "snapshot_ids": "Snapshots seen", "hash": "Entry hash"})
chain = gl.chain(*key)   # again: a review recorded above moved the head
if chain["ok"]:
    st.caption(f":material/link: Review log intact: {chain['entries']} entries, head "
               f"{md(chain['head_hash'][:16] or '—')} (`python -m gates verify`)")
else:
    st.error("Review log tampered with:\n\n" + "\n".join(f"- {md(p, one_line=True)}" for p in chain["problems"]),
             icon=":material/link_off:")
