"""Overview: are the sources fresh, what is collected, what serves under each alias."""
import streamlit as st

from ui import checklist_loaders, loaders
from ui.format import show_table
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
# Tiles share one line on a desktop and wrap in twos on a phone (Streamlit's own breakpoint, 640 px).
st.html("<style>.st-key-overview_tiles > div { flex: 1 1 0; min-width: 0; }"
        "@media (max-width: 640px) { .st-key-overview_tiles > div { flex: 1 1 calc(50% - 1rem); } }</style>")
TILE = "stretch"
with st.container(horizontal=True, gap="small", key="overview_tiles"):
    st.metric("Migrated", migration.get("label") or "—", help=migration.get("help"), width=TILE)
    st.metric("Sources", figures["sources"], delta=f"{figures['failing']} failing" if figures["failing"] else None,
              delta_color="inverse", width=TILE)
    st.metric("Data age", figures["oldest_good"].removesuffix(" ago"),
              help="Age of the oldest source's last good snapshot", width=TILE)
    st.metric("Experiments", f"{figures['experiments']:,}", width=TILE)
    st.metric("Runs", f"{figures['runs']:,}", width=TILE)
    st.metric("Model versions", f"{figures['model_versions']:,}", width=TILE)
    st.metric("Aliases", f"{figures['aliases']:,}", width=TILE)
if migration.get("error"):
    st.caption("Migration progress unavailable: the plan in data/plan/ does not validate (see Checklist).")

st.subheader("Sources")
status = loaders.source_status(*key)
for row in status.itertuples():
    if row.state == "failing":
        st.error(f"**{md(row.source)}**: the last pass failed — showing its last good snapshot "
                 f"({row.age}). {md(row.last_error)}", icon=":material/error:")
show_table(
    status, ["source", "state", "age", "platform", "kind", "last_good_at", "last_good_mode", "last_good_id",
             "failures_since_good", "last_attempt_at", "last_error"],
    {"source": "Source", "state": "State", "age": "Age", "last_good_at": "Last good snapshot",
     "last_good_mode": "Mode", "last_good_id": st.column_config.NumberColumn("Snapshot", format="%d"),
     "failures_since_good": st.column_config.NumberColumn("Failures since", format="%d"),
     "last_attempt_at": st.column_config.DatetimeColumn("Last attempt", format="YYYY-MM-DD HH:mm")},
    status=("state", "last_good_mode"), empty="No source has been collected yet.")

st.subheader("What each alias points at")
st.caption("The run behind each version: its own run, or for a copy registered from artifacts, "
           "the run its MLmodel names on the platform it came from. *Trace* opens the alias on the Audit trace.")
show_table(
    loaders.aliases_now(*key), ["name", "alias", "version", "run", "git_sha", "audit", "status", "platform", "source"],
    {"name": "Model", "alias": "Alias", "version": "Version", "run": "Produced by run", "git_sha": "Git SHA",
     "audit": st.column_config.LinkColumn("Audit trace", display_text="Trace →",
                                          help="Open this alias on the Audit trace page")},
    status=("status",), empty="No registry aliases collected.")

with st.expander("Collected entities per source"):
    show_table(loaders.counts_by_source(*key), empty="Nothing collected yet.")
