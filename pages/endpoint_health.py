"""Endpoint health: is every endpoint healthy, and does it serve what the registry says it should?
The chosen endpoint and window live in the URL (`?source=…&endpoint=…&hours=…`)."""
import streamlit as st

from ui import health_loaders as hl
from ui.format import age, page_url, show_table, when_label
from ui.health_charts import default_charts, metric_chart, window_label
from ui.session import store_key, workspace

ws = workspace()
key = store_key()
slos = ws.config.slos
params = st.query_params
WINDOWS = [1, 6, 24, 72, 168]

st.title("Endpoint health")
st.caption("Every serving endpoint on every platform: its status and why, what it serves and with how much "
           "traffic, what it should serve, and its latency, errors and load.")

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

shown = table.assign(trace=[page_url("audit_trace", endpoint=e, source=s)
                            for e, s in zip(table["endpoint"], table["source"])])
show_table(
    shown, ["endpoint", "status", "reasons", "deployment", "model", "version", "should_serve", "drift", "traffic_pct",
            "latency_p95_ms", "error_rate_pct", "requests_per_min", "last_data", "stale", "state", "platform",
            "source", "latency_p50_ms", "mirror_pct", "trace"],
    {"endpoint": "Endpoint",
     "status": st.column_config.TextColumn("Status", help="Red / amber / green against the endpoint's SLO; "
                                                          "no data when no metric sample was collected"),
     "reasons": st.column_config.TextColumn("Why", width="large"),
     "traffic_pct": st.column_config.NumberColumn("Traffic %", format="%d"),
     "mirror_pct": st.column_config.NumberColumn("Mirror %", format="%d"),
     "should_serve": "Should serve", "drift": st.column_config.CheckboxColumn("Drift"),
     "latency_p50_ms": st.column_config.NumberColumn("p50 ms", format="%.0f"),
     "latency_p95_ms": st.column_config.NumberColumn("p95 ms", format="%.0f"),
     "error_rate_pct": st.column_config.NumberColumn("Errors %", format="%.2f"),
     "requests_per_min": st.column_config.NumberColumn("Req/min", format="%.1f"),
     "last_data": "Last data", "stale": st.column_config.CheckboxColumn("Stale"),
     "trace": st.column_config.LinkColumn("Audit trace", display_text="Trace →",
                                          help="What this endpoint served, traced to runs and data")},
    status=("status",), empty="No deployment to show.")

with st.expander("SLO thresholds"):
    show_table(hl.slo_rows(slos) if slos else None, empty="None configured.")

st.subheader("Time series")
endpoints = table[["source", "endpoint", "platform"]].drop_duplicates().reset_index(drop=True)
labels = [f"{r.endpoint} · {r.platform} ({r.source})" for r in endpoints.itertuples()]
# A pasted link chooses the endpoint and window once per session; the widgets then write the URL.
if "health_endpoint" not in st.session_state and params.get("endpoint"):
    match = endpoints[(endpoints["endpoint"] == params["endpoint"])
                      & ((endpoints["source"] == params.get("source")) if params.get("source") else True)]
    if not match.empty:
        st.session_state["health_endpoint"] = labels[int(match.index[0])]
if "health_hours" not in st.session_state and params.get("hours", "").isdigit() and int(params["hours"]) in WINDOWS:
    st.session_state["health_hours"] = int(params["hours"])
col_ep, col_window = st.columns([3, 2])
choice = col_ep.selectbox("Endpoint", labels, key="health_endpoint")
# A window taken from the URL is already in session state; a default beside it makes Streamlit warn.
hours = col_window.segmented_control("Window", WINDOWS, default=None if "health_hours" in st.session_state else 24,
                                     key="health_hours", format_func=window_label)
hours = hours or 24
chosen = endpoints.iloc[labels.index(choice)]
params.from_dict({"source": chosen["source"], "endpoint": chosen["endpoint"], "hours": str(hours)})
series = hl.endpoint_series(*key, chosen["source"], chosen["endpoint"], float(hours))
if series.empty:
    st.info("No metric samples for this endpoint: no data, so no status can be claimed from metrics.")
    st.stop()
st.caption(f"The last {window_label(hours)} of data: {when_label(series['time'].min())} to "
           f"{when_label(series['time'].max())} UTC (last data {age(series['time'].max())}).")
available = list(dict.fromkeys(series["label"]))
picked = st.pills("Metrics", available, selection_mode="multi", default=default_charts(available)) or []
metrics = [m for m in available if m in picked]   # charts keep the page's order, whatever the click order
if not metrics:
    st.caption("Choose a metric above to chart it.")
for row_start in range(0, len(metrics), 3):
    cols = st.columns(3)
    for col, metric in zip(cols, metrics[row_start:row_start + 3]):
        with col:
            st.altair_chart(metric_chart(series[series["label"] == metric], metric), width="stretch")
