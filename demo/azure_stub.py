"""Local stubs of the Azure side on 127.0.0.1, speaking the wire formats of platform-apis.md §3–§5:
Azure ML ARM (online endpoints, deployments, models; `nextLink` paging), Azure Monitor batch
metrics (`metrics:getBatch`), Log Analytics queries (full and partial results), Fabric REST
(typed lists, `/items?type=`, lakehouse tables under `data`, shortcuts; absolute `continuationUri`
paging, 429 + Retry-After, the schema-enabled 400), the OneLake table API and Azure AI Search
(indexes, stats, indexers, data sources).

One `ThreadingHTTPServer` serves every API (the collectors get its URL as each endpoint
override). It is driven by the real clients: requests, `MetricsClient`, `LogsQueryClient`.

Fixture (every key optional, a dict or a JSON file):
    azureml   {subscription_id, resource_group, workspace, location,
               endpoints: [ARM onlineEndpoint + "deployments": [ARM deployment]],
               models: [ARM model container + "versions": [ARM model version]]}
    health    {endpoint: {deployment: {latency_p50, latency_p95, latency_p99, rpm, error_rate, cpu, memory}}}
              metric series are generated for any requested window: a daily cycle plus fixed noise
    logs      {rows: [[EndpointName, DeploymentName, TimeGenerated, log_requests, log_4xx, log_5xx, p50, p95]],
               partial_error: {code, message} | absent}
    fabric    {workspace_id: {items: [Fabric item], tables: {lakehouse_id: [table]}, schema_enabled: [lakehouse_id],
               onelake: {lakehouse_id: {schema: [table]}}, shortcuts: {item_id: [shortcut]}}}
    search    {indexes: [SearchIndex], stats: {index: {documentCount, storageSize, vectorIndexSize}},
               indexers: [Indexer], datasources: [DataSource], indexer_status: {indexer: status}}
Knobs: `page_size`, `throttle` {route: number of 429s first}, `retry_after`, `user_only_forbidden`
(typed Fabric ML lists answer 400 PrincipalTypeNotSupported, as to a service principal), `token` (required
bearer value), `fail` {route or "route@path-substring": HTTP status} (that read is refused, e.g. a
403 for a missing role, until the key is removed), `canned` {route: body} (served as is: an official
example body).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import isodate

from demo.layout import AZURE_STUB_STATE

_ML = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
_ROUTES = [
    ("GET", _ML + r"/onlineEndpoints", "aml.endpoints"),
    ("GET", _ML + r"/onlineEndpoints/(?P<ep>[^/]+)/deployments", "aml.deployments"),
    ("GET", _ML + r"/models", "aml.models"),
    ("GET", _ML + r"/models/(?P<model>[^/]+)/versions", "aml.versions"),
    # `/<region>` prefix: the stub's stand-in for https://<region>.metrics.monitor.azure.com.
    ("POST", r"(?:/(?P<region>[a-z0-9]+))?/subscriptions/(?P<sub>[^/]+)/metrics:getBatch", "metrics.batch"),
    ("POST", r"/v1/workspaces/(?P<law>[^/]+)/query", "logs.query"),
    ("GET", r"/v1/workspaces/(?P<fws>[^/]+)/(?P<kind>mlModels|mlExperiments|lakehouses)", "fabric.typed"),
    ("GET", r"/v1/workspaces/(?P<fws>[^/]+)/items", "fabric.items"),
    ("GET", r"/v1/workspaces/(?P<fws>[^/]+)/lakehouses/(?P<lh>[^/]+)/tables", "fabric.tables"),
    ("GET", r"/v1/workspaces/(?P<fws>[^/]+)/items/(?P<item>[^/]+)/shortcuts", "fabric.shortcuts"),
    ("GET", r"/delta/(?P<fws>[^/]+)/(?P<item>[^/]+)/api/2\.1/unity-catalog/schemas", "onelake.schemas"),
    ("GET", r"/delta/(?P<fws>[^/]+)/(?P<item>[^/]+)/api/2\.1/unity-catalog/tables", "onelake.tables"),
    ("GET", r"/indexes", "search.indexes"),
    ("GET", r"/indexes(?:\('(?P<qidx>[^']+)'\)|/(?P<idx>[^/]+))/(?:search\.)?stats", "search.stats"),
    ("GET", r"/indexers", "search.indexers"),
    ("GET", r"/indexers(?:\('(?P<qixr>[^']+)'\)|/(?P<ixr>[^/]+))/(?:search\.)?status", "search.indexer_status"),
    ("GET", r"/datasources", "search.datasources"),
]
_COMPILED = [(m, re.compile(p + r"/?$"), n) for m, p, n in _ROUTES]
_FABRIC_TYPE = {"mlModels": "MLModel", "mlExperiments": "MLExperiment", "lakehouses": "Lakehouse"}
LOG_COLUMNS = [("EndpointName", "string"), ("DeploymentName", "string"), ("TimeGenerated", "datetime"),
               ("log_requests", "long"), ("log_4xx", "long"), ("log_5xx", "long"),
               ("log_latency_p50_ms", "real"), ("log_latency_p95_ms", "real")]


class StubError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _noise(*parts: Any) -> float:
    """Deterministic noise in [-1, 1] per (series, timestamp)."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") / 2**31 - 1.0


