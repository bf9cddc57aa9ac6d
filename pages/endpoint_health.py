"""Endpoint health: is every endpoint healthy, and does it serve what the registry says it should?"""
import altair as alt
import streamlit as st

from ui import health_loaders as hl
from ui.format import age
from ui.session import store_key, workspace

ws = workspace()
key = store_key()
slos = ws.config.slos

st.title("Endpoint health")
st.caption("Every serving endpoint on every platform: state, what it serves and with how much traffic, "
           "what it should serve, and its latency, errors and load over the last hour of data.")

table = hl.endpoint_health(*key, slos)
if table.empty:
    st.info("No serving endpoints collected yet. Add an `azureml` or `databricks` source and take a snapshot.")
    st.stop()

counts = table["status"].value_counts()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Deployments", len(table))
c2.metric("Red", int(counts.get(hl.RED, 0)))
c3.metric("Amber", int(counts.get(hl.AMBER, 0)))
c4.metric("Drifting", int(table["drift"].sum()))
if not slos:
    st.info("No `[[slo]]` thresholds configured: states and staleness only. See governance.example.toml.",
            icon=":material/tune:")

st.dataframe(
    table, hide_index=True, width="stretch",
    column_config={
        "status": st.column_config.TextColumn("Status", help="red / amber / green against the endpoint's SLO"),
        "traffic_pct": st.column_config.NumberColumn("Traffic %", format="%d"),
        "mirror_pct": st.column_config.NumberColumn("Mirror %", format="%d"),
        "should_serve": st.column_config.TextColumn("Should serve"),
        "drift": st.column_config.CheckboxColumn("Drift"),
        "latency_p50_ms": st.column_config.NumberColumn("p50 ms", format="%.0f"),
        "latency_p95_ms": st.column_config.NumberColumn("p95 ms", format="%.0f"),
        "error_rate_pct": st.column_config.NumberColumn("Errors %", format="%.2f"),
        "requests_per_min": st.column_config.NumberColumn("Req/min", format="%.1f"),
        "last_data": st.column_config.DatetimeColumn("Last data", format="YYYY-MM-DD HH:mm"),
        "stale": st.column_config.CheckboxColumn("Stale"),
    })

with st.expander("SLO thresholds"):
    if slos:
        st.dataframe(hl.slo_rows(slos), hide_index=True, width="stretch")
    else:
        st.write("None configured.")

st.subheader("Time series")
endpoints = table[["source", "endpoint", "platform"]].drop_duplicates()
labels = [f"{r.endpoint} · {r.platform} ({r.source})" for r in endpoints.itertuples()]
col_ep, col_window = st.columns([3, 2])
choice = col_ep.selectbox("Endpoint", labels)
hours = col_window.segmented_control("Window", [1, 6, 24, 72, 168], default=24,
                                     format_func=lambda h: f"{h} h" if h < 48 else f"{h // 24} d")
chosen = endpoints.iloc[labels.index(choice)]
series = hl.endpoint_series(*key, chosen["source"], chosen["endpoint"], float(hours or 24))
if series.empty:
    st.info("No metric samples for this endpoint.")
    st.stop()
last = table[(table["source"] == chosen["source"]) & (table["endpoint"] == chosen["endpoint"])]["last_data"].max()
st.caption(f"Last data {age(last)}.")
st.altair_chart(
    alt.Chart(series).mark_line().encode(
        x=alt.X("time:T", title=None),
        y=alt.Y("value:Q", title=None),
        color=alt.Color("deployment:N", title="deployment"),
        tooltip=["deployment", "label", "time:T", alt.Tooltip("value:Q", format=".2f")],
    ).properties(height=150, width=300).facet(facet=alt.Facet("label:N", title=None), columns=3)
    .resolve_scale(y="independent"),
    width="stretch")
