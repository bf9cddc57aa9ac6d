"""A local Databricks workspace stub that speaks the REST shapes of platform-apis.md §1.

A `ThreadingHTTPServer` on 127.0.0.1 (port 0 by default) serving a fixture workspace held in a
Python dict (or a JSON file, for the demo). It is driven by the real `databricks-sdk`
`WorkspaceClient`; the fixtures use only field names from the API reference.

Fixture workspace (every key optional):
    workspace_id            str, returned by /.well-known/databricks-config
    registered_models       [RegisteredModelInfo] (with `aliases`; stripped unless include_aliases=true)
    schemas                 ["catalog.schema"] beyond those the models, tables and features name
    model_versions          {model full_name: [ModelVersionInfo]}
    tables                  [TableInfo]
    lineage                 {downstream table: [{"table": upstream, "lineage_timestamp", "jobInfos", "notebookInfos"}
                                                | {"file": path}]}
    features                [Feature]       (feature-engineering API)
    materialized_features   [MaterializedFeature]  (feature_name = a feature's full name, table_name)
    feature_lineage         {"<feature table>|<feature>": FeatureLineage}  (a classic feature table, or
                            the table a declarative feature is materialized into)
    serving_endpoints       [ServingEndpointDetailed]  (the list call strips it to ServingEndpoint)
    metrics                 {endpoint name: Prometheus text}
    vector_search_endpoints [EndpointInfo]
    vector_indexes          [VectorIndex]
    job_runs                [Run]
    current_user            User (SCIM), returned by /preview/scim/v2/Me
    model_files             {"catalog.schema.model/<version>/<path>": text} — a UC model version's files,
                            served by the Files API under /Models/<catalog>/<schema>/<model>/<version>
                            (MLflow lists and reads UC model artifacts through it when the workspace says so)

Fault knobs (`Faults`): empty pages that still carry a token, 429 + Retry-After, 5xx then success,
403 for whole catalogs or for whole routes, a route that always fails, and request counting per route.
"""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from demo.databricks_stub_uc import ApiError, UnityCatalogRoutes


@dataclass
class Faults:
    empty_pages: bool = False                               # an empty page with a token before every page
    throttle: dict[str, int] = field(default_factory=dict)  # route -> number of 429s to answer first
    retry_after: int = 1                                    # seconds, sent as Retry-After with a 429
    flaky: dict[str, int] = field(default_factory=dict)     # route -> number of 5xx to answer first
    flaky_status: int = 500
    forbidden_catalogs: set[str] = field(default_factory=set)  # every call naming one gets a 403
    not_found_metrics: set[str] = field(default_factory=set)   # endpoints whose metrics export 404s
    forbidden_routes: set[str] = field(default_factory=set)    # routes answering 403 (a missing grant)
    failing: dict[str, int] = field(default_factory=dict)      # route -> HTTP status it always answers


