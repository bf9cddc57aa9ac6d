"""Endpoint health: every endpoint on every platform in one table, and per-endpoint time series.

Azure ML deployments come from `aml_endpoints`/`aml_deployments` with Azure Monitor / traffic-log
samples (`endpoint_metrics`, labels {"deployment"}); Databricks served entities come from
`serving_endpoints`/`served_entities` with Prometheus export samples. Every series of that export
describes the last minute before it was taken (see `databricks_series`), so each export is read on
its own; nothing is differenced between exports. What an endpoint *should* serve comes
from `[[slo]] serves = "model@alias"`: the alias's version and the served version are compared
by the run that produced them (`lineage.producing_run`: registry, MLmodel, LoggedModel), so a copy of a
Databricks model on Azure ML matches its Fabric alias. Served versions whose latest review was a
rejection are flagged too.
"""
from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import streamlit as st

import duckdb

from collectors.config import Slo
from lineage.producing_run import producing_runs
from store import Store, StoreMissing
from store import queries as q
from ui.format import GAP
from ui.shared_reader import SharedReader

TTL = 300
SUMMARY_WINDOW = timedelta(hours=1)   # table figures: the last hour of data of each series
GREEN, AMBER, RED, GREY, ERROR = "green", "amber", "red", "no data", "error"
ORDER = {ERROR: 0, RED: 1, AMBER: 2, GREY: 3, GREEN: 4}
# Series that say something about traffic; CPU / memory alone do not make an endpoint healthy.
TRAFFIC_METRICS = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "requests_per_min", "error_rate_pct")
HEALTHY_STATES = {"succeeded", "ready", "deployment_ready", "not_updating"}   # Azure ML, Databricks
COLUMNS = ["status", "platform", "source", "endpoint", "deployment", "state", "model", "version", "traffic_pct",
           "mirror_pct", "should_serve", "drift", "latency_p50_ms", "latency_p95_ms", "error_rate_pct",
           "requests_per_min", "last_data", "stale", "reasons"]
CHART_METRICS = {"latency_p50_ms": "latency p50 (ms)", "latency_p95_ms": "latency p95 (ms)",
                 "latency_p99_ms": "latency p99 (ms)", "requests_per_min": "requests / min",
                 "error_rate_pct": "error rate (%)", "cpu_pct": "CPU (%)", "memory_pct": "memory (%)"}


def slo_for(slos: tuple[Slo, ...], platform: str, endpoint: str) -> Slo | None:
    for slo in slos:
        if (slo.platform in (None, platform)) and fnmatch.fnmatchcase(endpoint, slo.endpoint):
            return slo
    return None


# -- reading ---------------------------------------------------------------------------------------
def _entity(store: Store, table: str, points) -> pd.DataFrame:
    return q.entity_as_of(store, table, points=points)


def _samples(store: Store, points, window: timedelta) -> pd.DataFrame:
    return q.metric_samples(store, points, window)


def _rejected(store: Store) -> set[tuple[str, str, str]]:
    """(source, model, version) whose latest review decision is a rejection."""
    try:
        frame = store.query("""SELECT source, model_name, version, arg_max(decision, entry_id) AS decision
                               FROM gate_review_log WHERE kind = 'review'
                               GROUP BY source, model_name, version""")
    except duckdb.CatalogException as e:   # an older store without the review log: nothing rejected
        if "gate_review_log" not in str(e):
            raise
        return set()
    return {(r.source, r.model_name, r.version) for r in frame.itertuples() if r.decision == "reject"}


