"""Overview: are the sources fresh, what is collected, what serves under each alias."""
import streamlit as st

from ui import checklist_loaders, loaders
from ui.safe_text import md
from ui.session import store_key, workspace

ws = workspace()
key = store_key()

st.title("Overview")
st.caption("Governance of the ML estate across Databricks, Fabric and Azure ML — "
           + ("embedded demo workspace." if ws.is_demo else f"sources from {md(ws.config_path)}."))

figures = loaders.headline(*key)
if not figures:
    st.info("Nothing collected yet. Take a first snapshot on the **Snapshots** page.")
    st.stop()

migration = checklist_loaders.migration_headline(*key)
cols = st.columns(7)
cols[0].metric("Migrated", migration.get("label") or "—", help=migration.get("help"))
cols[1].metric("Sources", figures["sources"], delta=f"{figures['failing']} failing" if figures["failing"] else None,
               delta_color="inverse")
cols[2].metric("Data age", figures["oldest_good"], help="Age of the oldest source's last good snapshot")
cols[3].metric("Experiments", f"{figures['experiments']:,}")
cols[4].metric("Runs", f"{figures['runs']:,}")
cols[5].metric("Model versions", f"{figures['model_versions']:,}")
cols[6].metric("Aliases", f"{figures['aliases']:,}")
if migration.get("error"):
    st.caption("Migration progress unavailable: the plan in data/plan/ does not validate (see Checklist).")

st.subheader("Sources")
status = loaders.source_status(*key)
for row in status.itertuples():
    if row.state == "failing":
        st.error(f"**{md(row.source)}**: the last pass failed — showing its last good snapshot "
                 f"({row.age}). {md(row.last_error)}", icon=":material/error:")
st.dataframe(
    status, hide_index=True, width="stretch",
    column_config={
        "source": "Source", "platform": "Platform", "kind": "Kind", "state": "State",
        "last_good_at": st.column_config.DatetimeColumn("Last good snapshot", format="YYYY-MM-DD HH:mm"),
        "age": "Age", "last_good_mode": "Mode",
        "last_good_id": st.column_config.NumberColumn("Snapshot", format="%d"),
        "failures_since_good": st.column_config.NumberColumn("Failures since", format="%d"),
        "last_attempt_at": st.column_config.DatetimeColumn("Last attempt", format="YYYY-MM-DD HH:mm"),
        "last_error": "Last error",
    })

st.subheader("What each alias points at")
st.caption("The run behind each version: its own run, or for a copy registered from artifacts, "
           "the run its MLmodel names on the platform it came from.")
aliases = loaders.aliases_now(*key)
if aliases.empty:
    st.caption("No registry aliases collected.")
else:
    st.dataframe(aliases, hide_index=True, width="stretch",
                 column_config={"platform": "Platform", "source": "Source", "name": "Model", "alias": "Alias",
                                "version": "Version", "status": "Status", "run": "Produced by run",
                                "git_sha": "Git SHA"})

with st.expander("Collected entities per source"):
    st.dataframe(loaders.counts_by_source(*key), hide_index=True, width="stretch")
