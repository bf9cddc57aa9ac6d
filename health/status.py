"""Endpoint health, the domain: every endpoint on every platform in one table, and per-endpoint time series.

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
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import pandas as pd

from collectors.config import Slo
from health.series import TRAFFIC_METRICS, azureml_series, databricks_series
from lineage.producing_run import producing_runs
from store import Store
from store import queries as q

SUMMARY_WINDOW = timedelta(hours=1)   # table figures: the last hour of data of each series
GREEN, AMBER, RED, GREY, ERROR = "green", "amber", "red", "no data", "error"
ORDER = {ERROR: 0, RED: 1, AMBER: 2, GREY: 3, GREEN: 4}
HEALTHY_STATES = {"succeeded", "ready", "deployment_ready", "not_updating"}   # Azure ML, Databricks
COLUMNS = ["status", "platform", "source", "endpoint", "deployment", "state", "model", "version", "traffic_pct",
           "mirror_pct", "should_serve", "drift", "latency_p50_ms", "latency_p95_ms", "error_rate_pct",
           "requests_per_min", "last_data", "stale", "reasons"]


@dataclass(frozen=True)
class HealthRow:
    """One Azure ML deployment or Databricks served entity: its status and why, what it serves and
    should serve, and its figures over the last hour of data (None: no data)."""
    status: str                       # green | amber | red | no data | error
    platform: str
    source: str
    endpoint: str
    deployment: str
    state: str | None
    model: str | None
    version: str | None
    traffic_pct: float | None
    mirror_pct: float | None
    should_serve: str | None          # "model@alias → vN" from the [[slo]], when it names one
    drift: bool
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    error_rate_pct: float | None
    requests_per_min: float | None
    last_data: datetime | None
    stale: bool
    reasons: str                      # "; "-joined, plain text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



def health_frame(rows: list[HealthRow]) -> pd.DataFrame:
    """The records as the page's table (one column per field, in order)."""
    return pd.DataFrame([r.to_dict() for r in rows], columns=COLUMNS)


def slo_for(slos: tuple[Slo, ...], platform: str, endpoint: str) -> Slo | None:
    for slo in slos:
        if (slo.platform in (None, platform)) and fnmatch.fnmatchcase(endpoint, slo.endpoint):
            return slo
    return None


def serving_rows(store: Store, points) -> pd.DataFrame:
    """One row per Azure ML deployment and per Databricks served entity (active config)."""
    rows: list[dict[str, Any]] = []
    eps = q.entity_as_of(store, "aml_endpoints", points=points)
    deps = q.entity_as_of(store, "aml_deployments", points=points)
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
    sep = q.entity_as_of(store, "serving_endpoints", points=points)
    ents = q.entity_as_of(store, "served_entities", points=points)
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
    return health_frame(health_rows(store, slos, now))


def health_rows(store: Store, slos: tuple[Slo, ...], now: datetime | None = None) -> list[HealthRow]:
    """Every deployment / served entity, worst status first (then platform, endpoint, deployment)."""
    now = now or datetime.now(timezone.utc)
    points = q.resolve_as_of(store)
    serving = serving_rows(store, points)
    if serving.empty:
        return []
    # Two days: enough for Databricks exports taken a snapshot apart to give a rate.
    samples = q.metric_samples(store, points, timedelta(days=2))
    series = pd.concat([azureml_series(samples[samples["source"].isin(serving.loc[serving["platform"] == "azureml", "source"])]),
                        databricks_series(samples[samples["source"].isin(serving.loc[serving["platform"] == "databricks", "source"])])],
                       ignore_index=True)
    versions, aliases = _producing_runs(store, points)
    problems: list[str] = []    # what every row depends on and could not be read
    try:
        rejected = q.rejected_versions(store)
    except duckdb.Error as e:
        rejected = set()
        problems.append(f"review log unreadable, rejections unknown: {_message(e)}")
    out = []
    for r in serving.to_dict("records"):
        read_error = r.pop("read_error", None)
        base = {**r, "latency_p50_ms": None, "latency_p95_ms": None, "error_rate_pct": None,
                "requests_per_min": None, "should_serve": None, "drift": False, "last_data": None, "stale": True}
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
    rows = [HealthRow(**{k: row[k] for k in COLUMNS}) for row in out]
    # Sorted as pandas sorts (stable, a missing name last), so the table reads as it always did.
    keys = pd.DataFrame([(r.status, r.platform, r.endpoint, r.deployment) for r in rows],
                        columns=["status", "platform", "endpoint", "deployment"])
    order = keys.sort_values(list(keys.columns), key=lambda c: c.map(ORDER) if c.name == "status" else c).index
    return [rows[i] for i in order]


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
        return (slo.serves if slo and slo.serves else None), True, f"serves v{r['version']}, whose review was rejected"
    if not slo or not slo.serves:
        return None, False, None
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


def slo_rows(slos: tuple[Slo, ...]) -> pd.DataFrame:
    """The configured SLOs as a table (for the page's "thresholds" expander)."""
    return pd.DataFrame([{"endpoint": s.endpoint, "platform": s.platform or "any", "serves": s.serves,
                          "latency_p95_ms": s.latency_p95_ms, "error_rate_pct": s.error_rate_pct,
                          "min_requests_per_minute": s.min_requests_per_minute, "amber_at": s.amber_at,
                          "stale_after_minutes": s.stale_after_minutes} for s in slos])