# -- series ----------------------------------------------------------------------------------------
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
def serving_rows(store: Store, points) -> pd.DataFrame:
    """One row per Azure ML deployment and per Databricks served entity (active config)."""
    rows: list[dict[str, Any]] = []
    eps = _entity(store, "aml_endpoints", points)
    deps = _entity(store, "aml_deployments", points)
    for d in deps.itertuples():
        ep = eps[(eps["source"] == d.source) & (eps["endpoint"] == d.endpoint)]
        traffic = ep["traffic"].iloc[0] if not ep.empty else {}
        mirror = ep["mirror_traffic"].iloc[0] if not ep.empty else {}
        ep_state = ep["provisioning_state"].iloc[0] if not ep.empty else None
        state = d.provisioning_state if ep_state in (None, "Succeeded") else f"endpoint {ep_state}"
        rows.append({"platform": d.platform, "source": d.source, "endpoint": d.endpoint, "deployment": d.deployment,
                     "state": state, "model": d.model_name, "version": d.model_version,
                     "model_registry": d.model_registry,
                     # A NaN share was stored as null: a gap, not a crash.
                     "traffic_pct": pd.to_numeric((traffic or {}).get(d.deployment, 0), errors="coerce"),
                     "mirror_pct": pd.to_numeric((mirror or {}).get(d.deployment, 0), errors="coerce")})
    sep = _entity(store, "serving_endpoints", points)
    ents = _entity(store, "served_entities", points)
    if not ents.empty:
        ents = ents[ents["config"] == "active"]
        for e in ents.itertuples():
            ep = sep[(sep["source"] == e.source) & (sep["name"] == e.endpoint)] if not sep.empty else sep
            ready = ep["ready"].iloc[0] if not ep.empty else None
            # The endpoint's details could not be read in the snapshot: its state is unknown.
            read_status = ep["read_status"].iloc[0] if not ep.empty else None
            read_error = None
            if isinstance(read_status, str) and read_status != "ok":
                detail = ep["detail"].iloc[0]
                read_error = f"endpoint details not read ({read_status})" + (f": {detail}" if detail else "")
            alone = len(ents[(ents["source"] == e.source) & (ents["endpoint"] == e.endpoint)]) == 1
            traffic = e.traffic_pct if e.traffic_pct is not None and not pd.isna(e.traffic_pct) else (100.0 if alone else None)
            rows.append({"platform": e.platform, "source": e.source, "endpoint": e.endpoint,
                         "deployment": e.served_entity_name, "state": e.deployment_state or ready,
                         "model": e.entity_name, "version": e.entity_version, "model_registry": None,
                         "traffic_pct": traffic, "mirror_pct": 0.0, "read_error": read_error})
    return pd.DataFrame(rows, columns=["platform", "source", "endpoint", "deployment", "state", "model", "version",
                                       "model_registry", "traffic_pct", "mirror_pct", "read_error"])


def _producing_runs(store: Store, points) -> tuple[pd.DataFrame, pd.DataFrame]:
    versions = q.entity_as_of(store, "model_versions", points=points, columns=["name", "version", "run_id", "model_id"])
    origins = q.entity_as_of(store, "model_origins", points=points, columns=["name", "version", "origin_run_id"])
    logged = q.entity_as_of(store, "logged_models", points=points, columns=["model_id", "source_run_id"])
    runs = q.entity_as_of(store, "runs", points=points, columns=["run_id"])
    merged = producing_runs(versions, origins, logged, collected=set(runs["run_id"]))
    merged["run"] = merged["producing_run"]
    aliases = q.entity_as_of(store, "model_aliases", points=points)
    return merged, aliases


def health_table(store: Store, slos: tuple[Slo, ...], now: datetime | None = None) -> pd.DataFrame:
    now = now or datetime.now(timezone.utc)
    points = q.resolve_as_of(store)
    serving = serving_rows(store, points)
    if serving.empty:
        return pd.DataFrame(columns=COLUMNS)
    # Two days: enough for Databricks exports taken a snapshot apart to give a rate.
    samples = _samples(store, points, timedelta(days=2))
    series = pd.concat([azureml_series(samples[samples["source"].isin(serving.loc[serving["platform"] == "azureml", "source"])]),
                        databricks_series(samples[samples["source"].isin(serving.loc[serving["platform"] == "databricks", "source"])])],
                       ignore_index=True)
    versions, aliases = _producing_runs(store, points)
    problems: list[str] = []    # what every row depends on and could not be read
    try:
        rejected = _rejected(store)
    except duckdb.Error as e:
        rejected = set()
        problems.append(f"review log unreadable, rejections unknown: {_message(e)}")
    out = []
    for r in serving.to_dict("records"):
        read_error = r.pop("read_error", None)
        base = {**r, "latency_p50_ms": None, "latency_p95_ms": None, "error_rate_pct": None,
                "requests_per_min": None, "should_serve": GAP, "drift": False, "last_data": None, "stale": True}
        try:
            slo = slo_for(slos, r["platform"], r["endpoint"])
            mine = series[(series["source"] == r["source"]) & (series["endpoint"] == r["endpoint"])
                          & (series["deployment"] == r["deployment"])] if not series.empty else series
            figures = _figures(mine)
            expected, drift, drift_reason = _drift(r, slo, versions, aliases, rejected)
            stale_after = timedelta(minutes=slo.stale_after_minutes if slo else 60)
            last = figures.pop("last_data")
            stale = last is None or (now - last) > stale_after
            status, reasons = _rag(r, figures, slo, drift, drift_reason, stale, last)
        except Exception as e:   # one row that cannot be evaluated is shown as an error, not skipped
            out.append({**base, "status": ERROR, "reasons": f"could not evaluate: {_message(e)}"})
            continue
        errors = [m for m in (read_error, *problems) if isinstance(m, str) and m]
        if errors:   # what could not be read is an error, whatever the figures say
            status, reasons = ERROR, errors + reasons
        out.append({**r, **figures, "should_serve": expected, "drift": drift, "last_data": last, "stale": stale,
                    "status": status, "reasons": "; ".join(reasons)})
    frame = pd.DataFrame(out)
    frame = frame.sort_values(["status", "platform", "endpoint", "deployment"],
                              key=lambda c: c.map(ORDER) if c.name == "status" else c).reset_index(drop=True)
    return frame[COLUMNS]


