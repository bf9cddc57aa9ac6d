"""Endpoint metric series: Azure Monitor / traffic-log samples and Databricks' Prometheus export
turned into one long frame (deployment, time, metric, value). Every series of a Databricks export
describes the last minute before it was taken, so each export is read on its own; nothing is
differenced between exports."""
from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd

from store import Store
from store import queries as q

# Series that say something about traffic; CPU / memory alone do not make an endpoint healthy.
TRAFFIC_METRICS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "requests_per_min", "error_rate_pct")
CHART_METRICS = {"latency_p50_ms": "latency p50 (ms)", "latency_p95_ms": "latency p95 (ms)",
                 "latency_p99_ms": "latency p99 (ms)", "requests_per_min": "requests / min",
                 "error_rate_pct": "error rate (%)", "cpu_pct": "CPU (%)", "memory_pct": "memory (%)"}
SERIES_COLUMNS = ["deployment", "time", "metric", "value", "label"]


def _deployment_of(labels: str) -> str:
    try:
        parsed = json.loads(labels) if labels else {}
    except ValueError:
        return ""
    return parsed.get("deployment") or parsed.get("served_entity_name") or parsed.get("served_model_name") or ""


def azureml_series(samples: pd.DataFrame) -> pd.DataFrame:
    """Long frame (source, endpoint, deployment, time, metric, value) in the page's metric names."""
    if samples.empty:
        return pd.DataFrame(columns=["source", "endpoint", "deployment", "time", "metric", "value"])
    s = samples.copy()
    s["deployment"] = s["labels"].map(_deployment_of)
    s["time"] = pd.to_datetime(s["sampled_at"], unit="ms", utc=True)
    keys = ["source", "endpoint", "deployment", "time"]
    wide = s.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean")
    rpm_cols = [c for c in wide.columns if c.startswith("rpm_")]
    out = pd.DataFrame(index=wide.index)
    for m in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "cpu_pct", "memory_pct"):
        if m in wide:
            out[m] = wide[m]
    if rpm_cols:
        total = wide[rpm_cols].sum(axis=1, min_count=1)
        out["requests_per_min"] = total
        if "rpm_5xx" in wide:
            out["error_rate_pct"] = (wide["rpm_5xx"].fillna(0) / total.where(total > 0)) * 100
    # Traffic-log aggregates fill what Azure Monitor metrics did not give.
    if "log_requests" in wide:
        grain = _grain_minutes(wide.index.get_level_values("time"))
        log_rpm = wide["log_requests"] / grain
        out["requests_per_min"] = out["requests_per_min"].fillna(log_rpm) if "requests_per_min" in out else log_rpm
        if "log_5xx" in wide:
            log_err = wide["log_5xx"] / wide["log_requests"].where(wide["log_requests"] > 0) * 100
            out["error_rate_pct"] = out["error_rate_pct"].fillna(log_err) if "error_rate_pct" in out else log_err
        for src, dst in (("log_latency_p50_ms", "latency_p50_ms"), ("log_latency_p95_ms", "latency_p95_ms")):
            if src in wide:
                out[dst] = out[dst].fillna(wide[src]) if dst in out else wide[src]
    return _long(out)


