"""Azure ML source (`kind = "azureml"`): managed online endpoints and deployments (traffic and
mirror traffic, provisioning state, instance type/count, the model each deployment serves), the
workspace model registry, and endpoint health — Azure Monitor metrics through
`azure-monitor-querymetrics` `MetricsClient` and the `AmlOnlineEndpointTrafficLog` table through
`azure-monitor-query` `LogsQueryClient`.

ARM REST (platform-apis.md §4.2) instead of azure-ai-ml: three GET routes cover everything read
here, while azure-ai-ml pulls in marshmallow, azure-storage-*, azure-mgmt-core and the whole
entity layer (tens of MB) and still returns the raw REST model string for `deployment.model`.

Every pass is a full read of the (small) control plane. Metric samples are appended: each pass
queries the last `metrics_window_hours` of complete bins and only samples not stored yet are added.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from collectors.azure_common import ARM_SCOPE, AzureHttp, default_credential, enforce_https_for, is_loopback
from collectors.config import SourceConfig
from collectors.mlmodel import missing_row, origin_row
from collectors.report import SourceReport
from store.db import Store
from store.entities import EntityBatch, Scope

DEFAULT_ARM = "https://management.azure.com"
DEFAULT_API_VERSION = "2024-04-01"
DEFAULT_LOGS_ENDPOINT = "https://api.loganalytics.io"
ENDPOINT_NS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
DEPLOYMENT_NS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
LATENCY_METRICS = {"RequestLatency_P50": "latency_p50_ms", "RequestLatency_P95": "latency_p95_ms",
                   "RequestLatency_P99": "latency_p99_ms"}
RESOURCE_METRICS = {"CpuUtilizationPercentage": "cpu_pct", "CpuMemoryUtilizationPercentage": "memory_pct"}
# metrics:getBatch returns at most `top` series per resource when a filter is given, and `top`
# defaults to 10: an endpoint with 4 deployments × 3 status classes would silently lose two. The
# service has no paging here, so ask for far more than a workspace has, and warn if it is reached.
MAX_SERIES_PER_RESOURCE = 1000
_REGIONAL_METRICS_HOST = re.compile(r"^(?P<region>[a-z0-9]+)\.metrics\.monitor\.azure\.com$")
# Stored metric names (the health page reads these, whatever the platform).
REQUESTS_BY_CLASS = "rpm_"          # rpm_2xx, rpm_4xx, rpm_5xx … (RequestsPerMinute by statusCodeClass)
TRAFFIC_LOG_QUERY = """AmlOnlineEndpointTrafficLog
| where TimeGenerated >= ago({hours}h)
| summarize log_requests = count(),
            log_4xx = countif(toint(ResponseCode) between (400 .. 499)),
            log_5xx = countif(toint(ResponseCode) >= 500),
            log_latency_p50_ms = percentile(TotalDurationMs, 50),
            log_latency_p95_ms = percentile(TotalDurationMs, 95)
  by EndpointName, DeploymentName, TimeGenerated = bin(TimeGenerated, {grain}m)"""
LOG_COLUMNS = ("log_requests", "log_4xx", "log_5xx", "log_latency_p50_ms", "log_latency_p95_ms")

_ARM_MODEL = re.compile(r"/models/(?P<name>[^/]+)/versions/(?P<version>[^/?#]+)/?$", re.IGNORECASE)
_REGISTRY_MODEL = re.compile(r"^azureml://registries/(?P<registry>[^/]+)/models/(?P<name>[^/]+)"
                             r"/versions/(?P<version>[^/?#]+)/?$", re.IGNORECASE)
_SHORT_MODEL = re.compile(r"^(?:azureml:)?(?P<name>[^:/@]+):(?P<version>[^:/@]+)$")


class StaticTokenCredential:
    """For loopback stubs only (tests, the demo): a fixed, non-secret token, so a real Entra token is
    never sent over plain http. Any other endpoint uses DefaultAzureCredential."""

    def __init__(self, token: str = "waymark-loopback-stub"):
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, int(datetime.now(timezone.utc).timestamp()) + 3600)


def credential_for(urls: list[str | None]):
    used = [u for u in urls if u]
    if used and all(u.startswith("http://") and is_loopback(u) for u in used):
        return StaticTokenCredential()
    return default_credential()


def parse_model_reference(ref: str | None) -> dict[str, str | None]:
    """A deployment's `model` in any of the three formats → {format, name, version, registry}."""
    empty = {"format": None, "name": None, "version": None, "registry": None}
    if not ref:
        return empty
    m = _REGISTRY_MODEL.match(ref)
    if m:
        return {"format": "registry", "name": unquote(m["name"]), "version": m["version"], "registry": m["registry"]}
    if ref.startswith("/subscriptions/") or ref.startswith("azureml://"):
        m = _ARM_MODEL.search(ref)
        if m:
            return {"format": "workspace" if ref.startswith("/") else "workspace_uri",
                    "name": unquote(m["name"]), "version": m["version"], "registry": None}
        return {**empty, "format": "unparsed"}
    m = _SHORT_MODEL.match(ref)
    if m:
        return {"format": "short", "name": m["name"], "version": m["version"], "registry": None}
    return {**empty, "format": "unparsed"}