def _message(e: BaseException) -> str:
    """An error as one plain line (the table shows it as text, never as markup)."""
    return f"{type(e).__name__}: " + " ".join(str(e).split())[:300]


def _figures(series: pd.DataFrame) -> dict[str, Any]:
    figures: dict[str, Any] = {"latency_p50_ms": None, "latency_p95_ms": None, "error_rate_pct": None,
                               "requests_per_min": None, "last_data": None}
    if series.empty:
        return figures
    traffic = series[series["metric"].isin(TRAFFIC_METRICS)]
    if traffic.empty:   # CPU or memory alone say nothing about what the endpoint serves
        return figures
    last = traffic["time"].max()
    recent = series[series["time"] > last - SUMMARY_WINDOW]
    for metric in ("latency_p50_ms", "latency_p95_ms", "requests_per_min"):
        vals = recent[recent["metric"] == metric]["value"]
        figures[metric] = round(float(vals.mean()), 2) if not vals.empty else None
    err = recent[recent["metric"] == "error_rate_pct"]
    rpm = recent[recent["metric"] == "requests_per_min"][["time", "value"]].rename(columns={"value": "rpm"})
    if not err.empty:
        joined = err.merge(rpm, on="time", how="left")
        weights = joined["rpm"].fillna(1.0)
        figures["error_rate_pct"] = round(float((joined["value"] * weights).sum() / max(weights.sum(), 1e-9)), 3)
    figures["last_data"] = last.to_pydatetime()
    return figures


def _drift(r: dict[str, Any], slo: Slo | None, versions: pd.DataFrame, aliases: pd.DataFrame,
           rejected: set[tuple[str, str, str]]) -> tuple[str, bool, str | None]:
    served = versions[(versions["source"] == r["source"]) & (versions["name"] == r["model"])
                      & (versions["version"] == r["version"])]
    if (r["source"], r["model"], r["version"]) in rejected:
        return (slo.serves if slo and slo.serves else GAP), True, f"serves v{r['version']}, whose review was rejected"
    if not slo or not slo.serves:
        return GAP, False, None
    model, alias = slo.serves.split("@")
    target = aliases[(aliases["name"] == model) & (aliases["alias"] == alias)]
    if slo.registry_source:
        target = target[target["source"] == slo.registry_source]
    if target.empty:
        return f"{slo.serves} (not found)", False, f"alias {slo.serves} not found in any registry"
    t = target.iloc[0]
    expected = f"{model}@{alias} → v{t['version']}"
    if r["traffic_pct"] in (None, 0) and not r.get("mirror_pct"):
        return expected, False, None   # an idle deployment serves nothing
    if t["source"] == r["source"] and t["name"] == r["model"]:
        same = str(t["version"]) == str(r["version"])
    else:
        want = versions[(versions["source"] == t["source"]) & (versions["name"] == model)
                        & (versions["version"] == str(t["version"]))]
        want_run = want["run"].iloc[0] if not want.empty else None
        have_run = served["run"].iloc[0] if not served.empty else None
        if not isinstance(have_run, str) or not isinstance(want_run, str):
            where = f" (registry {r['model_registry']})" if r.get("model_registry") else ""
            return expected, False, f"cannot compare: v{r['version']}{where} has no known producing run"
        same = have_run == want_run
    if same:
        return expected, False, None
    return expected, True, f"serves {r['model']} v{r['version']}, not {expected}"


