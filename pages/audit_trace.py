"""Audit trace: what served under an alias or behind an endpoint on a date — its version(s) with
traffic, run, git SHA and data versions, each hop with its evidence and snapshot — with the alias's
history and a downloadable evidence pack. The page's state (start, alias or endpoint, date) lives in
the URL, so a link pasted into a ticket opens the same answer."""
import altair as alt
import streamlit as st

from ui import lineage_loaders as ll
from ui.format import show_table
from ui.identity import current_identity
from ui.safe_text import label, md
from ui.session import store_key, workspace

key = store_key()
params = st.query_params

st.title("Audit trace")
st.caption("Pick an alias or a serving endpoint and a date: the chain back to the version(s) served, the "
           "run, git SHA and data versions, as the snapshots of that date recorded it. Gaps are links no "
           "recorded field proves.")

current = ll.lineage_graph(*key, None)
if current is None or len(current) == 0:
    st.info("Nothing collected yet. Take a snapshot on the **Snapshots** page.")
    st.stop()
choices = ll.alias_choices(current)
endpoints = ll.endpoint_choices(current)
if choices.empty and endpoints.empty:
    st.info("No registry aliases and no serving endpoints collected yet.")
    st.stop()

# The URL seeds the widgets once per session; afterwards the widgets write the URL.
wanted = ll.state_from_params(params.to_dict(), choices, endpoints)
for widget, value in wanted.items():
    if value is not None and widget not in st.session_state:
        st.session_state[widget] = value

kinds = [k for k, frame in (("Alias", choices), ("Endpoint", endpoints)) if not frame.empty]
pick = st.columns([2, 4, 2], vertical_alignment="bottom")
start = pick[0].radio("Start from", kinds, horizontal=True, key="audit_start")
# Only the picker for the chosen start is shown: the other would not be used.
if start == "Endpoint":
    endpoint_label = pick[1].selectbox("Endpoint", endpoints["label"].tolist(), key="audit_endpoint",
                                       help="Every endpoint ever seen, removed ones included.")
    chosen = endpoints.loc[endpoints["label"] == endpoint_label].iloc[0]
    stem = f"evidence-endpoint-{chosen['endpoint']}"
else:
    alias_label = pick[1].selectbox("Alias", choices["label"].tolist(), key="audit_alias")
    chosen = choices.loc[choices["label"] == alias_label].iloc[0]
    stem = f"evidence-{chosen['model']}-{chosen['alias']}"
typed = pick[2].text_input("As of (YYYY-MM-DD)", key="audit_day", placeholder="empty: now", max_chars=10,
                           help="Empty: now. A date: the end of that day (UTC). Press Enter to apply.")
day, bad_day = ll.parse_day(typed)
if bad_day:
    st.error(bad_day, icon=":material/event_busy:")
    st.stop()
params.from_dict(ll.params_for(start, chosen, day))
as_of = ll.as_of_for(day)

answer, problem = ll.audit_trace(*key, chosen["node_id"], as_of)
if answer is None:
    if start == "Endpoint":
        st.warning(f"Endpoint {md(chosen['endpoint'])} did not exist on {day or 'now'}: {md(problem)}.", icon="⚠️")
    else:
        st.warning(md(ll.alias_absent(current, chosen["source"], chosen["model"], chosen["alias"], day))
                   + " Its history is below.", icon="⚠️")
else:
    tables = ll.summary_tables(answer)
    figures = st.columns(4)
    figures[0].metric("Runs", len(tables["runs"]))
    figures[1].metric("Git SHAs", len(answer.git_shas))
    figures[2].metric("Data inputs", len(tables["inputs"]))
    figures[3].metric("Gaps", len(tables["gaps"]))
    for gap in ll.real_gaps(answer):
        st.warning(f"**{md(gap.kind.value.replace('_', ' '))}** — {md(gap.message)}", icon="⚠️")
    for note in ll.notes(answer):
        st.info(md(note.message), icon=":material/info:")

    if start == "Endpoint":
        st.page_link("pages/endpoint_health.py", label="Health of this endpoint", icon=":material/monitor_heart:",
                     query_params={"source": chosen["source"], "endpoint": chosen["endpoint"]})
        st.subheader("Served versions and traffic")
        show_table(ll.serving_table(answer), ["route", "model", "version", "traffic_pct", "state", "endpoint"],
                   {"traffic_pct": st.column_config.NumberColumn("Traffic %", format="%g")},
                   empty="This endpoint served no model version at that time.")
        pending = ll.pending_table(answer)
        if not pending.empty:
            st.caption("Pending config (an update in progress): not serving yet, so not traced.")
            show_table(pending, empty="No pending config.")

    left, right = st.columns(2)
    with left:
        st.subheader("Runs and git SHAs")
        show_table(tables["runs"], config={"run_name": "Run", "git_sha": "Git SHA", "run_id": "Run ID"},
                   empty="No run behind this version was collected.")
    with right:
        st.subheader("Data versions")
        show_table(tables["inputs"], config={"name": "Data", "version": "Data version"},
                   empty="No data input was recorded for these runs.")

    st.subheader("Chain, one hop per row")
    show_table(ll.chain_table(answer, ll.snapshot_finished(*key)),
               ["upstream", "downstream", "kind", "basis", "field", "source", "snapshot", "snapshot_time",
                "since_snapshot", "repeated", "depth", "upstream_id", "downstream_id"],
               {"upstream": "From", "downstream": "To", "snapshot_time": "Snapshot time",
                "upstream_id": "From (node id)", "downstream_id": "To (node id)"},
               empty="No hop: the target has no recorded upstream.")

    who = current_identity(workspace().config)
    pack_json, pack_md, pack_html = ll.evidence_pack(answer, who.label if who else "unknown (not signed in)")
    downloads = st.columns(3)
    downloads[0].download_button("Evidence pack (Markdown)", pack_md, file_name=f"{stem}.md", mime="text/markdown")
    downloads[1].download_button("Evidence pack (printable HTML)", pack_html, file_name=f"{stem}.html",
                                 mime="text/html", help="Open it and print: one clean page per section.")
    downloads[2].download_button("Evidence pack (JSON)", pack_json, file_name=f"{stem}.json",
                                 mime="application/json")

if start == "Endpoint":
    st.stop()
st.subheader(f"Alias history of {label(chosen['model'])} ({label(chosen['source'])})")
timeline = ll.alias_timeline(*key, chosen["source"], chosen["model"])
if timeline.empty:
    st.caption("No alias history.")
else:
    chart = alt.Chart(timeline).mark_bar(height=18).encode(
        x=alt.X("from:T", title="seen from", axis=alt.Axis(format="%Y-%m-%d", labelAngle=0)), x2="until:T",
        y=alt.Y("alias:N", title=None), color=alt.Color("version:N", title="version"),
        tooltip=["alias", "version", alt.Tooltip("from:T", format="%Y-%m-%d %H:%M"),
                 alt.Tooltip("until:T", format="%Y-%m-%d %H:%M"), "snapshot_from"])
    st.altair_chart(chart, width="stretch")
