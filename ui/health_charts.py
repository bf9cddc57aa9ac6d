"""Charts of the Endpoint health page: one small chart per metric that fits its column, with a
legend under it and an axis format that suits the metric's unit."""
from __future__ import annotations

import altair as alt
import pandas as pd


# What the SLOs judge: charted first, and the only charts drawn until a person asks for more
# (each chart is its own Vega view, most of the page's time in the browser).
SLO_CHARTS = ("requests / min", "latency p95 (ms)", "error rate (%)")


def default_charts(labels: list[str]) -> list[str]:
    """The metrics charted until chosen otherwise: the SLO ones this endpoint has, else the first three."""
    slo = [m for m in labels if m in SLO_CHARTS]
    return slo or labels[:3]


def window_label(hours: int) -> str:
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def _axis_format(metric: str) -> str:
    if "%" in metric:
        return ".1f"
    if "ms" in metric:
        return ",.0f"
    return ",.3~s"


def metric_chart(series: pd.DataFrame, metric: str) -> alt.Chart:
    span_hours = (series["time"].max() - series["time"].min()).total_seconds() / 3600 if len(series) else 0
    time_format = "%H:%M" if span_hours <= 24 else "%d %b"
    fmt = _axis_format(metric)
    return alt.Chart(series, title=alt.Title(metric, fontSize=13, anchor="start")).mark_line(strokeWidth=1.5).encode(
        x=alt.X("time:T", title=None, axis=alt.Axis(format=time_format, labelAngle=0, labelOverlap=True, tickCount=5)),
        y=alt.Y("value:Q", title=None, axis=alt.Axis(format=fmt, tickCount=4)),
        color=alt.Color("deployment:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=200)),
        tooltip=["deployment", alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("value:Q", format=fmt)],
    ).properties(height=180)
