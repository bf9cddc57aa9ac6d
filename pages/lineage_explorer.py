"""Lineage explorer: pick any node, see what feeds it and what it feeds, click through to neighbours."""
import streamlit as st

from ui import lineage_loaders as ll
from ui.safe_text import label, md
from ui.session import store_key

key = store_key()
FOCUS = "lineage_focus"

st.title("Lineage explorer")
st.caption("Tables → datasets → runs → models → versions → aliases → endpoints, across platforms. "
           "Dashed edges rest on a convention (a param or tag), solid ones on a recorded field.")

top = st.columns([1, 2, 2])
day = top[0].date_input("As of", value=None, help="Empty: now. A date: the snapshots taken by the end of that day.")
graph = ll.lineage_graph(*key, ll.as_of_for(day))
if graph is None or len(graph) == 0:
    st.info("Nothing collected at that time. Take a snapshot on the **Snapshots** page.")
    st.stop()
platforms, types = ll.filter_options(graph)
chosen_platforms = top[1].multiselect("Platforms", platforms, key="lineage_platforms")
chosen_types = top[2].multiselect("Node types", types, key="lineage_types")
options = ll.focus_options(graph, chosen_platforms, chosen_types)
if not options:
    st.info("No node matches these filters.")
    st.stop()
if st.session_state.get(FOCUS) not in options:
    aliases = [o for o in options if o.startswith("alias:")]
    st.session_state[FOCUS] = aliases[0] if aliases else options[0]

focus = st.selectbox("Node (type to search)", options, key=FOCUS)
controls = st.columns([2, 1])
direction = controls[0].radio("Direction", ["both", "upstream", "downstream"], horizontal=True,
                              key="lineage_direction")
depth = controls[1].slider("Depth (hops)", 1, 8, 3, key="lineage_depth")

hood, dot, edges = ll.explore(graph, focus, direction, depth)
st.graphviz_chart(dot, width="stretch")


def set_focus(node_id: str) -> None:
    # A neighbour may be filtered out: clear the filters so it can be shown.
    st.session_state["lineage_platforms"] = []
    st.session_state["lineage_types"] = []
    st.session_state[FOCUS] = node_id


left, right = st.columns(2)
with left:
    st.subheader("Upstream neighbours")
    for n in hood.upstream:
        st.button(label(n), key=f"up:{n}", on_click=set_focus, args=(n,), width="stretch")
    if not hood.upstream:
        st.caption("None: nothing recorded feeds this node.")
with right:
    st.subheader("Downstream neighbours")
    for n in hood.downstream:
        st.button(label(n), key=f"down:{n}", on_click=set_focus, args=(n,), width="stretch")
    if not hood.downstream:
        st.caption("None: nothing recorded depends on this node.")

details, gaps = ll.node_details(graph, focus)
for gap in gaps:
    st.warning(md(gap), icon="⚠️")
st.subheader("Edges shown, with their evidence")
st.dataframe(edges, hide_index=True, width="stretch")
with st.expander("Node attributes"):
    st.json(details)
