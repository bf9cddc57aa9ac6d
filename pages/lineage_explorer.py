"""Lineage explorer: pick any node, see what feeds it and what it feeds, tap through to neighbours.
The focus, depth, direction, cap and date live in the URL (`?node=…`), so a link reopens the view."""
import streamlit as st

from ui import lineage_graph_view as view
from ui import lineage_loaders as ll
from ui.safe_text import label, md
from ui.session import store_key

key = store_key()
FOCUS = "lineage_focus"
APPLIED = "lineage_url_applied"     # the query string this page last wrote (or applied)

st.title("Lineage explorer")
st.caption("Tables → datasets → runs → models → versions → aliases → endpoints, across platforms. "
           "Tap a node to focus on it; drag to pan, scroll to zoom.")

# A pasted link (or the first visit) sets the widgets; afterwards the widgets write the link.
params = st.query_params.to_dict()
if params != st.session_state.get(APPLIED):
    state = ll.url_state(params)
    st.session_state.update({"lineage_day": state["as_of"], "lineage_direction": state["dir"],
                             "lineage_depth": state["depth"], "lineage_cap": state["cap"]})
    if state["node"]:
        st.session_state.update({FOCUS: state["node"], "lineage_platforms": [], "lineage_types": []})
    st.session_state[APPLIED] = params

top = st.columns([4, 1, 1])
filters = top[2].popover("Filters", width="stretch")
day = top[1].date_input("As of", key="lineage_day",
                        help="Empty: now. A date: the snapshots taken by the end of that day (UTC).")
graph = ll.lineage_graph(*key, ll.as_of_for(day))
if graph is None or len(graph) == 0:
    st.info("Nothing collected at that time. Take a snapshot on the **Snapshots** page.")
    st.stop()
platforms, types = ll.filter_options(graph)
chosen_platforms = filters.multiselect("Platforms", platforms, key="lineage_platforms")
chosen_types = filters.multiselect("Node types", types, key="lineage_types", format_func=ll.kind_name)
options = ll.focus_options(graph, chosen_platforms, chosen_types)
if not options:
    st.info("No node matches these filters.")
    st.stop()
wanted = st.session_state.get(FOCUS)
if wanted not in options:
    if wanted and wanted not in graph:
        st.warning(f"The link names a node that is not in the lineage at that time: `{md(wanted, 200)}`. "
                   "Showing another node instead.")
    aliases = [o for o in options if o.startswith("alias:")]
    st.session_state[FOCUS] = aliases[0] if aliases else options[0]

names = ll.node_names(graph, options)
focus = top[0].selectbox("Focus node (type to search)", options, key=FOCUS, format_func=names.__getitem__)
controls = st.columns([2, 1, 1])
direction = controls[0].radio("Direction", ll.DIRECTIONS, horizontal=True, key="lineage_direction")
depth = controls[1].slider("Depth (hops)", *ll.DEPTHS, key="lineage_depth")
cap = controls[2].select_slider("At most (nodes)", ll.CAPS, key="lineage_cap",
                                help="The nearest nodes are drawn; the rest are \"N more\" stubs you can tap.")

link = ll.url_params(focus, depth, direction, cap, day)
if st.query_params.to_dict() != link:
    st.query_params.from_dict(link)
st.session_state[APPLIED] = link

hood, dot, edges = ll.explore(graph, focus, direction, depth, cap)


def refocus() -> None:
    """A tap on a node (or on an "N more" stub: its owner) makes it the focus."""
    picked = view.picked_node(st.session_state.get("lineage_graph"))
    if picked and picked in graph:
        st.session_state.update({FOCUS: picked, "lineage_platforms": [], "lineage_types": []})


st.html(view.legend_html(view.kinds_drawn(graph, hood)))
view.render(graph, hood, key="lineage_graph", on_change=refocus)
shown = f"{len(hood.nodes)} nodes drawn"
if hood.hidden_total:
    shown += (f"; {hood.hidden_total} more within {depth} hops are left out (raise the cap, or tap a "
              "\"N more\" stub to focus there)")
st.caption(shown + ".")

gaps = ll.gaps_table(graph, hood)
if not gaps.empty:
    st.subheader("Gaps and conflicts in view")
    st.dataframe(gaps, hide_index=True, width="stretch")

details, node_gaps = ll.node_details(graph, focus)
st.subheader(md(names[focus], one_line=True))
for gap in node_gaps:
    st.warning(md(gap), icon="⚠️")


def set_focus(node_id: str) -> None:
    # A neighbour may be filtered out: clear the filters so it can be shown.
    st.session_state.update({FOCUS: node_id, "lineage_platforms": [], "lineage_types": []})


MAX_BUTTONS = 15
left, right = st.columns(2)
for column, title, neighbours, empty in ((left, "Upstream", hood.upstream, "Nothing recorded feeds this node."),
                                         (right, "Downstream", hood.downstream,
                                          "Nothing recorded depends on this node.")):
    with column:
        st.markdown(f"**{title} neighbours**")
        for n in neighbours[:MAX_BUTTONS]:
            st.button(label(ll.human_label(graph, n)), key=f"{title}:{n}", on_click=set_focus, args=(n,),
                      width="stretch", help=md(n, 300))
        if len(neighbours) > MAX_BUTTONS:
            st.caption(f"and {len(neighbours) - MAX_BUTTONS} more: pick them in the focus box.")
        if not neighbours:
            st.caption(empty)

with st.expander("Node id and attributes"):
    st.code(focus, language=None)
    st.json(details)
st.subheader("Edges drawn, with their evidence")
if edges.empty:
    st.caption("No edges: this node stands alone within the chosen depth.")
else:
    st.dataframe(edges, hide_index=True, width="stretch")
with st.expander("Static drawing (for print and evidence packs)"):
    st.graphviz_chart(dot, width="stretch")
    st.download_button("Download as DOT", dot, file_name="lineage.dot", mime="text/vnd.graphviz")