def _rag(r, figures, slo, drift, drift_reason, stale, last) -> tuple[str, list[str]]:
    reasons: list[str] = []
    level = 0   # 0 green, 1 amber, 2 red

    def bump(n: int, why: str) -> None:
        nonlocal level
        level = max(level, n)
        reasons.append(why)

    state = str(r["state"] or "").lower()
    if state and state not in HEALTHY_STATES:
        bump(2 if "fail" in state or "not_ready" in state else 1, f"state {r['state']}")
    if slo:
        for key, limit, label in (("latency_p95_ms", slo.latency_p95_ms, "p95 latency"),
                                  ("error_rate_pct", slo.error_rate_pct, "error rate")):
            value = figures.get(key)
            if limit is None or value is None:
                continue
            if value > limit:
                bump(2, f"{label} {value:g} > {limit:g}")
            elif value >= slo.amber_at * limit:
                bump(1, f"{label} {value:g} near {limit:g}")
        rpm = figures.get("requests_per_min")
        if slo.min_requests_per_minute is not None and rpm is not None and (r["traffic_pct"] or 0) > 0 \
                and rpm < slo.min_requests_per_minute:
            bump(1, f"{rpm:g} requests/min < {slo.min_requests_per_minute:g}")
    if drift and drift_reason:
        bump(1, drift_reason)
    elif drift_reason:
        reasons.append(drift_reason)
    if last is None:
        reasons.append("no metric data")
        return (GREY if level == 0 else (AMBER, RED)[level - 1]), reasons
    if stale:
        bump(1, "stale metric data")
    return (GREEN, AMBER, RED)[level], reasons


def series_for(store: Store, source: str, endpoint: str, hours: float) -> pd.DataFrame:
    """Time series of one endpoint over the last `hours` (ending at its last data point)."""
    points = q.resolve_as_of(store)
    if source not in points:
        return pd.DataFrame(columns=["deployment", "time", "metric", "value", "label"])
    samples = _samples(store, {source: points[source]}, timedelta(hours=hours) + timedelta(days=1))
    samples = samples[samples["endpoint"] == endpoint]
    fn = databricks_series if points[source].platform == "databricks" else azureml_series
    series = fn(samples)
    if series.empty:
        return pd.DataFrame(columns=["deployment", "time", "metric", "value", "label"])
    series = series[series["time"] > series["time"].max() - timedelta(hours=hours)].copy()
    series["label"] = series["metric"].map(CHART_METRICS)
    return series.dropna(subset=["label"])[["deployment", "time", "metric", "value", "label"]].reset_index(drop=True)


# -- cached entry points (pages call these) ---------------------------------------------------------
@st.cache_data(ttl=TTL, show_spinner=False)
def endpoint_health(store_path: str, stamp: int, slos: tuple[Slo, ...]) -> pd.DataFrame:
    try:
        with SharedReader(Store(store_path)).open() as store:    # a dozen reads, one connection
            return health_table(store, slos)
    except StoreMissing:
        return pd.DataFrame(columns=COLUMNS)


@st.cache_data(ttl=TTL, show_spinner=False)
def endpoint_series(store_path: str, stamp: int, source: str, endpoint: str, hours: float) -> pd.DataFrame:
    try:
        with SharedReader(Store(store_path)).open() as store:
            return series_for(store, source, endpoint, hours)
    except StoreMissing:
        return pd.DataFrame(columns=["deployment", "time", "metric", "value", "label"])


def slo_rows(slos: tuple[Slo, ...]) -> pd.DataFrame:
    """The configured SLOs as a table (for the page's "thresholds" expander)."""
    return pd.DataFrame([{"endpoint": s.endpoint, "platform": s.platform or "any", "serves": s.serves or GAP,
                          "latency_p95_ms": s.latency_p95_ms, "error_rate_pct": s.error_rate_pct,
                          "min_requests_per_minute": s.min_requests_per_minute, "amber_at": s.amber_at,
                          "stale_after_minutes": s.stale_after_minutes} for s in slos])
