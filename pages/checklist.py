"""Migration checklist: how far the move to Fabric + Azure ML is, step by step and workload by
workload, proven from the store where it can be and recorded by hand where it cannot."""
import streamlit as st

from checklist.manual import STATUS_LABELS, STATUSES, ManualStatusError
from ui import checklist_loaders as cl
from ui.format import show_table
from ui.identity import current_identity
from ui.safe_text import md
from ui.session import store_key, workspace

key = store_key()
plan_args = cl.plan_key()
FLASH = "checklist_saved"

st.title("Migration checklist")

plan = cl.plan(*plan_args)
if isinstance(plan, str):
    st.error(f"The migration plan cannot be read — fix the file and reload.\n\n{md(plan)}", icon="⚠️")
    st.stop()
st.caption(f"Databricks ML workloads, classified with the decision matrix and checked against what the "
           f"target platforms show. Plan: {md(plan.version_label)} (`data/plan/`).")

found = cl.assessment(*key, *plan_args)
if found is None:
    st.info("Nothing collected yet. Take a first snapshot on the **Snapshots** page.")
    st.stop()
if isinstance(found, str):
    st.error(md(found), icon="⚠️")
    st.stop()

if FLASH in st.session_state:
    st.success(st.session_state.pop(FLASH), icon="✅")

figures = found.headline
cols = st.columns(6)
cols[0].metric("Migration progress", "—" if figures["progress"] is None else f"{figures['progress']:.0%}",
               help="Workloads done or decided to stay, of those in scope")
cols[1].metric("Complete", f"{figures['complete']} of {figures['workloads']}")
cols[2].metric("Proven by evidence", figures["proven"])
blocked_steps = figures.get("blocked_steps", 0)
cols[3].metric("Blocked", figures["blocked"] + blocked_steps,
               help=f"{figures['blocked']} workload(s) and {blocked_steps} checklist step(s) blocked")
cols[4].metric("Unowned", figures["unowned"])
cols[5].metric("Evidence disagrees", figures["disagreements"])

workloads = found.workloads
for row in workloads[workloads["disagreement"] != ""].itertuples():
    st.warning(f"**{md(row.name)}** ({md(row.asset_type.replace('_', ' '))}): {md(row.disagreement)}", icon="⚖️")

st.subheader("Burn-up")
history = cl.burn_up(*key, *plan_args)
if history.empty:
    st.caption("No snapshot history yet.")
else:
    st.altair_chart(cl.burn_up_chart(history), width="stretch")

left, right = st.columns([3, 2])
with left:
    st.subheader("Checklist steps")
    show_table(
        found.steps, ["title", "state", "progress", "complete", "workloads", "blocked", "owner", "due",
                      "manual_status", "number", "detail"],
        {"title": st.column_config.Column("Step", width="medium"), "state": "Status",
         "progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=1.0, format="percent"),
         "workloads": "Of", "manual_status": "Set by hand", "number": st.column_config.NumberColumn("#", format="%d"),
         "detail": "How measured"},
        status=("state", "manual_status"), empty="The plan has no steps.")
    st.download_button("Download steps (CSV)", cl.steps_csv(found.steps), file_name="migration-steps.csv",
                       mime="text/csv")
with right:
    st.subheader("Workload kinds")
    show_table(
        found.kinds, ["workload", "progress", "workloads", "complete", "blocked", "unowned", "proven", "target"],
        {"workload": st.column_config.Column("Kind", width="medium"),
         "progress": st.column_config.ProgressColumn("Progress", min_value=0.0, max_value=1.0, format="percent")},
        empty="No workload collected yet.")
    with st.expander("Decision matrix"):
        show_table(cl.matrix_table(plan), empty="The plan has no workload kinds.")

st.subheader("Workloads")
with st.container(border=True):
    f1, f2, f3 = st.columns(3)
    chosen_kinds = f1.multiselect("Kind", sorted(workloads["kind"].unique()))
    chosen_statuses = f2.multiselect("Status", list(STATUSES), format_func=STATUS_LABELS.get)
    chosen_owner = f3.selectbox("Owner", ["anyone", "unowned"] + cl.owners(workloads))
    f4, f5, f6 = st.columns(3)
    search = f4.text_input("Name contains")
    only_disagreements = f5.toggle("Only where evidence disagrees")
    include_out_of_scope = f6.toggle("Include out-of-scope assets", value=True)
shown = cl.filter_workloads(workloads, kinds=chosen_kinds, statuses=chosen_statuses, owner=chosen_owner,
                            only_disagreements=only_disagreements, include_out_of_scope=include_out_of_scope,
                            text=search)
# Decisive first: the asset (pinned), then its status, owner and due date.
show_table(
    shown, ["name", "status", "owner", "due", "workload", "target", "evidence_status", "manual_status", "asset_type",
            "source", "evidence", "disagreement", "rule", "reason", "steps", "in_scope", "updated_by"],
    {"name": "Asset", "asset_type": "Type", "workload": "Kind", "evidence_status": "Evidence says",
     "manual_status": "Set by hand", "reason": "Why",
     "in_scope": "Counted", "updated_by": "Last edit by"},
    status=("status", "evidence_status", "manual_status"), empty="No workload matches these filters.")
st.download_button("Download workloads (CSV)", cl.workloads_csv(shown), file_name="migration-workloads.csv",
                   mime="text/csv")

st.subheader("Update a workload or step")
items = cl.editable_items(found)
# The item being edited lives in the URL (`?item=<asset or step key>`), so a link opens it.
if "checklist_item" not in st.session_state and st.query_params.get("item") in items:
    st.session_state["checklist_item"] = st.query_params["item"]
item = st.selectbox("Item", list(items), format_func=items.get, key="checklist_item")
st.query_params["item"] = item
state = cl.item_state(found, item)
if not state["is_step"]:
    st.caption(f"Evidence: {md(state['row']['evidence'])} · classified by {md(state['row']['rule'])}: "
               f"{md(state['row']['reason'])}")
identity = current_identity(workspace().config)
with st.form("manual_status"):
    status_options = [None] + list(STATUSES)
    status = st.selectbox("Status", status_options, index=status_options.index(state["status"]),
                          format_func=lambda s: cl.EVIDENCE_LABEL if s is None else STATUS_LABELS[s])
    owner = st.text_input("Owner", value=state["owner"])
    due = st.date_input("Due", value=state["due"])
    notes = st.text_area("Notes", value=state["notes"])
    kind_options = [None] + list(plan.kinds)
    kind_override = None
    if not state["is_step"]:
        kind_override = st.selectbox("Workload kind", kind_options, index=kind_options.index(state["kind_override"]),
                                     format_func=lambda k: cl.RULE_LABEL if k is None else plan.kinds[k].workload)
    saved = st.form_submit_button("Save", type="primary", disabled=identity is None)
    if identity is None:
        st.caption("Sign in to record changes: every entry says who made it.")
    else:
        st.caption(f"Saved as **{md(identity.label)}**, with the time, in this item's history.")
if saved and identity is not None:
    try:
        cl.save_manual_state(key[0], item, who=identity, status=status, owner=owner, due=due, notes=notes,
                             kind_override=kind_override, known_kinds=list(plan.kinds))
    except ManualStatusError as e:
        st.error(md(e))
    else:
        st.session_state[FLASH] = f"Saved: {md(items[item])}"
        st.rerun()

st.caption("History of this item")
item_history = cl.item_history(found, item)
show_table(item_history, config={"recorded_at": "When",
                                  "kind_override": "Kind set to"},
           status=("status",), empty="Nothing recorded by hand yet.")
