"""Audit trace: what served under an alias on a date — its version, run, git SHA and data versions,
each hop with its evidence and snapshot — with the alias's history and a downloadable evidence pack."""
import altair as alt
import streamlit as st

from ui import lineage_loaders as ll
from ui.session import store_key

key = store_key()

st.title("Audit trace")
st.caption("Pick an alias and a date: the chain back to the run, git SHA and data versions, as the "
           "snapshots of that date recorded it. Gaps are links no recorded field proves.")

current = ll.lineage_graph(*key, None)
if current is None or len(current) == 0:
    st.info("Nothing collected yet. Take a snapshot on the **Snapshots** page.")
    st.stop()
choices = ll.alias_choices(current)
if choices.empty:
    st.info("No registry aliases collected. (Endpoints will be traceable here once they are collected.)")
    st.stop()

pick = st.columns([3, 1])
label = pick[0].selectbox("Alias", choices["label"].tolist(), key="audit_alias")
day = pick[1].date_input("As of", value=None, key="audit_day", help="Empty: now. A date: end of that day (UTC).")
chosen = choices.loc[choices["label"] == label].iloc[0]
as_of = ll.as_of_for(day)

answer, problem = ll.audit_trace(*key, chosen["node_id"], as_of)
if answer is None:
    st.warning(f"{problem}. The alias may not have existed at that time — see its history below.", icon="⚠️")
else:
    tables = ll.summary_tables(answer)
    figures = st.columns(4)
    figures[0].metric("Runs", len(tables["runs"]))
    figures[1].metric("Git SHAs", len(answer.summary["git_shas"]))
    figures[2].metric("Data inputs", len(tables["inputs"]))
    figures[3].metric("Gaps", len(tables["gaps"]))
    for gap in answer.gaps:
        st.warning(f"**{gap['gap']}** — {gap['message']}", icon="⚠️")

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
    stem = f"evidence-{chosen['model']}-{chosen['alias']}"
    downloads[0].download_button("Evidence pack (Markdown)", pack_md, file_name=f"{stem}.md", mime="text/markdown")
    downloads[1].download_button("Evidence pack (JSON)", pack_json, file_name=f"{stem}.json",
                                 mime="application/json")

st.subheader(f"Alias history of {chosen['model']} ({chosen['source']})")
timeline = ll.alias_timeline(*key, chosen["source"], chosen["model"])
if timeline.empty:
    st.caption("No alias history.")
else:
    chart = alt.Chart(timeline).mark_bar(height=18).encode(
        x=alt.X("from:T", title="seen from"), x2="until:T",
        y=alt.Y("alias:N", title=None), color=alt.Color("version:N", title="version"),
        tooltip=["alias", "version", "from:T", "until:T", "snapshot_from"])
    st.altair_chart(chart, width="stretch")