def _ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def _opt(config: SourceConfig, key: str, default: Any = None) -> Any:
    return config.options.get(key, default)


class AzureMlSource:
    def __init__(self, config: SourceConfig, report: SourceReport,
                 progress: Callable[[str], None] | None = None, *, credential: Any = None,
                 now: Callable[[], datetime] | None = None):
        self.config = config
        self.report = report
        self.progress = progress or (lambda _msg: None)
        self.arm = str(_opt(config, "arm_endpoint", DEFAULT_ARM)).rstrip("/")
        self.metrics_endpoint = _opt(config, "metrics_endpoint")
        self.logs_endpoint = str(_opt(config, "logs_endpoint", DEFAULT_LOGS_ENDPOINT)).rstrip("/")
        self.log_workspace = _opt(config, "log_analytics_workspace_id")
        self.credential = credential or credential_for(
            [self.arm, self.metrics_endpoint, self.logs_endpoint if self.log_workspace else None])
        self.http = AzureHttp(self.credential, report)
        self.api_version = _opt(config, "api_version", DEFAULT_API_VERSION)
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.workspace_path = (f"/subscriptions/{quote(config.options['subscription_id'])}"
                               f"/resourceGroups/{quote(config.options['resource_group'])}"
                               f"/providers/Microsoft.MachineLearningServices/workspaces/"
                               f"{quote(config.options['workspace'])}")

    @staticmethod
    def previous_state(store: Store, source: str) -> None:
        return None  # every pass reads the whole control plane; samples are de-duplicated on write

    def _url(self, suffix: str) -> str:
        return f"{self.arm}{self.workspace_path}{suffix}"

    def _list(self, suffix: str, **params: Any) -> list[dict[str, Any]]:
        return self.http.items(self._url(suffix), ARM_SCOPE, params={"api-version": self.api_version, **params})

    # ------------------------------------------------------------------------------------------
    def collect(self, previous: None, full: bool) -> tuple[str, dict[str, EntityBatch], dict[str, Any]]:
        self.progress("online endpoints")
        endpoints, deployments = self._endpoints()
        self.progress("workspace models")
        models, versions, origins = self._models()
        samples: list[dict[str, Any]] = []
        self.progress("endpoint metrics (Azure Monitor)")
        samples += self._metrics(endpoints, deployments)
        self.progress("traffic log (Log Analytics)")
        samples += self._traffic_log()
        self.report.count("endpoint_metrics", len(samples))
        batches = {
            "aml_endpoints": EntityBatch(endpoints, Scope.ALL),
            "aml_deployments": EntityBatch(deployments, Scope.ALL),
            "registered_models": EntityBatch(models, Scope.ALL),
            "model_versions": EntityBatch(versions, Scope.ALL),
            # Append-only: the key includes sampled_at, and an upsert never closes older samples.
            "endpoint_metrics": EntityBatch(samples, Scope.NONE),
        }
        if self.config.read_model_origins:   # switched off: the origins last read stay as they were
            batches["model_origins"] = EntityBatch(origins, Scope.ALL)
        return "full", batches, {"last_sample_ms": max((s["sampled_at"] for s in samples), default=None)}

    # -- control plane -----------------------------------------------------------------------------
    def _endpoints(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        endpoints, deployments = [], []
        for ep in self._list("/onlineEndpoints"):
            props = ep.get("properties") or {}
            system = ep.get("systemData") or {}
            name = ep.get("name")
            endpoints.append({
                "endpoint": name, "resource_id": ep.get("id"), "location": ep.get("location"),
                "kind": ep.get("kind"), "auth_mode": props.get("authMode"),
                "provisioning_state": props.get("provisioningState"), "scoring_uri": props.get("scoringUri"),
                "traffic": props.get("traffic") or {}, "mirror_traffic": props.get("mirrorTraffic") or {},
                "public_network_access": props.get("publicNetworkAccess"), "tags": ep.get("tags") or {},
                "created_at": system.get("createdAt"), "modified_at": system.get("lastModifiedAt"),
            })
            for d in self._list(f"/onlineEndpoints/{quote(name, safe='')}/deployments"):
                dprops = d.get("properties") or {}
                ref = dprops.get("model")
                parsed = parse_model_reference(ref)
                if parsed["format"] == "unparsed":
                    self.report.warn(f"endpoint {name}/{d.get('name')}: model reference {ref!r} not understood")
                scale = dprops.get("scaleSettings") or {}
                deployments.append({
                    "endpoint": name, "deployment": d.get("name"), "resource_id": d.get("id"),
                    "provisioning_state": dprops.get("provisioningState"),
                    "compute_type": dprops.get("endpointComputeType"),
                    "instance_type": dprops.get("instanceType"),
                    "instance_count": (d.get("sku") or {}).get("capacity"),
                    "scale_type": scale.get("scaleType"),
                    "model_ref": ref, "model_ref_format": parsed["format"], "model_name": parsed["name"],
                    "model_version": parsed["version"], "model_registry": parsed["registry"],
                    "environment_id": dprops.get("environmentId"),
                    "app_insights_enabled": dprops.get("appInsightsEnabled"),
                    "tags": d.get("tags") or {},
                })
        self.report.count("aml_endpoints", len(endpoints))
        self.report.count("aml_deployments", len(deployments))
        return endpoints, deployments

    def _models(self):
        models, versions, origins = [], [], []
        # The model lists default to listViewType=ActiveOnly: an archived model or version would
        # vanish and be recorded as deleted. All lists both; `isArchived` says which is which.
        for m in self._list("/models", listViewType="All"):
            props = m.get("properties") or {}
            system = m.get("systemData") or {}
            name = m.get("name")
            models.append({"name": name, "description": props.get("description"),
                           "creation_time": _ms(system.get("createdAt")),
                           "last_updated_time": _ms(system.get("lastModifiedAt")), "tags": props.get("tags") or {}})
            for v in self._list(f"/models/{quote(name, safe='')}/versions", listViewType="All"):
                vp = v.get("properties") or {}
                vs = v.get("systemData") or {}
                version = str(v.get("name"))
                versions.append({
                    "name": name, "version": version, "run_id": vp.get("jobName"),
                    "source_uri": vp.get("modelUri"), "model_id": None,
                    "status": "ARCHIVED" if vp.get("isArchived") else "READY", "stage": vp.get("stage"),
                    "user_id": vs.get("createdBy"), "description": vp.get("description"),
                    "creation_time": _ms(vs.get("createdAt")), "last_updated_time": _ms(vs.get("lastModifiedAt")),
                    "tags": vp.get("tags") or {}, "aliases": [],
                })
                if self.config.read_model_origins:
                    origin = self._local_origin(name, version, vp.get("modelUri"))
                    if origin:
                        origins.append(origin)
        self.report.count("registered_models", len(models))
        self.report.count("model_versions", len(versions))
        return models, versions, origins

    def _local_origin(self, name: str, version: str, uri: str | None) -> dict[str, Any] | None:
        """The MLmodel origin when the model's files are reachable as a local path (file:// URI).

        `azureml://…/datastores/…` URIs need the storage data plane, which this collector does not
        read: no origin row, so lineage reports the link as a gap rather than guessing."""
        if not uri:
            return None
        parts = urlsplit(uri)
        if parts.scheme not in ("file", ""):
            return None
        path = Path(unquote(parts.path)) / "MLmodel"
        if not path.is_file():
            return missing_row(name, version, "missing", f"no MLmodel under {uri}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            return missing_row(name, version, "unreadable", str(e))
        return origin_row(name, version, text)

    # -- health ------------------------------------------------------------------------------------
    def _window(self) -> tuple[datetime, datetime, int]:
        grain = int(_opt(self.config, "metrics_grain_minutes", 5))
        hours = int(_opt(self.config, "metrics_window_hours", 24))
        now = self.now()
        # Only complete bins: a bin still filling up would be stored with a partial value.
        end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % grain)
        return end - timedelta(hours=hours), end, grain

    def _metrics(self, endpoints: list[dict[str, Any]], deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.metrics_endpoint:
            if endpoints:
                self.report.warn("metrics_endpoint not configured: no Azure Monitor metrics collected")
            return []
        from azure.monitor.querymetrics import MetricAggregationType, MetricsClient

        start, end, grain = self._window()
        clients: dict[str, Any] = {}
        kwargs = {"timespan": (start, end), "granularity": timedelta(minutes=grain),
                  "aggregations": [MetricAggregationType.AVERAGE]}
        ep_ids = {e["resource_id"]: e["endpoint"] for e in endpoints if e.get("resource_id")}
        dep_ids = {d["resource_id"]: (d["endpoint"], d["deployment"]) for d in deployments if d.get("resource_id")}
        samples: list[dict[str, Any]] = []

        def client_for(region: str):
            url = metrics_endpoint_for(self.metrics_endpoint, region)
            if url not in clients:
                clients[url] = (MetricsClient(url, self.credential), enforce_https_for(url))
            return clients[url]

        def run(ids: dict[str, Any], namespace: str, names: dict[str, str] | list[str], flt: str | None, emit) -> None:
            # A batch call takes one subscription and one region, and must go to that region's endpoint.
            for region, group in _by_region(ids, endpoints):
                client, https = client_for(region)
                top = {"max_results": MAX_SERIES_PER_RESOURCE} if flt else {}
                try:
                    self.report.api_calls += 1
                    results = client.query_resources(resource_ids=group, metric_namespace=namespace,
                                                     metric_names=list(names), filter=flt, enforce_https=https,
                                                     **top, **kwargs)
                except Exception as e:  # metrics are health data: report, keep the control plane
                    self.report.warn(f"Azure Monitor metrics ({namespace.rsplit('/', 1)[-1]}, region "
                                     f"{region or '?'}): {type(e).__name__}: {str(e)[:300]}")
                    continue
                for result in results:
                    for metric in result.metrics:
                        owner = _owner(metric.id, ids)
                        if owner is None:
                            self.report.warn(f"metric {metric.name} for an unknown resource; skipped")
                            continue
                        if flt and len(metric.timeseries) >= MAX_SERIES_PER_RESOURCE:
                            self.report.warn(f"metric {metric.name} of {owner}: {len(metric.timeseries)} series, "
                                             "the most one call returns; some may be missing")
                        for ts in metric.timeseries:
                            for point in ts.data:
                                if point.average is None:
                                    continue
                                emit(owner, metric.name, ts.metadata_values or {}, point.timestamp, point.average)

        def emit_latency(owner, name, dims, when, value):
            samples.append(_sample(owner, dims.get("deployment", ""), LATENCY_METRICS[name], when, value))

        def emit_requests(owner, name, dims, when, value):
            status_class = dims.get("statusCodeClass") or dims.get("statuscodeclass") or "all"
            samples.append(_sample(owner, dims.get("deployment", ""), f"{REQUESTS_BY_CLASS}{status_class}", when, value))

        def emit_resource(owner, name, dims, when, value):
            endpoint, deployment = owner
            samples.append(_sample(endpoint, deployment, RESOURCE_METRICS[name], when, value))

        run(ep_ids, ENDPOINT_NS, LATENCY_METRICS, "deployment eq '*'", emit_latency)
        run(ep_ids, ENDPOINT_NS, ["RequestsPerMinute"], "deployment eq '*' and statusCodeClass eq '*'", emit_requests)
        run(dep_ids, DEPLOYMENT_NS, RESOURCE_METRICS, None, emit_resource)
        return samples

    def _traffic_log(self) -> list[dict[str, Any]]:
        if not self.log_workspace:
            return []
        from azure.monitor.query import LogsQueryClient, LogsQueryStatus

        start, end, grain = self._window()
        hours = max(1, int((end - start).total_seconds() // 3600))
        client = LogsQueryClient(self.credential, endpoint=self.logs_endpoint)
        try:
            self.report.api_calls += 1
            result = client.query_workspace(self.log_workspace, TRAFFIC_LOG_QUERY.format(hours=hours, grain=grain),
                                            timespan=(start, end), enforce_https=enforce_https_for(self.logs_endpoint))
        except Exception as e:
            self.report.warn(f"traffic log query failed: {type(e).__name__}: {str(e)[:300]}")
            return []
        if result.status == LogsQueryStatus.SUCCESS:
            tables = result.tables
        else:  # partial: keep what came back, say what is missing
            tables = result.partial_data
            err = result.partial_error
            self.report.warn(f"traffic log: partial result kept ({getattr(err, 'code', '')}: "
                             f"{str(getattr(err, 'message', err))[:300]})")
        samples = []
        for table in tables:
            cols = set(table.columns)
            if not {"EndpointName", "TimeGenerated"} <= cols:
                continue
            for row in table.rows:
                when = row["TimeGenerated"]
                if isinstance(when, str):
                    when = datetime.fromisoformat(when.replace("Z", "+00:00"))
                if when is None or when >= end:
                    continue
                for col in LOG_COLUMNS:
                    if col in cols and row[col] is not None:
                        samples.append(_sample(row["EndpointName"], row["DeploymentName"] or "", col, when,
                                               float(row[col])))
        return samples


def _sample(endpoint: str, deployment: str, metric: str, when: datetime, value: float) -> dict[str, Any]:
    """One row of `endpoint_metrics` (shared with the Databricks collector): labels name the deployment."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    labels = {"deployment": deployment} if deployment else {}
    return {"endpoint": endpoint, "metric": metric, "labels": json.dumps(labels, sort_keys=True),
            "sampled_at": int(when.timestamp() * 1000), "value": float(value)}


def _owner(metric_id: str | None, ids: dict[str, Any]) -> Any:
    """`metric.id` starts with the resource id (the result object does not carry it, §5.2)."""
    if not metric_id:
        return None
    low = metric_id.lower()
    best = None
    for rid, owner in ids.items():
        if low.startswith(rid.lower() + "/providers/") and (best is None or len(rid) > len(best[0])):
            best = (rid, owner)
    return best[1] if best else None


def metrics_endpoint_for(configured: str, region: str) -> str:
    """The batch endpoint must be the resources' own region (`https://{region}.metrics.monitor.azure.com`).

    `{region}` in the configured URL is replaced; a public regional host is switched to the region;
    any other URL (a sovereign cloud, a local stub) is used as given."""
    if "{region}" in configured:
        return configured.replace("{region}", region)
    parts = urlsplit(configured)
    m = _REGIONAL_METRICS_HOST.match((parts.hostname or "").lower())
    if m and region:
        return configured.replace(parts.hostname, f"{region}.metrics.monitor.azure.com", 1)
    return configured


def _by_region(ids: dict[str, Any], endpoints: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """(region, resource ids) per batch: one region per call, at most 50 ids (the service's limit)."""
    region_of = {e["endpoint"]: (e.get("location") or "").lower().replace(" ", "") for e in endpoints}
    groups: dict[str, list[str]] = {}
    for rid, owner in ids.items():
        endpoint = owner if isinstance(owner, str) else owner[0]
        groups.setdefault(region_of.get(endpoint, ""), []).append(rid)
    return [(region, ids_[i:i + 50]) for region, ids_ in sorted(groups.items()) for i in range(0, len(ids_), 50)]