def databricks_series(samples: pd.DataFrame) -> pd.DataFrame:
    """Each metrics export read on its own: requests/min, 5xx %, latency quantiles, CPU/memory.

    The export (`GET /api/2.0/serving-endpoints/{name}/metrics`, Prometheus text) holds per-minute
    readings, not process-lifetime counters: `request_count_total`, `request_4xx_count_total` and
    `request_5xx_count_total` are "number of requests / errors during the last minute" (gauges in
    Datadog's integrations-core `databricks/metadata.csv`; "totaling the number of requests within a
    minute" in Databricks' "Track and export serving endpoint health metrics" page), and
    `request_latency_ms` is the latency distribution of that minute (Datadog publishes its 75/90/95/
    99th percentiles "during the minute"; Databricks documents P50/P99 round-trip latency). So a count
    is requests per minute as it stands, and quantiles come from one export's buckets. A `quantile`
    label (a summary) is read as the quantile it names."""
    if samples.empty:
        return pd.DataFrame(columns=["source", "endpoint", "deployment", "time", "metric", "value"])
    s = samples.copy()
    labels = s["labels"].map(lambda raw: json.loads(raw) if raw else {})
    s["deployment"] = s["labels"].map(_deployment_of)
    s["le"] = labels.map(lambda d: d.get("le"))
    s["quantile"] = labels.map(lambda d: d.get("quantile"))
    rows = []
    for (source, endpoint, deployment, at), g in s.groupby(["source", "endpoint", "deployment", "sampled_at"]):
        when = pd.Timestamp(at, unit="ms", tz="UTC")

        def reading(metric: str) -> float | None:
            vals = g[g["metric"] == metric]["value"]
            return None if vals.empty else float(vals.sum())

        count, errors = reading("request_count_total"), reading("request_5xx_count_total")
        if count is not None:
            rows.append((source, endpoint, deployment, when, "requests_per_min", count))
            if errors is not None and count > 0:
                rows.append((source, endpoint, deployment, when, "error_rate_pct", errors / count * 100))
        buckets = _buckets(g, "request_latency_ms_bucket")
        summary = g[(g["metric"] == "request_latency_ms") & g["quantile"].notna()]
        for p, name in ((0.5, "latency_p50_ms"), (0.95, "latency_p95_ms"), (0.99, "latency_p99_ms")):
            named = summary[summary["quantile"].astype(float) == p]["value"]
            v = float(named.iloc[0]) if not named.empty else _quantile(buckets, p)
            if v is not None:
                rows.append((source, endpoint, deployment, when, name, v))
        for gauge, name in (("cpu_usage_percentage", "cpu_pct"), ("mem_usage_percentage", "memory_pct")):
            v = reading(gauge)
            if v is not None:
                rows.append((source, endpoint, deployment, when, name, v))
    return pd.DataFrame(rows, columns=["source", "endpoint", "deployment", "time", "metric", "value"])


def _buckets(g: pd.DataFrame, metric: str) -> list[tuple[float, float]]:
    """Cumulative histogram buckets (upper bound, count) of one export."""
    out = [(float("inf") if r.le == "+Inf" else float(r.le), float(r.value))
           for r in g[(g["metric"] == metric) & g["le"].notna()].itertuples()]
    return sorted(out)


def _quantile(buckets: list[tuple[float, float]], p: float) -> float | None:
    """Prometheus-style histogram_quantile: linear inside the bucket that crosses p."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total, target, lower, below = buckets[-1][1], buckets[-1][1] * p, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= target:
            if upper == float("inf"):
                return lower
            span = cumulative - below
            return lower + (upper - lower) * ((target - below) / span if span > 0 else 1.0)
        lower, below = upper, cumulative
    return None if total <= 0 else lower


def _grain_minutes(times: pd.Index) -> float:
    uniq = pd.Series(sorted(set(times)))
    if len(uniq) < 2:
        return 5.0
    return max(1.0, float(uniq.diff().dropna().min().total_seconds() / 60))


def _long(wide: pd.DataFrame) -> pd.DataFrame:
    if wide.empty or not len(wide.columns):
        return pd.DataFrame(columns=["source", "endpoint", "deployment", "time", "metric", "value"])
    long = wide.reset_index().melt(id_vars=["source", "endpoint", "deployment", "time"], var_name="metric",
                                   value_name="value")
    return long.dropna(subset=["value"]).reset_index(drop=True)


# -- the table -------------------------------------------------------------------------------------


def series_for(store: Store, source: str, endpoint: str, hours: float) -> pd.DataFrame:
    """Time series of one endpoint over the last `hours` (ending at its last data point)."""
    points = q.resolve_as_of(store)
    if source not in points:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    samples = q.metric_samples(store, {source: points[source]}, timedelta(hours=hours) + timedelta(days=1))
    samples = samples[samples["endpoint"] == endpoint]
    fn = databricks_series if points[source].platform == "databricks" else azureml_series
    series = fn(samples)
    if series.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    series = series[series["time"] > series["time"].max() - timedelta(hours=hours)].copy()
    series["label"] = series["metric"].map(CHART_METRICS)
    return series.dropna(subset=["label"])[["deployment", "time", "metric", "value", "label"]].reset_index(drop=True)
