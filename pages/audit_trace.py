"""Audit trace: what served under an alias or behind an endpoint on a date — its version(s) with
traffic, run, git SHA and data versions, each hop with its evidence and snapshot — with the alias's
history and a downloadable evidence pack."""
import altair as alt
import streamlit as st

from ui import lineage_loaders as ll
from ui.safe_text import label, md
from ui.session import store_key

key = store_key()

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

kinds = [k for k, frame in (("Alias", choices), ("Endpoint", endpoints)) if not frame.empty]
start = st.radio("Start from", kinds, horizontal=True, key="audit_start")
pick = st.columns([3, 3, 1])
alias_label = pick[0].selectbox("Alias", choices["label"].tolist(), key="audit_alias", disabled=choices.empty)
endpoint_label = pick[1].selectbox("Endpoint", endpoints["label"].tolist(), key="audit_endpoint",
                                   disabled=endpoints.empty, help="Every endpoint ever seen, removed ones included.")
day = pick[2].date_input("As of", value=None, key="audit_day", help="Empty: now. A date: end of that day (UTC).")
as_of = ll.as_of_for(day)
if start == "Endpoint":
    chosen = endpoints.loc[endpoints["label"] == endpoint_label].iloc[0]
    stem = f"evidence-endpoint-{chosen['endpoint']}"
else:
    chosen = choices.loc[choices["label"] == alias_label].iloc[0]
    stem = f"evidence-{chosen['model']}-{chosen['alias']}"

answer, problem = ll.audit_trace(*key, chosen["node_id"], as_of)
if answer is None:
    what = "endpoint" if start == "Endpoint" else "alias"
    st.warning(f"{md(problem)}. The {what} may not have existed at that time"
               + (" — see its history below." if start != "Endpoint" else "."), icon="⚠️")
else:
    tables = ll.summary_tables(answer)
    figures = st.columns(4)
    figures[0].metric("Runs", len(tables["runs"]))
    figures[1].metric("Git SHAs", len(answer.summary["git_shas"]))
    figures[2].metric("Data inputs", len(tables["inputs"]))
    figures[3].metric("Gaps", len(tables["gaps"]))
    for gap in answer.gaps:
        st.warning(f"**{md(gap['gap'])}** — {md(gap['message'])}", icon="⚠️")

    if start == "Endpoint":
        st.subheader("Served versions and traffic")
        st.dataframe(ll.serving_table(answer), hide_index=True, width="stretch",
                     column_config={"traffic_pct": st.column_config.NumberColumn("traffic %", format="%g")})
        pending = ll.pending_table(answer)
        if not pending.empty:
            st.caption("Pending config (an update in progress): not serving yet, so not traced.")
            st.dataframe(pending, hide_index=True, width="stretch")

    st.subheader("Chain, one hop per row")
    st.dataframe(ll.chain_table(answer, ll.snapshot_finished(*key)), hide_index=True, width="stretch",
                 column_config={"snapshot_time": st.column_config.DatetimeColumn("Snapshot time",
                                                                                 format="YYYY-MM-DD HH:mm")})
    left, right = st.columns(2)
    with left:
        st.subheader("Runs and git SHAs")
        st.dataframe(tables["runs"], hide_index=True, width="stretch")
    with right:
        st.subheader("Data versions")
        st.dataframe(tables["inputs"], hide_index=True, width="stretch")

    pack_json, pack_md = ll.evidence_pack(answer)
    downloads = st.columns(2)
    downloads[0].download_button("Evidence pack (Markdown)", pack_md, file_name=f"{stem}.md", mime="text/markdown")
    downloads[1].download_button("Evidence pack (JSON)", pack_json, file_name=f"{stem}.json",
                                 mime="application/json")

if start == "Endpoint":
    st.stop()
st.subheader(f"Alias history of {label(chosen['model'])} ({label(chosen['source'])})")
timeline = ll.alias_timeline(*key, chosen["source"], chosen["model"])
if timeline.empty:
    st.caption("No alias history.")
else:
    chart = alt.Chart(timeline).mark_bar(height=18).encode(
        x=alt.X("from:T", title="seen from"), x2="until:T",
        y=alt.Y("alias:N", title=None), color=alt.Color("version:N", title="version"),
        tooltip=["alias", "version", "from:T", "until:T", "snapshot_from"])
    st.altair_chart(chart, width="stretch")