def daily_load(when: datetime, key: str) -> float:
    """Traffic as people make it (0.05..~2): a quiet night, a morning and an afternoon peak, a small
    evening hump, weekends lower; slow hour-to-hour wander and the odd short burst on top."""
    hour = when.hour + when.minute / 60
    shape = (0.10 + math.exp(-((hour - 10.5) / 2.0) ** 2) + 0.8 * math.exp(-((hour - 15.0) / 2.6) ** 2)
             + 0.25 * math.exp(-((hour - 20.5) / 1.8) ** 2))
    if when.weekday() >= 5:
        shape *= 0.45
    wander = 1 + 0.12 * _noise(key, "hour", when.strftime("%Y-%m-%d %H"))
    burst = 1.3 if _noise(key, "burst", when.strftime("%Y-%m-%d %H"), when.minute // 15) > 0.96 else 1.0
    return 1.45 * shape * wander * burst        # 1.45: the week averages about 0.55, as before


def series_value(profile: dict[str, float], metric: str, when: datetime, key: str) -> float | None:
    """A believable value: daily traffic (see `daily_load`), latency following load, noise per sample."""
    load = daily_load(when, key)
    n = _noise(key, metric, when.isoformat())
    rpm = profile.get("rpm", 100.0) * load * (1 + 0.08 * n)
    err = profile.get("error_rate", 0.005) * (1 + 0.5 * n)
    if metric == "rpm_2xx":
        return round(rpm * (1 - err - profile.get("client_error_rate", 0.01)), 2)
    if metric == "rpm_4xx":
        return round(rpm * profile.get("client_error_rate", 0.01), 2)
    if metric == "rpm_5xx":
        return round(rpm * err, 3)
    if metric.startswith("latency_"):
        base = profile.get(metric.replace("_ms", ""), profile.get("latency_p50", 40.0))
        return round(base * (0.85 + 0.3 * load) * (1 + 0.05 * n), 1)
    if metric == "cpu":
        return round(min(99.0, profile.get("cpu", 30.0) * (0.6 + 0.7 * load) * (1 + 0.05 * n)), 1)
    if metric == "memory":
        return round(profile.get("memory", 45.0) * (1 + 0.02 * n), 1)
    return None


class AzureStub:
    """`.start()` (or a context manager); `.url` serves every API of the fixture."""

    def __init__(self, fixture: dict[str, Any] | None = None, *, page_size: int = 100,
                 throttle: dict[str, int] | None = None, retry_after: int = 0,
                 user_only_forbidden: bool = False, token: str | None = None,
                 fail: dict[str, int] | None = None, canned: dict[str, Any] | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.fixture = fixture or {}
        self.page_size = page_size
        self.throttle = dict(throttle or {})
        self.retry_after = retry_after
        self.user_only_forbidden = user_only_forbidden
        self.token = token
        self.fail = dict(fail or {})
        self.canned = dict(canned or {})
        self.counts: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []   # route, path, query, body, auth scheme
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                stub._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                stub._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "AzureStub":
        threading.Thread(target=self._server.serve_forever, name="azure-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "AzureStub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "AzureStub":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), **kwargs)

    # -- plumbing ----------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        route, params = "unknown", {}
        for m, pattern, name in _COMPILED:
            match = pattern.match(parts.path)
            if m == method and match:
                route, params = name, {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                break
        auth = h.headers.get("Authorization", "")
        with self._lock:
            self.counts[route] += 1
            self.requests.append({"route": route, "path": parts.path, "query": query,
                                  "body": json.loads(raw) if raw else None, "auth": auth.split(" ")[0]})
        try:
            if not auth.startswith("Bearer ") or (self.token and auth != f"Bearer {self.token}"):
                raise StubError(401, "InvalidAuthenticationToken", "missing or wrong bearer token")
            if route == "unknown":
                raise StubError(404, "NotFound", f"no route for {method} {parts.path}")
            for key, status in list(self.fail.items()):
                name, _, part = key.partition("@")
                if name == route and part in parts.path:
                    raise StubError(status, "Forbidden" if status == 403 else "Failed",
                                    f"stub: {route} refused with {status}")
            with self._lock:
                if self.throttle.get(route, 0) > 0:
                    self.throttle[route] -= 1
                    raise StubError(429, "TooManyRequests", "throttled",
                                    {"Retry-After": str(self.retry_after)})
            if route in self.canned:
                body = self.canned[route]
            else:
                body = getattr(self, "_r_" + route.replace(".", "_"))(params, query, json.loads(raw) if raw else None, h)
            self._send(h, 200, body)
        except StubError as e:
            self._send(h, e.status, *_error_body(route, e))

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body, default=str).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)

    def _base(self, h: BaseHTTPRequestHandler) -> str:
        return f"http://{h.headers.get('Host')}"

    def _page(self, h, path: str, query: dict[str, str], items: list[Any], key: str, style: str) -> dict[str, Any]:
        """style: arm (`nextLink` with $skipToken) | fabric (`continuationToken` + absolute
        `continuationUri`) | uc (`next_page_token`)."""
        token_param = {"arm": "$skipToken", "fabric": "continuationToken", "uc": "page_token"}[style]
        start = int(query.get(token_param) or 0)
        size = self.page_size
        if style == "fabric" and query.get("maxResults"):
            size = min(size, int(query["maxResults"]))
        chunk = items[start:start + size]
        body: dict[str, Any] = {key: chunk}
        if start + size < len(items):
            nxt = str(start + size)
            if style == "arm":
                q = {k: v for k, v in query.items() if k != token_param}
                body["nextLink"] = f"{self._base(h)}{path}?{urlencode({**q, token_param: nxt})}"
            elif style == "fabric":
                q = {k: v for k, v in query.items() if k != token_param}
                body["continuationToken"] = nxt
                body["continuationUri"] = f"{self._base(h)}{path}?{urlencode({**q, token_param: nxt})}"
            else:
                body["next_page_token"] = nxt
        return body

    # -- Azure ML ARM ------------------------------------------------------------------------------
    def _aml(self, params, query) -> dict[str, Any]:
        aml = self.fixture.get("azureml") or {}
        if (params["sub"], params["rg"], params["ws"]) != (aml.get("subscription_id"), aml.get("resource_group"),
                                                           aml.get("workspace")):
            raise StubError(404, "ResourceNotFound", f"workspace {params['ws']} not found")
        if not query.get("api-version"):
            raise StubError(400, "MissingApiVersionParameter", "api-version is required")
        return aml

    def _r_aml_endpoints(self, params, query, body, h):
        aml = self._aml(params, query)
        eps = [{k: v for k, v in e.items() if k != "deployments"} for e in aml.get("endpoints", [])]
        return self._page(h, urlsplit(h.path).path, query, eps, "value", "arm")

    def _r_aml_deployments(self, params, query, body, h):
        aml = self._aml(params, query)
        ep = next((e for e in aml.get("endpoints", []) if e["name"] == params["ep"]), None)
        if ep is None:
            raise StubError(404, "ResourceNotFound", f"endpoint {params['ep']} not found")
        return self._page(h, urlsplit(h.path).path, query, ep.get("deployments", []), "value", "arm")

    @staticmethod
    def _list_view(query, assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`listViewType` as the service applies it: ActiveOnly (the default) hides archived assets."""
        view = query.get("listViewType") or "ActiveOnly"
        if view not in ("ActiveOnly", "ArchivedOnly", "All"):
            raise StubError(400, "BadRequest", f"listViewType {view!r} is not one of ActiveOnly, ArchivedOnly, All")
        if view == "All":
            return assets
        archived = view == "ArchivedOnly"
        return [a for a in assets if bool((a.get("properties") or {}).get("isArchived")) == archived]

    def _r_aml_models(self, params, query, body, h):
        aml = self._aml(params, query)
        models = self._list_view(query, [{k: v for k, v in m.items() if k != "versions"} for m in aml.get("models", [])])
        return self._page(h, urlsplit(h.path).path, query, models, "value", "arm")

    def _r_aml_versions(self, params, query, body, h):
        aml = self._aml(params, query)
        model = next((m for m in aml.get("models", []) if m["name"] == params["model"]), None)
        if model is None:
            raise StubError(404, "ResourceNotFound", f"model {params['model']} not found")
        return self._page(h, urlsplit(h.path).path, query, self._list_view(query, model.get("versions", [])),
                          "value", "arm")

    # -- Azure Monitor -----------------------------------------------------------------------------
    def _resource_index(self) -> dict[str, tuple[str, str, str, str]]:
        """lower-cased resource id → (kind, endpoint, deployment, region)."""
        out = {}
        aml = self.fixture.get("azureml") or {}
        for e in aml.get("endpoints", []):
            region = (e.get("location") or aml.get("location") or "").lower()
            out[e["id"].lower()] = ("endpoint", e["name"], "", region)
            for d in e.get("deployments", []):
                out[d["id"].lower()] = ("deployment", e["name"], d["name"], region)
        return out

    def _r_metrics_batch(self, params, query, body, h):
        for required in ("starttime", "endtime", "metricnamespace", "metricnames"):
            if not query.get(required):
                raise StubError(400, "BadRequest", f"{required} is required")
        start = datetime.fromisoformat(query["starttime"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(query["endtime"].replace("Z", "+00:00"))
        interval = isodate.parse_duration(query.get("interval") or "PT1M")
        names = query["metricnames"].split(",")
        flt = query.get("filter") or ""
        # `top`: "The maximum number of records to retrieve per resource ID in the request. Valid
        # only if filter is specified. Defaults to 10." (metricBatch.json 2024-02-01)
        top = int(query.get("top") or 10) if flt else None
        index = self._resource_index()
        health = self.fixture.get("health") or {}
        # Every resource of a batch must be in the endpoint's region (no prefix: the workspace's).
        endpoint_region = params.get("region") or ((self.fixture.get("azureml") or {}).get("location") or "").lower()
        ids = (body or {}).get("resourceids", [])
        elsewhere = [rid for rid in ids if index.get(rid.lower(), ("", "", "", endpoint_region))[3] != endpoint_region]
        if elsewhere:
            raise StubError(400, "BadRequest", f"resource(s) {', '.join(elsewhere)} are not in region "
                                               f"{endpoint_region}: query them on their own regional endpoint")
        values = []
        for rid in ids:
            kind, endpoint, deployment, region = index.get(rid.lower(), (None, None, None, endpoint_region))
            metrics = []
            for name in names:
                timeseries = []
                if kind == "endpoint":
                    deps = health.get(endpoint, {})
                    for dep, profile in deps.items():
                        if name == "RequestsPerMinute":
                            classes = ["2xx", "4xx", "5xx"] if "statusCodeClass" in flt else [None]
                            for cls in classes:
                                metric_key = f"rpm_{cls}" if cls else None
                                data = self._points(profile, metric_key, start, end, interval, f"{endpoint}/{dep}")
                                meta = [_dimension("deployment", dep)]
                                if cls:
                                    meta.append(_dimension("statusCodeClass", cls))
                                timeseries.append({"metadatavalues": meta, "data": data})
                        elif name.startswith("RequestLatency_"):
                            key = "latency_" + name.split("_")[1].lower() + "_ms"
                            timeseries.append({"metadatavalues": [_dimension("deployment", dep)],
                                               "data": self._points(profile, key, start, end, interval,
                                                                    f"{endpoint}/{dep}")})
                elif kind == "deployment":
                    profile = health.get(endpoint, {}).get(deployment)
                    key = {"CpuUtilizationPercentage": "cpu", "CpuMemoryUtilizationPercentage": "memory"}.get(name)
                    if profile and key:
                        timeseries.append({"metadatavalues": [],
                                           "data": self._points(profile, key, start, end, interval,
                                                                f"{endpoint}/{deployment}")})
                if top is not None:
                    timeseries = timeseries[:top]
                metrics.append({"id": f"{rid}/providers/Microsoft.Insights/metrics/{name}", "type": "Microsoft.Insights/metrics",
                                "name": {"value": name, "localizedValue": name},
                                "displayDescription": f"{name} of the online endpoint", "unit": "Count",
                                "timeseries": timeseries, "errorCode": "Success"})
            values.append({"starttime": query["starttime"], "endtime": query["endtime"],
                           "interval": query.get("interval", "PT1M"), "namespace": query["metricnamespace"].lower(),
                           "resourceregion": region, "resourceid": rid, "value": metrics})
        return {"values": values}

    @staticmethod
    def _points(profile, key, start, end, interval, series) -> list[dict[str, Any]]:
        points, t = [], start
        while t < end:
            value = series_value(profile, key, t, series) if key else sum(
                series_value(profile, k, t, series) or 0 for k in ("rpm_2xx", "rpm_4xx", "rpm_5xx"))
            points.append({"timeStamp": t.isoformat().replace("+00:00", "Z"), "average": value})
            t += interval
        return points

    def _r_logs_query(self, params, query, body, h):
        logs = self.fixture.get("logs") or {}
        if "AmlOnlineEndpointTrafficLog" not in (body or {}).get("query", ""):
            raise StubError(400, "BadArgumentError", "unknown table")
        out: dict[str, Any] = {"tables": [{"name": "PrimaryResult",
                                           "columns": [{"name": n, "type": t} for n, t in LOG_COLUMNS],
                                           "rows": [_log_cells(r) for r in logs.get("rows", [])]}]}
        if logs.get("partial_error"):
            out["error"] = {**logs["partial_error"], "details": [logs["partial_error"]]}
        return out

    # -- Fabric ------------------------------------------------------------------------------------
    def _fabric(self, params) -> dict[str, Any]:
        ws = (self.fixture.get("fabric") or {}).get(params["fws"])
        if ws is None:
            raise StubError(404, "WorkspaceNotFound", f"workspace {params['fws']} not found")
        return ws

    def _r_fabric_typed(self, params, query, body, h):
        ws = self._fabric(params)
        kind = params["kind"]
        if self.user_only_forbidden and kind in ("mlModels", "mlExperiments"):
            # The spec's identity table says service principals and managed identities are not
            # supported here; the refusal Fabric sends for that (as handled by microsoft/fabric-cicd)
            # is a 400 whose error code is PrincipalTypeNotSupported — not a 401/403.
            raise StubError(400, "PrincipalTypeNotSupported",
                            "The operation is not supported for the principal type")
        items = [i for i in ws.get("items", []) if i["type"] == _FABRIC_TYPE[kind]]
        return self._page(h, urlsplit(h.path).path, query, items, "value", "fabric")

    def _r_fabric_items(self, params, query, body, h):
        ws = self._fabric(params)
        wanted = query.get("type")
        # The generic list carries no type-specific `properties` (nor, in its example, a sensitivity label).
        items = [{k: v for k, v in i.items() if k not in ("properties", "sensitivityLabel")} for i in ws.get("items", [])
                 if not wanted or i["type"] == wanted]
        return self._page(h, urlsplit(h.path).path, query, items, "value", "fabric")

    def _r_fabric_tables(self, params, query, body, h):
        ws = self._fabric(params)
        lh = next((i for i in ws.get("items", []) if i["id"] == params["lh"]), None)
        if lh is None:
            raise StubError(404, "ItemNotFound", "lakehouse not found")
        if (lh.get("properties") or {}).get("defaultSchema") or params["lh"] in ws.get("schema_enabled", []):
            raise StubError(400, "UnsupportedOperationForSchemasEnabledLakehouse",
                            "The operation is not supported for Lakehouse with schemas enabled.")
        return self._page(h, urlsplit(h.path).path, query, ws.get("tables", {}).get(params["lh"], []), "data", "fabric")

    def _r_fabric_shortcuts(self, params, query, body, h):
        ws = self._fabric(params)
        return self._page(h, urlsplit(h.path).path, query, ws.get("shortcuts", {}).get(params["item"], []),
                          "value", "fabric")

    def _r_onelake_schemas(self, params, query, body, h):
        ws = self._fabric(params)
        schemas = ws.get("onelake", {}).get(params["item"], {})
        if query.get("catalog_name") != params["item"]:
            raise StubError(400, "INVALID_PARAMETER_VALUE", "catalog_name must be the item")
        return self._page(h, "", query, [{"name": s, "catalog_name": params["item"], "full_name": f"{params['item']}.{s}"}
                                         for s in schemas], "schemas", "uc")

    def _r_onelake_tables(self, params, query, body, h):
        ws = self._fabric(params)
        tables = ws.get("onelake", {}).get(params["item"], {}).get(query.get("schema_name"), [])
        return self._page(h, "", query, tables, "tables", "uc")

    # -- Azure AI Search ---------------------------------------------------------------------------
    def _search(self, query) -> dict[str, Any]:
        if not query.get("api-version"):
            raise StubError(400, "MissingApiVersion", "api-version is required")
        return self.fixture.get("search") or {}

    def _r_search_indexes(self, params, query, body, h):
        return {"value": [search_index_as_served(i) for i in self._search(query).get("indexes", [])]}

    def _r_search_stats(self, params, query, body, h):
        name = params.get("qidx") or params.get("idx")
        stats = self._search(query).get("stats", {}).get(name)
        if stats is None:
            raise StubError(404, "ResourceNotFound", f"index {name} not found")
        return stats

    def _r_search_indexers(self, params, query, body, h):
        return {"value": self._search(query).get("indexers", [])}

    def _r_search_indexer_status(self, params, query, body, h):
        name = params.get("qixr") or params.get("ixr")
        return self._search(query).get("indexer_status", {}).get(name, indexer_status(None))

    def _r_search_datasources(self, params, query, body, h):
        return {"value": self._search(query).get("datasources", [])}


def _log_cells(row: list[Any]) -> list[Any]:
    """The official Log Analytics example sends long/real/bool cells as JSON strings ("1", "1.286")."""
    return [None if v is None else str(v) if t in ("long", "real", "bool") else v
            for v, (_, t) in zip(row, LOG_COLUMNS)]


def _dimension(name: str, value: str) -> dict[str, Any]:
    """A metric dimension as the service returns it: the name lower-cased, whatever the filter said."""
    return {"name": {"value": name.lower(), "localizedValue": name.lower()}, "value": value}


def _error_body(route: str, e: StubError) -> tuple[dict[str, Any], dict[str, str]]:
    """Each API's own error envelope: Fabric's ErrorResponse (`errorCode`, also in the
    `x-ms-public-api-error-code` header), the Unity Catalog shape of the OneLake table API,
    Azure Monitor's `{code, message}`, and the ARM / AI Search / Log Analytics `{"error": {...}}`."""
    if route.startswith("fabric."):
        return ({"requestId": "00000000-0000-4000-8000-00000000e770", "errorCode": e.code, "message": e.message},
                {"x-ms-public-api-error-code": e.code, **e.headers})
    if route.startswith("onelake."):
        return {"error_code": e.code, "message": e.message}, e.headers
    if route.startswith("metrics."):
        return {"code": e.code, "message": e.message}, e.headers
    return {"error": {"code": e.code, "message": e.message}}, e.headers


def serve_file(path: str | Path, port: int = 0) -> AzureStub:
    """Start a stub for a fixture JSON file (the demo) and return it running."""
    return AzureStub.from_file(path, port=port).start()


def _log_rows(health: dict[str, dict[str, dict[str, float]]], end: datetime, hours: int, grain_minutes: int = 5):
    """Traffic-log aggregates consistent with the metric profiles (for fixtures)."""
    rows = []
    t = end - timedelta(hours=hours)
    while t < end:
        for endpoint, deps in health.items():
            for dep, profile in deps.items():
                key = f"{endpoint}/{dep}"
                rpm = sum(series_value(profile, k, t, key) or 0 for k in ("rpm_2xx", "rpm_4xx", "rpm_5xx"))
                requests = int(rpm * grain_minutes)
                rows.append([endpoint, dep, t.isoformat().replace("+00:00", "Z"), requests,
                             int(requests * profile.get("client_error_rate", 0.01)),
                             int(round(requests * profile.get("error_rate", 0.005))),
                             series_value(profile, "latency_p50_ms", t, key),
                             series_value(profile, "latency_p95_ms", t, key)])
        t += timedelta(minutes=grain_minutes)
    return rows


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- the churn story's Azure ML side (tests and the demo) ------------------------------------------
AML_SUB = "00000000-0000-4000-8000-00000000c0de"
AML_RG = "rg-churn"
AML_WS = "aml-churn"
AML_MODEL = "churn-model"


def aml_workspace_id() -> str:
    return (f"/subscriptions/{AML_SUB}/resourceGroups/{AML_RG}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{AML_WS}")


def churn_azureml(model_uris: dict[str, str] | None = None, traffic: dict[str, int] | None = None,
                  migrated_from: dict[str, str] | None = None, green_from_registry: bool = False) -> dict[str, Any]:
    """Endpoint `churn-aml`: blue (v2) / green (v3), 90/10 by default; models referenced by workspace
    ARM id, or green from a registry (`azureml://registries/…`)."""
    ws = aml_workspace_id()
    traffic = traffic if traffic is not None else {"blue": 90, "green": 10}
    model_uris = model_uris or {}
    migrated_from = migrated_from or {}

    def system(created: str, modified: str | None = None, by: str = "migration-pipeline") -> dict[str, Any]:
        return {"createdAt": created, "createdBy": by, "createdByType": "User",
                "lastModifiedAt": modified or created, "lastModifiedBy": by, "lastModifiedByType": "User"}

    identity = {"type": "SystemAssigned", "principalId": "00000000-0000-4000-8000-0000000001d0",
                "tenantId": "00000000-0000-4000-8000-0000000070e0",
                "userAssignedIdentities": {}}

    def deployment(name: str, model: str, instance_type: str, capacity: int) -> dict[str, Any]:
        # The keys and types of the official ManagedOnlineDeployment get example (2024-10-01).
        return {"id": f"{ws}/onlineEndpoints/churn-aml/deployments/{name}", "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                "properties": {"description": f"churn {name}", "properties": {},
                               "codeConfiguration": {"codeId": f"{ws}/codes/score/versions/1", "scoringScript": "score.py"},
                               "environmentId": "azureml://registries/azureml/environments/sklearn-1.5/versions/1",
                               "environmentVariables": {},
                               "scaleSettings": {"scaleType": "Default"},
                               "requestSettings": {"maxQueueWait": "PT0.5S", "requestTimeout": "PT5S",
                                                   "maxConcurrentRequestsPerInstance": 1},
                               "appInsightsEnabled": True,
                               "livenessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                                 "period": "PT10S", "initialDelay": "PT10M"},
                               "provisioningState": "Succeeded", "instanceType": instance_type, "model": model,
                               "endpointComputeType": "Managed", "modelMountPath": "/var/azureml-app",
                               "readinessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                                  "period": "PT10S", "initialDelay": "PT10S"}},
                "systemData": system("2026-11-10T09:00:00Z"), "tags": {}, "location": "westeurope",
                "kind": "Managed", "identity": identity,
                "sku": {"name": "Default", "tier": "Standard", "size": "", "family": "", "capacity": capacity}}

    deployments = [deployment("blue", f"{ws}/models/{AML_MODEL}/versions/2", "Standard_DS3_v2", 2)]
    if "green" in traffic:
        green = (f"azureml://registries/churn-registry/models/{AML_MODEL}/versions/3" if green_from_registry
                 else f"{ws}/models/{AML_MODEL}/versions/3")
        deployments.append(deployment("green", green, "Standard_DS3_v2", 1))
    versions = []
    for v in ("1", "2", "3"):
        tags = {"team": "churn"}
        if v in migrated_from:
            tags["waymark.migrated_from"] = migrated_from[v]
        # The official ModelVersion list example's keys, plus `isArchived` (AssetBase; examples omit it).
        versions.append({"id": f"{ws}/models/{AML_MODEL}/versions/{v}", "name": v,
                         "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
                         "systemData": system(f"2026-11-0{v}T10:00:00Z"),
                         "properties": {"description": f"churn model v{v} copied from Fabric", "tags": tags,
                                        "properties": {}, "isAnonymous": False, "isArchived": v == "1",
                                        "flavors": {"python_function": {"data": {"loader_module": "mlflow.sklearn"}},
                                                    "sklearn": {"data": {"sklearn_version": "1.5.2"}}},
                                        "modelType": "mlflow_model",
                                        "modelUri": model_uris.get(v, f"azureml://subscriptions/{AML_SUB}/resourcegroups/"
                                                                      f"{AML_RG}/workspaces/{AML_WS}/datastores/"
                                                                      f"workspaceblobstore/paths/churn/v{v}/")}})
    return {
        "subscription_id": AML_SUB, "resource_group": AML_RG, "workspace": AML_WS, "location": "westeurope",
        "endpoints": [{
            "id": f"{ws}/onlineEndpoints/churn-aml", "name": "churn-aml",
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "properties": {"description": "churn scoring", "properties": {}, "authMode": "Key",
                           "scoringUri": "https://churn-aml.westeurope.inference.ml.azure.com/score",
                           "swaggerUri": "https://churn-aml.westeurope.inference.ml.azure.com/swagger.json",
                           "provisioningState": "Succeeded", "compute": None, "traffic": traffic,
                           "mirrorTraffic": {}, "publicNetworkAccess": "Enabled"},
            "systemData": system("2026-11-10T09:00:00Z", "2026-11-20T09:00:00Z"),
            "tags": {"owner": "churn-team"}, "location": "westeurope", "kind": "Managed", "identity": identity,
            "sku": {"name": "Default", "tier": "Standard", "size": "", "family": "", "capacity": 1},
            "deployments": deployments}],
        "models": [{"id": f"{ws}/models/{AML_MODEL}", "name": AML_MODEL,
                    "type": "Microsoft.MachineLearningServices/workspaces/models",
                    "systemData": system("2026-11-01T10:00:00Z", "2026-11-03T10:00:00Z"),
                    "properties": {"description": "Churn classifier migrated from Databricks via Fabric",
                                   "tags": {"team": "churn"}, "isArchived": False, "latestVersion": "3"},
                    "versions": versions}],
    }


CHURN_HEALTH = {"churn-aml": {
    "blue": {"latency_p50": 38.0, "latency_p95": 96.0, "latency_p99": 171.0, "rpm": 180.0,
             "error_rate": 0.002, "client_error_rate": 0.01, "cpu": 34.0, "memory": 52.0},
    "green": {"latency_p50": 44.0, "latency_p95": 131.0, "latency_p99": 240.0, "rpm": 20.0,
              "error_rate": 0.012, "client_error_rate": 0.01, "cpu": 22.0, "memory": 47.0},
}}


# -- the churn story's Fabric side ----------------------------------------------------------------
FABRIC_WS = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
LH_PLAIN = "a1b2c3d4-0000-4000-8000-000000000001"     # lakehouse without schemas (List Tables works)
LH_SCHEMAS = "a1b2c3d4-0000-4000-8000-000000000002"   # schema-enabled: List Tables answers 400


def churn_fabric(uc_feature_location: str = "abfss://gold@churnlake.dfs.core.windows.net/churn/features") -> dict[str, Any]:
    container, _, rest = uc_feature_location[len("abfss://"):].partition("@")
    host, _, sub = rest.partition("/")
    account = f"https://{host}"   # the shortcut must land on the UC table's own storage account
    label = {"id": "b7b4f4d9-3f0d-4b3e-8f3d-4f6d3f4f3f4f"}

    def sql_endpoint(lh: str) -> dict[str, Any]:
        return {"connectionString": f"{lh[:8]}.datawarehouse.fabric.microsoft.com", "id": lh[:-4] + "5e1d",
                "provisioningStatus": "Success"}

    def paths(lh: str) -> dict[str, str]:
        return {"oneLakeTablesPath": f"https://onelake.dfs.fabric.microsoft.com/{FABRIC_WS}/{lh}/Tables",
                "oneLakeFilesPath": f"https://onelake.dfs.fabric.microsoft.com/{FABRIC_WS}/{lh}/Files"}

    # The keys of the official typed-list examples (ListMLModels / ListMLExperiments / ListLakehouses);
    # the generic /items list drops `properties` and `sensitivityLabel` (ListItemsInWorkspace).
    items = [
        {"id": "c0000000-0000-4000-8000-0000000000m1", "type": "MLModel", "displayName": "churn_model",
         "description": "Churn classifier (copied from Databricks)", "workspaceId": FABRIC_WS,
         "sensitivityLabel": label},
        {"id": "c0000000-0000-4000-8000-0000000000e1", "type": "MLExperiment", "displayName": "customer-churn",
         "description": "Churn experiments", "workspaceId": FABRIC_WS,
         "properties": {"mlFlowExperimentId": "1"}, "sensitivityLabel": label},
        {"id": LH_PLAIN, "type": "Lakehouse", "displayName": "lh_churn", "description": "Churn scores",
         "workspaceId": FABRIC_WS, "properties": {**paths(LH_PLAIN), "sqlEndpointProperties": sql_endpoint(LH_PLAIN)},
         "sensitivityLabel": label},
        {"id": LH_SCHEMAS, "type": "Lakehouse", "displayName": "lh_features", "description": "Churn features",
         "workspaceId": FABRIC_WS, "properties": {**paths(LH_SCHEMAS), "sqlEndpointProperties": sql_endpoint(LH_SCHEMAS),
                                                  "defaultSchema": "dbo"},
         "sensitivityLabel": label},
    ]
    plain_tables = [{"type": "Managed", "name": f"churn_scores_{i}", "format": "Delta",
                     "location": f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/{LH_PLAIN}/Tables/churn_scores_{i}"}
                    for i in range(3)]
    onelake = {LH_SCHEMAS: {"dbo": [{"name": "churn_features", "schema_name": "dbo", "table_type": "MANAGED",
                                     "data_source_format": "DELTA",
                                     "storage_location": f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/"
                                                         f"{LH_SCHEMAS}/Tables/dbo/churn_features"}],
                            "gold": [{"name": "holdout", "schema_name": "gold", "table_type": "MANAGED",
                                      "data_source_format": "DELTA",
                                      "storage_location": f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/"
                                                          f"{LH_SCHEMAS}/Tables/gold/holdout"}]}}
    shortcuts = {LH_SCHEMAS: [
        {"name": "uc_features", "path": "Tables/dbo",
         "target": {"type": "AdlsGen2", "adlsGen2": {"location": account, "subpath": f"/{container}/{sub}",
                                                     "connectionId": "d0000000-0000-4000-8000-000000000001"}}},
        {"name": "shared_scores", "path": "Tables/dbo",
         "target": {"type": "OneLake", "oneLake": {"workspaceId": FABRIC_WS, "itemId": LH_PLAIN,
                                                   "path": "Tables/churn_scores_0"}}},
    ]}
    return {FABRIC_WS: {"items": items, "tables": {LH_PLAIN: plain_tables}, "onelake": onelake,
                        "shortcuts": shortcuts}}


# -- the churn story's Azure AI Search side -------------------------------------------------------
def indexer_status(last: str | None, overall: str = "running") -> dict[str, Any]:
    """An indexer status body with the keys of the official Indexers_GetStatus example."""
    def run(status: str) -> dict[str, Any]:
        return {"status": status, "errorMessage": None, "startTime": "2026-11-24T11:00:00Z",
                "endTime": "2026-11-24T11:02:00Z", "errors": [], "warnings": [], "itemsProcessed": 120,
                "itemsFailed": 0, "initialTrackingState": None, "finalTrackingState": None}
    return {"status": overall, "lastResult": run(last) if last else None,
            "executionHistory": [run(last)] if last else [],
            "limits": {"maxRunTime": "PT2H", "maxDocumentExtractionSize": 16777216,
                       "maxDocumentContentCharactersToExtract": 32768}}


# What the service fills in on every field and index it returns (keys of the official Indexes_List example).
_FIELD_DEFAULTS = {"searchable": False, "filterable": False, "retrievable": True, "sortable": False,
                   "facetable": False, "key": False, "indexAnalyzer": None, "searchAnalyzer": None,
                   "analyzer": None, "synonymMaps": []}
_INDEX_DEFAULTS = {"scoringProfiles": [], "defaultScoringProfile": None, "suggesters": [], "analyzers": [],
                   "tokenizers": [], "tokenFilters": [], "charFilters": [], "corsOptions": None,
                   "encryptionKey": None}


def search_index_as_served(index: dict[str, Any]) -> dict[str, Any]:
    def field(f: dict[str, Any]) -> dict[str, Any]:
        out = {**_FIELD_DEFAULTS, **f}
        if f.get("fields"):
            out["fields"] = [field(c) for c in f["fields"]]
        return out
    return {**_INDEX_DEFAULTS, **index, "fields": [field(f) for f in index.get("fields") or []]}


def churn_search() -> dict[str, Any]:
    """`documents`: the replacement of Databricks `catalog.schema.doc_embeddings_index` (seed 000 §6)."""
    return {
        "indexes": [{
            "name": "documents",
            "fields": [{"name": "doc_id", "type": "Edm.String", "key": True},
                       {"name": "title", "type": "Edm.String", "searchable": True},
                       {"name": "content", "type": "Edm.String", "searchable": True},
                       {"name": "content_vector", "type": "Collection(Edm.Single)", "dimensions": 1024,
                        "vectorSearchProfile": "my-profile"},
                       {"name": "chunks", "type": "Collection(Edm.ComplexType)", "fields": [
                           {"name": "vector", "type": "Collection(Edm.Half)", "dimensions": 256,
                            "vectorSearchProfile": "small"}]}],
            "vectorSearch": {"algorithms": [{"name": "hnsw", "kind": "hnsw",
                                             "hnswParameters": {"metric": "cosine", "m": 4, "efConstruction": 400}},
                                            {"name": "eknn", "kind": "exhaustiveKnn",
                                             "exhaustiveKnnParameters": {"metric": "dotProduct"}}],
                             "profiles": [{"name": "my-profile", "algorithm": "hnsw"},
                                          {"name": "small", "algorithm": "eknn"}]}},
            {"name": "faq", "fields": [{"name": "id", "type": "Edm.String", "key": True}]}],
        "stats": {"documents": {"documentCount": 48210, "storageSize": 912_000_000, "vectorIndexSize": 205_000_000},
                  "faq": {"documentCount": 120, "storageSize": 40_000, "vectorIndexSize": 0}},
        "indexers": [{"name": "documents-indexer", "description": "documents from OneLake",
                      "dataSourceName": "onelake-docs", "targetIndexName": "documents",
                      "schedule": {"interval": "PT1H", "startTime": "2026-11-01T00:00:00Z"},
                      "parameters": {"maxFailedItems": 10, "maxFailedItemsPerBatch": 5},
                      "fieldMappings": [], "disabled": False}],
        "datasources": [{"name": "onelake-docs", "description": "lh_docs files", "type": "onelake",
                         "credentials": {"connectionString": None},
                         "container": {"name": "lh_docs", "query": "Files/docs"},
                         "dataChangeDetectionPolicy": None, "dataDeletionDetectionPolicy": None,
                         "encryptionKey": None}],
        "indexer_status": {"documents-indexer": indexer_status("success")},
    }


# -- the demo workspace's Azure side ---------------------------------------------------------------
DEMO_STUB_STATE = AZURE_STUB_STATE.name   # {"port": N}: where the demo's Azure stub listens (see ensure_demo_stub)


class DemoAzure:
    """The Azure ML side of the demo: the churn model copied from Databricks (via Fabric) and served on
    `churn-aml`, blue (v2 = the tuned model, Fabric's Production) and later green (v3 = the November
    retrain, Fabric's Staging) at 10 %. Its fixture lives in `<demo>/azure/fixture.json` and is served
    by an AzureStub on 127.0.0.1 whose port is recorded in `<demo>/azure/stub.json`."""

    source_name = "aml-churn"

    def __init__(self, root: Path):
        self.dir = root / "azure"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fixture_path = self.dir / "fixture.json"
        self.fixture: dict[str, Any] = {"azureml": churn_azureml(traffic={}), "health": {}, "logs": {"rows": []}}
        self.fixture["azureml"]["endpoints"] = []
        self.fixture["azureml"]["models"][0]["versions"] = []
        self.stub: AzureStub | None = None

    def start(self) -> "DemoAzure":
        self.save()
        self.stub = AzureStub(self.fixture).start()
        port = int(self.stub.url.rsplit(":", 1)[1])
        (self.dir / DEMO_STUB_STATE).write_text(json.dumps({"port": port}), encoding="utf-8")
        return self

    def stop(self) -> None:
        if self.stub:
            self.stub.stop()
            self.stub = None

    def config_block(self) -> str:
        assert self.stub is not None
        url = self.stub.url
        return ("\n[[sources]]\n"
                f'name = "{self.source_name}"\nkind = "azureml"\nplatform = "azureml"\n'
                f'subscription_id = "{AML_SUB}"\nresource_group = "{AML_RG}"\nworkspace = "{AML_WS}"\n'
                f'arm_endpoint = "{url}"\nmetrics_endpoint = "{url}"\nlogs_endpoint = "{url}"\n'
                'log_analytics_workspace_id = "8d1c2b3a-4e5f-4a6b-9c8d-7e6f5a4b3c2d"\n'
                "\n[[slo]]\n"
                'endpoint = "churn-aml"\nplatform = "azureml"\nserves = "churn_model@Production"\n'
                'registry_source = "fabric-churn"\nlatency_p95_ms = 150\nerror_rate_pct = 1.0\n'
                "min_requests_per_minute = 1\nstale_after_minutes = 1440\n"
                "\n[[slo]]\n"
                'endpoint = "churn-*"\nplatform = "databricks"\nserves = "churn.ml.churn_gbm@champion"\n'
                'registry_source = "dbx-uc"\nlatency_p95_ms = 150\nerror_rate_pct = 1.0\n'
                "stale_after_minutes = 1440\n")

    def publish(self, artifacts: dict[str, Path], traffic: dict[str, int], migrated_from: dict[str, str]) -> None:
        """Register the given Azure ML versions (copies of `artifacts`) and route traffic."""
        uris = {}
        for version, src in artifacts.items():
            dest = self.dir / "models" / AML_MODEL / f"v{version}"
            if not dest.exists():
                shutil.copytree(src, dest)
            uris[version] = dest.as_uri()
        aml = churn_azureml(model_uris=uris, traffic=traffic, migrated_from=migrated_from)
        aml["models"][0]["versions"] = [v for v in aml["models"][0]["versions"] if v["name"] in uris]
        self.fixture["azureml"] = aml
        self.fixture["health"] = {"churn-aml": {d: CHURN_HEALTH["churn-aml"][d] for d in traffic}}
        self.fixture["logs"] = {"rows": _log_rows(self.fixture["health"], now_utc().replace(minute=0, second=0,
                                                                                            microsecond=0), hours=24)}
        self.save()

    def save(self) -> None:
        self.fixture_path.write_text(json.dumps(self.fixture, indent=1), encoding="utf-8")


def ensure_demo_stub(demo_root: Path) -> AzureStub | None:
    """Serve the demo's Azure fixture on its recorded port if nothing listens there yet (an app
    process calls this once, so `python -m collectors snapshot` subprocesses reach it)."""
    import socket

    state = demo_root / "azure" / DEMO_STUB_STATE
    fixture = demo_root / "azure" / "fixture.json"
    if not state.exists() or not fixture.exists():
        return None
    port = int(json.loads(state.read_text(encoding="utf-8"))["port"])
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return None   # already served (by this or another process)
    try:
        return serve_file(fixture, port=port)
    except OSError:
        return None   # port taken by something else: the source's next pass reports the failure