# (method, regex, route name); names are what faults and counters use.
_ROUTES = [
    (r"/\.well-known/databricks-config", "host_metadata"),
    (r"/api/2\.0/preview/scim/v2/Me", "scim.me"),
    (r"/api/2\.1/unity-catalog/catalogs", "uc.catalogs.list"),
    (r"/api/2\.1/unity-catalog/schemas", "uc.schemas.list"),
    (r"/api/2\.1/unity-catalog/models", "uc.models.list"),
    (r"/api/2\.1/unity-catalog/models/(?P<full_name>[^/]+)/versions", "uc.versions.list"),
    (r"/api/2\.1/unity-catalog/models/(?P<full_name>[^/]+)/versions/(?P<version>\d+)", "uc.versions.get"),
    (r"/api/2\.1/unity-catalog/models/(?P<full_name>[^/]+)", "uc.models.get"),
    (r"/api/2\.1/unity-catalog/tables", "uc.tables.list"),
    (r"/api/2\.1/unity-catalog/tables/(?P<full_name>[^/]+)", "uc.tables.get"),
    (r"/api/2\.0/lineage-tracking/table-lineage", "lineage.table"),
    (r"/api/2\.0/feature-engineering/features", "features.list"),
    (r"/api/2\.0/feature-engineering/materialized-features", "features.materialized.list"),
    (r"/api/2\.0/feature-store/feature-tables/(?P<table>[^/]+)/features/(?P<feature>[^/]+)/lineage",
     "features.lineage"),
    (r"/api/2\.0/serving-endpoints", "serving.list"),
    (r"/api/2\.0/serving-endpoints/(?P<name>[^/]+)/metrics", "serving.metrics"),
    (r"/api/2\.0/serving-endpoints/(?P<name>[^/]+)", "serving.get"),
    (r"/api/2\.0/vector-search/endpoints", "vs.endpoints.list"),
    (r"/api/2\.0/vector-search/indexes", "vs.indexes.list"),
    (r"/api/2\.0/vector-search/indexes/(?P<name>[^/]+)", "vs.indexes.get"),
    (r"/api/2\.2/jobs/runs/get", "jobs.runs.get"),
    (r"/api/2\.2/jobs/runs/list", "jobs.runs.list"),
    # What MLflow's Unity Catalog artifact repository calls to read a version's files (mlflow
    # `unity_catalog_models_artifact_repo.py`, `databricks_sdk_models_artifact_repo.py`).
    (r"/api/2\.0/mlflow/unity-catalog/registered-models:is-databricks-sdk-models-artifact-repository-enabled",
     "mlflow.uc.sdk_repo_enabled"),
    (r"/api/2\.0/mlflow/unity-catalog/model-versions/emit-lineage", "mlflow.uc.emit_lineage"),
    (r"/api/2\.0/fs/directories(?P<path>/.+)", "files.directories"),
    (r"/api/2\.0/fs/files(?P<path>/.+)", "files.download"),
]
_COMPILED = [(re.compile(pattern + r"/?"), name) for pattern, name in _ROUTES]

# Page sizes per list route: (default, maximum) as documented in §1.
_PAGE_SIZES = {
    "uc.models.list": (100, 1000), "uc.models.list.schema": (100, 10000),
    "uc.versions.list": (100, 1000), "uc.tables.list": (1000, 1000), "features.list": (100, 1000),
    "uc.schemas.list": (1000, 1000), "features.materialized.list": (100, 1000),
    "vs.endpoints.list": (100, 100), "vs.indexes.list": (100, 100),
    "uc.catalogs.list": (1000, 1000), "uc.schemas.list": (1000, 1000), "jobs.runs.list": (20, 25),
}
# Fields of ServingEndpointDetailed that the list item (ServingEndpoint) does not carry.
_LIST_ENTITY_FIELDS = ("name", "entity_name", "entity_version", "external_model", "foundation_model")
_LIST_ENDPOINT_FIELDS = ("name", "id", "state", "creator", "creation_timestamp", "last_updated_timestamp",
                         "tags", "task", "ai_gateway", "budget_policy_id")


