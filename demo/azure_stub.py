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

The churn story's fixtures (and the metric series the stub generates) are in `demo.azure_fixtures`;
the demo workspace's Azure side, which runs this stub, is `demo.azure_demo`.
"""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import isodate

from demo.azure_fixtures import indexer_status, search_index_as_served, series_value

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