class DatabricksStub(UnityCatalogRoutes):
    """Start with `.start()` (or as a context manager); `.url` is the workspace host."""

    def __init__(self, workspace: dict[str, Any] | None = None, *, faults: Faults | None = None,
                 token: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.workspace = workspace or {}
        self.faults = faults or Faults()
        self.token = token            # when set, requests must carry `Authorization: Bearer <token>`
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []   # (route, path?query) in arrival order
        self._lock = threading.Lock()
        self._fault_state: Counter[str] = Counter()
        self._index()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                stub._handle(self)

            def do_HEAD(self) -> None:  # noqa: N802 (the Files API asks for directory metadata with HEAD)
                stub._handle(self)

            def do_POST(self) -> None:  # noqa: N802 (MLflow's best-effort lineage call)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "DatabricksStub":
        self._thread = threading.Thread(target=self._server.serve_forever, name="databricks-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "DatabricksStub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "DatabricksStub":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), **kwargs)

    @property
    def total_requests(self) -> int:
        return sum(self.counts.values())

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()

    def _index(self) -> None:
        ws = self.workspace
        self.models = {m["full_name"]: m for m in ws.get("registered_models", [])}
        self.tables = {t["full_name"]: t for t in ws.get("tables", [])}
        self.endpoints = {e["name"]: e for e in ws.get("serving_endpoints", [])}
        self.indexes = {i["name"]: i for i in ws.get("vector_indexes", [])}
        self.job_runs = {int(r["run_id"]): r for r in ws.get("job_runs", [])}
        self.downstreams: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for down, ups in ws.get("lineage", {}).items():
            for up in ups:
                if "table" in up:
                    self.downstreams.setdefault(up["table"], []).append((down, up))

    # -- request handling ------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path
        route, params = "unknown", {}
        for rx, name in _COMPILED:
            m = rx.fullmatch(path)
            if m:
                route, params = name, {k: unquote(v) for k, v in m.groupdict().items()}
                break
        with self._lock:
            self.counts[route] += 1
            self.log.append((route, h.path))
        try:
            if route != "host_metadata":
                self._check_auth(h)
                self._inject_faults(route)
            if route == "unknown":
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for 'GET {path}'")
            self._check_catalog(route, params, query)
            body = getattr(self, "_r_" + route.replace(".", "_"))(params, query)
        except ApiError as e:
            payload = json.dumps({"error_code": e.code, "message": e.message}).encode()
            self._send(h, e.status, payload, "application/json", e.headers)
            return
        if isinstance(body, bytes):
            self._send(h, 200, body, "application/octet-stream")
        elif h.command == "HEAD":
            self._send(h, 200, b"", "application/json")
        elif isinstance(body, str):
            self._send(h, 200, body.encode(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(h, 200, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        if h.command == "HEAD":
            payload = b""
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD" and payload:
            h.wfile.write(payload)

    def _check_auth(self, h: BaseHTTPRequestHandler) -> None:
        if self.token and h.headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")

    def _inject_faults(self, route: str) -> None:
        with self._lock:
            if self._fault_state[("429", route)] < self.faults.throttle.get(route, 0):
                self._fault_state[("429", route)] += 1
                raise ApiError(429, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please try again later.",
                               {"Retry-After": str(self.faults.retry_after)})
            if route in self.faults.failing:
                status = self.faults.failing[route]
                code = {403: "PERMISSION_DENIED", 404: "RESOURCE_DOES_NOT_EXIST"}.get(status, "INTERNAL_ERROR")
                raise ApiError(status, code, f"{route} failed (injected {status}).")
            if self._fault_state[("5xx", route)] < self.faults.flaky.get(route, 0):
                self._fault_state[("5xx", route)] += 1
                raise ApiError(self.faults.flaky_status, "INTERNAL_ERROR", "Internal server error (injected).")
        if route in self.faults.forbidden_routes:
            raise ApiError(403, "PERMISSION_DENIED", f"Caller lacks the permission for {route} (injected).")

    def _check_catalog(self, route: str, params: dict[str, str], query: dict[str, str]) -> None:
        if not self.faults.forbidden_catalogs:
            return
        names = [query.get("catalog_name"), params.get("full_name"), params.get("table"), query.get("table_name")]
        if route == "features.lineage":
            names.append(params.get("table"))
        for n in names:
            if n and n.split(".")[0] in self.faults.forbidden_catalogs:
                raise ApiError(403, "PERMISSION_DENIED",
                               f"User does not have USE CATALOG on Catalog '{n.split('.')[0]}'.")

    def _page(self, route: str, items: list[Any], key: str, query: dict[str, str],
              size_param: str = "max_results") -> dict[str, Any]:
        default, maximum = _PAGE_SIZES[route]
        raw = query.get(size_param)
        size = int(raw) if raw not in (None, "", "0") else default
        size = max(1, min(size, maximum))
        token = query.get("page_token") or ""
        if self.faults.empty_pages and not token.startswith("o:"):
            # An empty page that still carries a token (UC and MLflow both do this).
            start = int(token[2:]) if token.startswith("e:") else 0
            return {key: [], "next_page_token": f"o:{start}"}
        start = int(token[2:]) if token.startswith(("o:", "e:")) else 0
        chunk = items[start:start + size]
        out: dict[str, Any] = {key: chunk} if chunk else {}
        if start + size < len(items):
            out["next_page_token"] = ("e:" if self.faults.empty_pages else "o:") + str(start + size)
        return out

    # -- routes ----------------------------------------------------------------------------------
    def _r_host_metadata(self, params, query):
        ws_id = self.workspace.get("workspace_id")
        if not ws_id:
            raise ApiError(404, "NOT_FOUND", "not found")
        return {"oidc_endpoint": f"{self.url}/oidc", "workspace_id": str(ws_id)}

    def _r_scim_me(self, params, query):
        return self.workspace.get("current_user") or {"id": "1", "userName": "someone@example.com",
                                                      "displayName": "Someone", "active": True}


    def _r_serving_list(self, params, query):
        out = []
        for e in self.endpoints.values():
            item = {k: e[k] for k in _LIST_ENDPOINT_FIELDS if k in e}
            cfg = e.get("config") or {}
            if cfg:
                item["config"] = {"served_entities": [{k: se[k] for k in _LIST_ENTITY_FIELDS if k in se}
                                                      for se in cfg.get("served_entities", [])]}
            out.append(item)
        return {"endpoints": out}

    def _endpoint(self, name: str) -> dict[str, Any]:
        e = self.endpoints.get(name)
        if e is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Endpoint with name '{name}' does not exist.")
        return e

    def _r_serving_get(self, params, query):
        return self._endpoint(params["name"])

    def _r_serving_metrics(self, params, query):
        self._endpoint(params["name"])
        if params["name"] in self.faults.not_found_metrics:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", "Metrics are not available for this endpoint.")
        return self.workspace.get("metrics", {}).get(params["name"], "")

    def _r_vs_endpoints_list(self, params, query):
        return self._page("vs.endpoints.list", self.workspace.get("vector_search_endpoints", []), "endpoints", query)

    def _r_vs_indexes_list(self, params, query):
        ep = query.get("endpoint_name")
        if not ep:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "endpoint_name is required")
        mini = ("name", "endpoint_name", "index_type", "primary_key", "creator")
        items = [{k: i[k] for k in mini if k in i} for i in self.indexes.values() if i.get("endpoint_name") == ep]
        return self._page("vs.indexes.list", items, "vector_indexes", query)

    def _r_vs_indexes_get(self, params, query):
        i = self.indexes.get(params["name"])
        if i is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Index '{params['name']}' does not exist.")
        return i

    def _r_mlflow_uc_sdk_repo_enabled(self, params, query):
        return {"is_databricks_sdk_models_artifact_repository_enabled": bool(self.workspace.get("model_files"))}

    def _r_mlflow_uc_emit_lineage(self, params, query):
        return {}

    def _model_file(self, path: str, min_parts: int = 6) -> str | None:
        """`/Models/<catalog>/<schema>/<model>/<version>/<file>` → fixture `model_files["c.s.m/v/file"]`
        (a directory needs no file part: `min_parts=5`)."""
        parts = path.strip("/").split("/")
        if len(parts) < min_parts or parts[0] != "Models":
            return None
        return ".".join(parts[1:4]) + "/" + "/".join(parts[4:])

    def _r_files_directories(self, params, query):
        """Files API directory listing (GET) and existence check (HEAD) under
        /Models/<catalog>/<schema>/<model>/<version>[/<sub>]."""
        key = self._model_file(params["path"], min_parts=5)
        files = self.workspace.get("model_files", {})
        prefix = (key or "").rstrip("/") + "/"
        if key is None or not any(f.startswith(prefix) for f in files):
            raise ApiError(404, "NOT_FOUND", "The directory being accessed is not found.")
        base = params["path"].rstrip("/")
        entries: dict[str, dict[str, Any]] = {}
        for f in files:
            if f.startswith(prefix):
                head, _, rest = f[len(prefix):].partition("/")
                entries[head] = {"path": f"{base}/{head}", "name": head, "is_directory": bool(rest),
                                 **({} if rest else {"file_size": len(files[f]), "last_modified": 0})}
        return {"contents": [entries[k] for k in sorted(entries)]}

    def _r_files_download(self, params, query):
        key = self._model_file(params["path"])
        text = self.workspace.get("model_files", {}).get(key or "")
        if text is None:
            raise ApiError(404, "NOT_FOUND", "The file being accessed is not found.")
        return text.encode("utf-8")

    def _r_jobs_runs_get(self, params, query):
        try:
            run_id = int(query.get("run_id", ""))
        except ValueError:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "run_id must be an integer") from None
        r = self.job_runs.get(run_id)
        if r is None:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
        return r

    def _r_jobs_runs_list(self, params, query):
        runs = sorted(self.job_runs.values(), key=lambda r: -int(r.get("start_time") or 0))
        out = self._page("jobs.runs.list", runs, "runs", query, size_param="limit")
        out["has_more"] = "next_page_token" in out
        return out


# Upper bounds (ms) of the latency histogram's buckets in the stub's export.
LATENCY_BUCKETS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)


def prometheus_text(endpoint: str, entities: list[str], requests: int = 100, errors: int = 0,
                    latency_ms: float = 42.0, cpu: float = 12.5, memory: float = 30.0) -> str:
    """Prometheus exposition text as the metrics export serves it: every series is a reading of the
    last minute (see `health.series.databricks_series` for the sources). Request and error counts
    are gauges ("number of requests during the last minute"), and `request_latency_ms` is the
    histogram of that minute's latencies. `requests` is the first entity's per-minute count (the
    others get a half, a third…); latencies spread around `latency_ms`."""
    lines = []
    counts = [requests // (i + 1) for i in range(len(entities))]

    def labels(ent: str) -> str:
        return f'served_entity_name="{ent}",endpoint_name="{endpoint}"'

    for name, help_text, values in (
            ("request_count_total", "Number of requests during the last minute", counts),
            ("request_4xx_count_total", "Number of 4xx errors during the last minute", [0] * len(entities)),
            ("request_5xx_count_total", "Number of 5xx errors during the last minute", [errors] * len(entities)),
            ("cpu_usage_percentage", "Average CPU utilization across all replicas during the last minute",
             [cpu] * len(entities)),
            ("mem_usage_percentage", "Average memory utilization across all replicas during the last minute",
             [memory] * len(entities))):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{labels(ent)}}} {v}" for ent, v in zip(entities, values)]
    lines += ["# HELP request_latency_ms Request latency in milliseconds during the last minute",
              "# TYPE request_latency_ms histogram"]
    for ent, n in zip(entities, counts):
        # A third of the requests under half the typical latency, most under it, a tail above it.
        shares = {latency_ms * 0.5: 0.3, latency_ms: 0.8, latency_ms * 2.5: 0.97}
        for le in LATENCY_BUCKETS:
            below = max([share for bound, share in shares.items() if bound <= le], default=0.0)
            lines.append(f'request_latency_ms_bucket{{{labels(ent)},le="{le}"}} {int(n * below)}')
        lines.append(f'request_latency_ms_bucket{{{labels(ent)},le="+Inf"}} {n}')
        lines.append(f"request_latency_ms_sum{{{labels(ent)}}} {latency_ms * n}")
        lines.append(f"request_latency_ms_count{{{labels(ent)}}} {n}")
    return "\n".join(lines) + "\n"


def serve_file(path: str | Path, port: int = 0) -> DatabricksStub:
    """Start a stub for a fixture JSON file (the demo workspace) and return it running."""
    return DatabricksStub.from_file(path, port=port).start()
