"""`python -m collectors check`: a read-only first contact with each configured source.

Per source: the identity the platform sees (never a token), then one call per API area (the first
page only) with its outcome — reachable, how many items (`≥N` when more pages exist), or the
refusal and the role or privilege that grants the area (collectors/permissions.py). It reuses the
collectors' own clients and auth (DatabricksSource.w, AzureHttp, MlflowSource.client, the Azure
credential choice), with short timeouts and no long retry loops, and it writes nothing: no store,
no files, no registry calls beyond reads.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from collectors.azure_common import ARM_SCOPE, FABRIC_SCOPE, SEARCH_SCOPE, STORAGE_SCOPE, AzureHttp, AzureHttpError
from collectors.azure_common import default_credential, enforce_https_for
from collectors.azureml_source import ENDPOINT_NS, AzureMlSource, metrics_endpoint_for
from collectors.config import Config, SourceConfig
from collectors.databricks_source import DatabricksSource
from collectors.fabric_source import PRINCIPAL_TYPE_REFUSED, SCHEMA_ENABLED_ERROR, FabricSource
from collectors.mlflow_source import MlflowSource, _bearer_token
from collectors.permissions import areas, grant
from collectors.report import SourceReport, redact
from collectors.search_source import SearchSource

DEFAULT_TIMEOUT = 20.0   # seconds per HTTP call (and for the Databricks SDK's retry budget)
SAMPLE = 100             # items asked for per first page

OK, SKIPPED = "ok", "skipped"
DENIED, UNAUTHENTICATED, UNREACHABLE, NOT_FOUND, ERROR = "denied", "unauthenticated", "unreachable", "not_found", "error"
PASSING = (OK, SKIPPED)


@dataclass
class AreaCheck:
    area: str
    label: str
    status: str
    count: int | None = None
    more: bool = False          # the first page carried a next-page marker
    detail: str | None = None
    grant: str | None = None    # set when the status says a permission is missing

    @property
    def ok(self) -> bool:
        return self.status in PASSING

    @property
    def found(self) -> str:
        if self.count is None:
            return "—"
        return f"≥{self.count}" if self.more else str(self.count)


@dataclass
class SourceCheck:
    source: str
    kind: str
    platform: str
    identity: dict[str, str] = field(default_factory=dict)
    areas: list[AreaCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.areas)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "platform": self.platform, "ok": self.ok,
                "identity": self.identity, "seconds": round(self.seconds, 2),
                "areas": [{"area": a.area, "label": a.label, "status": a.status, "count": a.count, "more": a.more,
                           "found": a.found, "detail": a.detail, "grant": a.grant} for a in self.areas]}


class Skip(Exception):
    """An area that cannot be asked about (not configured, or nothing to ask about): not a failure."""


class Blocked(Exception):
    """A failure already classified: the identity probe failed in a way every area would repeat (no
    route, no credential), or an area summarises several refusals in one detail."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


Page = tuple[int | list, bool]   # (the first page or its length, more pages exist)


# -- outcome of a failed call ----------------------------------------------------------------------
def classify(e: BaseException) -> tuple[str, str]:
    """(status, one-line detail) for any client's exception; the detail is redacted."""
    status = _status_of(e)
    text = " ".join(str(e).split()) or type(e).__name__
    text = text.split(". Config: ")[0]   # the Databricks SDK appends its config and env var names
    if status == UNREACHABLE:   # the root cause, not three layers of connection-pool wrapping
        root = _ROOT_CAUSE.search(text)
        text = f"{_host_of(text)}{root.group(0) if root else text}"
    return status, redact(f"{type(e).__name__}: {text}")[:400]


_ROOT_CAUSE = re.compile(r"\[Errno -?\d+\] [^\"')]+|Read timed out|timed out|Timed out after [\d:.]+")


def _host_of(text: str) -> str:
    m = re.search(r"host='([^']+)', port=(\d+)", text)
    return f"{m.group(1)}:{m.group(2)}: " if m else ""


def _status_of(e: BaseException) -> str:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
    from databricks.sdk import errors as dbx
    from mlflow.exceptions import MlflowException
    import requests

    if isinstance(e, AzureHttpError):
        # Fabric's user-only lists refuse a service principal with a 400, but it is a refusal all the same.
        return DENIED if e.code == PRINCIPAL_TYPE_REFUSED else _by_http_status(e.status)
    if isinstance(e, ClientAuthenticationError):
        return UNAUTHENTICATED
    if isinstance(e, HttpResponseError):
        return _by_http_status(e.status_code or -1)
    if isinstance(e, ServiceRequestError):
        return UNREACHABLE
    if isinstance(e, dbx.PermissionDenied):
        return DENIED
    if isinstance(e, dbx.Unauthenticated):
        return UNAUTHENTICATED
    if isinstance(e, (dbx.NotFound, dbx.ResourceDoesNotExist)):
        return NOT_FOUND
    if isinstance(e, MlflowException):
        code = str(getattr(e, "error_code", ""))
        if code == "PERMISSION_DENIED":
            return DENIED
        if code == "UNAUTHENTICATED":
            return UNAUTHENTICATED
        if code in ("RESOURCE_DOES_NOT_EXIST", "ENDPOINT_NOT_FOUND"):
            return NOT_FOUND
        if re.search(r"Max retries exceeded|Connection refused|ConnectionError|timed out|Name or service not known",
                     str(e)):
            return UNREACHABLE
        return ERROR
    if isinstance(e, (requests.ConnectionError, requests.Timeout, TimeoutError, ConnectionError)):
        return UNREACHABLE
    if isinstance(e, FileNotFoundError):
        return NOT_FOUND
    return ERROR


def _by_http_status(status: int) -> str:
    return {0: UNREACHABLE, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND}.get(status, ERROR)


def token_identity(token: str) -> dict[str, str]:
    """Who an Entra ID access token names: its claims, decoded without verification (this is a
    display, not an authorization decision). The token itself is never returned."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {"token": "not a JWT: identity unknown"}
    out = {"user": claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username"),
           "app_id": claims.get("appid") or claims.get("azp"), "object_id": claims.get("oid"),
           "tenant": claims.get("tid")}
    if claims.get("idtyp") == "app" or (not out["user"] and out["app_id"]):
        out["kind"] = "service principal or managed identity"
    elif out["user"]:
        out["kind"] = "user"
    return {k: str(v) for k, v in out.items() if v}


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- probes --------------------------------------------------------------------------------------
class _Probe:
    """One source: `identity()` first, then one method `area_<key>()` per API area, in order."""

    def __init__(self, source: SourceConfig, timeout: float, sample: int):
        self.source, self.timeout, self.sample = source, timeout, sample
        self.report = SourceReport(source.name)   # the collectors' call counter; never persisted

    def identity(self) -> dict[str, str]:
        raise NotImplementedError

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def run(self) -> SourceCheck:
        started = time.monotonic()
        result = SourceCheck(self.source.name, self.source.kind, self.source.platform)
        blocked: Blocked | None = None
        try:
            result.identity = self.identity()
        except Blocked as b:
            blocked = b
            result.identity = {"error": b.detail}
        except Exception as e:
            status, detail = classify(e)
            result.identity = {"error": detail}
            if status in (UNREACHABLE, UNAUTHENTICATED):
                blocked = Blocked(status, detail)
        with contextlib.ExitStack() as stack:
            if blocked is None:
                try:
                    stack.enter_context(self.context())
                except Exception as e:   # e.g. the bearer token for an MLflow server cannot be fetched
                    blocked = Blocked(*classify(e))
            for area in areas(self.source.kind):
                if blocked is not None:
                    result.areas.append(AreaCheck(area.key, area.label, blocked.status, detail=blocked.detail))
                    continue
                result.areas.append(self._area(area.key, area.label))
        result.seconds = time.monotonic() - started
        return result

    def _area(self, key: str, label: str) -> AreaCheck:
        try:
            got = getattr(self, f"area_{key}")()
        except Skip as s:
            return AreaCheck(key, label, SKIPPED, detail=str(s))
        except Exception as e:
            status, detail = (e.status, e.detail) if isinstance(e, Blocked) else classify(e)
            needs = grant(self.source.kind, key, self.source.platform) if status in (DENIED, UNAUTHENTICATED) else None
            return AreaCheck(key, label, status, detail=detail, grant=needs)
        found, more, *note = got
        count = len(found) if isinstance(found, list) else found
        return AreaCheck(key, label, OK, count, more, detail=note[0] if note else None)


class _MlflowProbe(_Probe):
    def identity(self) -> dict[str, str]:
        uri = self.source.tracking_uri or ""
        parts = urlsplit(uri)
        out: dict[str, str] = {}
        if uri == "databricks" or parts.scheme == "databricks":
            profile = parts.netloc or os.environ.get("DATABRICKS_CONFIG_PROFILE")
            out["tracking"] = "databricks"
            out["auth"] = "Databricks unified auth" + (f", profile {profile}" if profile else "")
            # Ask the workspace who we are through the SDK with the check's budget first: MLflow's own
            # Databricks client retries a dead host for the SDK's default 300 s, out of reach here.
            who = _DatabricksProbe(replace(self.source, kind="databricks", options={"profile": parts.netloc}
                                           if parts.netloc else {}), self.timeout, self.sample).identity()
            out.update(host=who["host"], user=who["user"], kind=who["kind"])
        elif parts.scheme in ("http", "https"):
            out["tracking"] = parts.hostname or uri
            out["auth"] = self._http_auth()
        else:
            out["tracking"] = f"{parts.scheme or 'file'} store (local)"
            out["auth"] = "none (local store)"
        if self.source.registry_uri and self.source.registry_uri != uri:
            out["registry"] = urlsplit(self.source.registry_uri).hostname or self.source.registry_uri.split(":")[0]
        if self.source.token_scope:
            try:
                token = default_credential().get_token(self.source.token_scope).token
            except Exception as e:
                raise Blocked(UNAUTHENTICATED, classify(e)[1]) from None
            out.update(token_identity(token))
        return out

    def _http_auth(self) -> str:
        if self.source.token_scope:
            return f"Entra ID bearer token (DefaultAzureCredential, scope {self.source.token_scope})"
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            return "bearer token from MLFLOW_TRACKING_TOKEN"
        if os.environ.get("MLFLOW_TRACKING_USERNAME"):
            return f"basic auth as {os.environ['MLFLOW_TRACKING_USERNAME']}"
        return "none"

    def context(self) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        # One attempt per call, bounded: a check must not sit in MLflow's default retry loop.
        stack.enter_context(_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                                 MLFLOW_HTTP_REQUEST_TIMEOUT=str(max(1, int(self.timeout)))))
        stack.enter_context(_bearer_token(self.source.token_scope))
        return stack

    @property
    def client(self):
        if not hasattr(self, "_client"):
            self._client = MlflowSource(self.source, self.report).client
        return self._client

    def area_experiments(self) -> Page:
        page = self.client.search_experiments(max_results=self.sample)
        return len(page), bool(page.token)

    def area_registered_models(self) -> Page:
        page = self.client.search_registered_models(max_results=self.sample)
        return len(page), bool(page.token)


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class _DatabricksProbe(_Probe):
    def __init__(self, source: SourceConfig, timeout: float, sample: int):
        super().__init__(source, timeout, sample)
        budget = max(1, int(timeout))
        opts = {**source.options, "retry_timeout_seconds": budget, "http_timeout_seconds": budget}
        self.src = DatabricksSource(replace(source, options=opts), self.report)
        self.catalogs: list[str] = []
        self.schemas: list[tuple[str, str]] = []
        self.endpoints: list[str] | None = None

    def identity(self) -> dict[str, str]:
        try:
            w = self.src.w
        except Exception as e:   # no credentials found by unified auth
            raise Blocked(UNAUTHENTICATED, classify(e)[1]) from None
        try:
            me = w.current_user.me()
        except Exception as e:
            status, detail = classify(e)
            if status == UNREACHABLE:   # the SDK's timeout does not say where it was going
                raise Blocked(status, f"{w.config.host}: {detail}") from None
            raise
        out = {"host": str(w.config.host), "auth": str(w.config.auth_type or "unknown"),
               "user": str(me.user_name or "")}
        if me.display_name:
            out["display_name"] = me.display_name
        # A service principal's SCIM userName is its application id (a UUID); a user's is an email.
        out["kind"] = "service principal" if _UUID.match(me.user_name or "") else "user"
        return out

    def _page(self, path: str, key: str, **query: Any) -> tuple[list[dict[str, Any]], bool]:
        body = self.src.w.api_client.do("GET", path, query=query) or {}
        return list(body.get(key) or []), bool(body.get("next_page_token") or body.get("has_more"))

    def area_uc_catalogs(self) -> tuple[int, bool, str]:
        configured = list(self.src.opts.get("catalogs") or [])
        configured += [s.split(".")[0] for s in self.src.opts.get("schemas") or [] if s.split(".")[0] not in configured]
        if configured:
            self.catalogs, more = configured, False
        else:
            listed, more = self._page("/api/2.1/unity-catalog/catalogs", "catalogs", max_results=self.sample)
            self.catalogs = [c["name"] for c in listed if c.get("name")]
        found, refused = [], []
        # Configured catalogs are each asked (a 403 on one is what the check is for); else the first.
        for catalog in self.catalogs if configured else self.catalogs[:1]:
            try:
                listed, schemas_more = self._page("/api/2.1/unity-catalog/schemas", "schemas", catalog_name=catalog,
                                                  max_results=self.sample)
            except Exception as e:
                status, detail = classify(e)
                if status != DENIED:
                    raise
                refused.append(f"catalog {catalog} ({detail})")
                continue
            names = [s["name"] for s in listed if s.get("name") and s["name"] != "information_schema"]
            self.schemas += [(catalog, s) for s in names]
            found.append(f"{catalog}: {len(names)}{'+' if schemas_more else ''} schemas")
        if refused:   # name every refused catalog, not just the first
            raise Blocked(DENIED, "; ".join(["refused: " + ", ".join(refused), *found]))
        return len(self.catalogs), more, "; ".join(found) or None

    def _model_scopes(self) -> list[tuple[str, str]]:
        configured = [tuple(s.split(".", 1)) for s in self.src.opts.get("schemas") or []]
        if self.src.opts.get("catalogs"):
            configured += [s for s in self.schemas if s[0] in self.src.opts["catalogs"]]
        return list(dict.fromkeys(configured))  # type: ignore[arg-type]

    def area_uc_models(self) -> Page:
        scopes = self._model_scopes()
        if not scopes:
            if self.src.opts.get("catalogs"):
                raise Skip("no schema found in the configured catalogs")
            listed, more = self._page("/api/2.1/unity-catalog/models", "registered_models", max_results=self.sample)
            return len(listed), more
        total, more = 0, False
        for catalog, schema in scopes:   # the real service takes catalog and schema together or neither
            listed, m = self._page("/api/2.1/unity-catalog/models", "registered_models", catalog_name=catalog,
                                   schema_name=schema, max_results=self.sample)
            total, more = total + len(listed), more or m
        return total, more

    def area_serving_endpoints(self) -> Page:
        listed, more = self._page("/api/2.0/serving-endpoints", "endpoints")
        self.endpoints = [e["name"] for e in listed if e.get("name")]
        return len(listed), more

    def area_serving_metrics(self) -> tuple[int, bool, str]:
        if self.src.opts.get("metrics") is False:
            raise Skip("metrics = false in the config")
        if not self.endpoints:
            raise Skip("no serving endpoint to read metrics from" if self.endpoints is not None
                       else "the serving endpoint list was not readable")
        from prometheus_client.parser import text_string_to_metric_families

        name = self.endpoints[0]
        raw = self.src.w.serving_endpoints.export_metrics(name).contents.read()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        samples = sum(len(f.samples) for f in text_string_to_metric_families(text))
        return samples, False, f"samples from endpoint {name}"

    def area_table_lineage(self) -> tuple[int, bool, str]:
        if int(self.src.opts.get("lineage_depth", 3)) <= 0:
            raise Skip("lineage_depth = 0 in the config")
        table = self._some_table()
        if table is None:
            raise Skip("no table found to ask lineage for")
        body = self.src.w.api_client.do("GET", "/api/2.0/lineage-tracking/table-lineage",
                                        query={"table_name": table, "include_entity_lineage": True}) or {}
        ups, downs = len(body.get("upstreams") or []), len(body.get("downstreams") or [])
        return ups + downs, False, f"of {table}: {ups} upstream, {downs} downstream"

    def _some_table(self) -> str | None:
        schemas = [tuple(s.split(".", 1)) for s in self.src.opts.get("schemas") or []] or self.schemas
        for catalog, schema in schemas[:3]:
            listed, _ = self._page("/api/2.1/unity-catalog/tables", "tables", catalog_name=catalog,
                                   schema_name=schema, max_results=1, omit_columns=True, omit_properties=True)
            for t in listed:
                if t.get("full_name"):
                    return t["full_name"]
        return None

    def area_vector_search(self) -> tuple[int, bool, str | None]:
        listed, more = self._page("/api/2.0/vector-search/endpoints", "endpoints")
        names = [e["name"] for e in listed if e.get("name")]
        if not names:
            return 0, more, None
        indexes, imore = self._page("/api/2.0/vector-search/indexes", "vector_indexes", endpoint_name=names[0])
        return len(names), more, f"{len(indexes)}{'+' if imore else ''} indexes on {names[0]}"

    def area_jobs(self) -> Page:
        listed, more = self._page("/api/2.2/jobs/runs/list", "runs", limit=25)
        return len(listed), more


class _AzureProbe(_Probe):
    scope = ""           # the token scope of the service's API
    source_class: Any = None

    def __init__(self, source: SourceConfig, timeout: float, sample: int, credential: Any = None):
        super().__init__(source, timeout, sample)
        # The collector's own object: its endpoint options and its credential choice (loopback stub or
        # DefaultAzureCredential), with a short timeout and no waits between attempts: a check reports
        # a refusal, a throttle or a dead host, it does not sit it out.
        self.src = self.source_class(source, self.report, credential=credential)
        self.credential = self.src.http.credential
        self.http = AzureHttp(self.credential, self.report, timeout=timeout, sleep=lambda _s: None)
        self.src.http = self.http
        self.dead: dict[str, AzureHttpError] = {}   # host → its connection error: asked once, not per area

    def identity(self) -> dict[str, str]:
        try:
            token = self.credential.get_token(self.scope).token
        except Exception as e:
            raise Blocked(UNAUTHENTICATED, classify(e)[1]) from None
        return {"endpoint": urlsplit(self.endpoint).hostname or self.endpoint, **token_identity(token)}

    @property
    def endpoint(self) -> str:
        return self.src.base

    def _get(self, url: str, scope: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
        host = urlsplit(url).netloc
        if host in self.dead:
            raise self.dead[host]
        try:
            return self.http.get(url, scope or self.scope, params)
        except AzureHttpError as e:
            if e.status == 0:
                self.dead[host] = e
            raise

    def _first(self, url: str, scope: str | None = None, params: dict[str, Any] | None = None,
               key: str = "value") -> tuple[list[dict[str, Any]], bool]:
        body = self._get(url, scope, params)
        markers = ("nextLink", "@odata.nextLink", "continuationUri", "continuationToken", "next_page_token")
        return list(body.get(key) or []), any(body.get(k) for k in markers)

    def _azure_client_kwargs(self) -> dict[str, Any]:
        return {"retry_total": 0, "connection_timeout": self.timeout, "read_timeout": self.timeout}


class _AzureMlProbe(_AzureProbe):
    scope, source_class = ARM_SCOPE, AzureMlSource
    endpoints: list[dict[str, Any]] | None = None

    @property
    def endpoint(self) -> str:
        return self.src.arm

    def _arm(self, suffix: str) -> tuple[list[dict[str, Any]], bool]:
        return self._first(self.src._url(suffix), params={"api-version": self.src.api_version})

    def area_online_endpoints(self) -> Page:
        listed, more = self._arm("/onlineEndpoints")
        self.endpoints = listed
        return len(listed), more

    def _first_endpoint(self) -> dict[str, Any]:
        if not self.endpoints:
            raise Skip("no online endpoint to ask about" if self.endpoints is not None
                       else "the online endpoint list was not readable")
        return self.endpoints[0]

    def area_deployments(self) -> tuple[int, bool, str]:
        name = self._first_endpoint()["name"]
        listed, more = self._arm(f"/onlineEndpoints/{quote(name, safe='')}/deployments")
        return len(listed), more, f"of endpoint {name}"

    def area_models(self) -> Page:
        return self._arm("/models")

    def area_monitor_metrics(self) -> tuple[int, bool, str]:
        if not self.src.metrics_endpoint:
            raise Skip("metrics_endpoint not configured")
        endpoint = self._first_endpoint()
        from azure.monitor.querymetrics import MetricAggregationType, MetricsClient

        # The batch endpoint must be the endpoint's own region, as the collector asks it.
        region = (endpoint.get("location") or "").lower().replace(" ", "")
        url = metrics_endpoint_for(self.src.metrics_endpoint, region)
        client = MetricsClient(url, self.credential, **self._azure_client_kwargs())
        end = datetime.now(timezone.utc).replace(second=0, microsecond=0)
        results = client.query_resources(resource_ids=[endpoint["id"]], metric_namespace=ENDPOINT_NS,
                                         metric_names=["RequestsPerMinute"], timespan=(end - timedelta(hours=1), end),
                                         granularity=timedelta(minutes=5), aggregations=[MetricAggregationType.AVERAGE],
                                         enforce_https=enforce_https_for(url))
        series = sum(len(m.timeseries) for r in results for m in r.metrics)
        return series, False, f"RequestsPerMinute series of {endpoint['name']} (last hour)"

    def area_log_analytics(self) -> Page:
        if not self.src.log_workspace:
            raise Skip("log_analytics_workspace_id not configured")
        from azure.monitor.query import LogsQueryClient, LogsQueryStatus

        client = LogsQueryClient(self.credential, endpoint=self.src.logs_endpoint, **self._azure_client_kwargs())
        result = client.query_workspace(self.src.log_workspace, f"AmlOnlineEndpointTrafficLog | take {self.sample}",
                                        timespan=timedelta(days=1),
                                        enforce_https=enforce_https_for(self.src.logs_endpoint))
        tables = result.tables if result.status == LogsQueryStatus.SUCCESS else result.partial_data
        rows = sum(len(t.rows) for t in tables)
        return min(rows, self.sample), rows >= self.sample


class _FabricProbe(_AzureProbe):
    scope, source_class = FABRIC_SCOPE, FabricSource
    lakehouses: list[dict[str, Any]] | None = None

    def _ws(self, suffix: str, **params: Any) -> tuple[list[dict[str, Any]], bool]:
        return self._first(self.src._ws_url(suffix), params=params or None)

    def area_items(self) -> Page:
        return self._ws("/items")

    def area_ml_models(self) -> Page:
        return self._ws("/mlModels")

    def area_ml_experiments(self) -> Page:
        return self._ws("/mlExperiments")

    def area_lakehouses(self) -> Page:
        listed, more = self._ws("/lakehouses")
        self.lakehouses = listed
        return len(listed), more

    def _lakehouse(self) -> dict[str, Any]:
        if not self.lakehouses:
            raise Skip("no lakehouse to ask about" if self.lakehouses is not None
                       else "the lakehouse list was not readable")
        return self.lakehouses[0]

    def area_tables(self) -> tuple[int, bool, str]:
        lh = self._lakehouse()
        label = lh.get("displayName") or lh["id"]
        if not (lh.get("properties") or {}).get("defaultSchema"):
            try:
                listed, more = self._first(self.src._ws_url(f"/lakehouses/{quote(lh['id'], safe='')}/tables"),
                                           params={"maxResults": min(self.sample, 100)}, key="data")
                return len(listed), more, f"in lakehouse {label}"
            except AzureHttpError as e:
                if not (e.status == 400 and e.code == SCHEMA_ENABLED_ERROR):
                    raise
        # Schema-enabled lakehouse: the OneLake table API (storage scope), as the collector reads it.
        base = (f"{self.src.onelake}/delta/{quote(self.src.ws, safe='')}/{quote(lh['id'], safe='')}"
                f"/api/2.1/unity-catalog")
        schemas, _ = self._first(f"{base}/schemas", STORAGE_SCOPE, {"catalog_name": lh["id"]}, key="schemas")
        if not schemas:
            return 0, False, f"in lakehouse {label} (no schema)"
        schema = schemas[0]["name"]
        listed, more = self._first(f"{base}/tables", STORAGE_SCOPE, {"catalog_name": lh["id"], "schema_name": schema},
                                   key="tables")
        return len(listed), more, f"in {label}.{schema} (OneLake table API)"

    def area_shortcuts(self) -> tuple[int, bool, str]:
        lh = self._lakehouse()
        listed, more = self._ws(f"/items/{quote(lh['id'], safe='')}/shortcuts")
        return len(listed), more, f"in lakehouse {lh.get('displayName') or lh['id']}"


class _SearchProbe(_AzureProbe):
    scope, source_class = SEARCH_SCOPE, SearchSource
    indexes: list[str] | None = None

    def _list(self, path: str, **extra: str) -> tuple[list[dict[str, Any]], bool]:
        return self._first(f"{self.src.base}{path}", params={**self.src.params, **extra})

    def area_indexes(self) -> Page:
        listed, more = self._list("/indexes", **{"$select": "name"})
        names = [i["name"] for i in listed if i.get("name")]
        # Configured indexes first: those are the ones a snapshot reads statistics for.
        self.indexes = sorted(names, key=lambda n: n not in self.src.only)
        return len(names), more

    def area_indexers(self) -> Page:
        return self._list("/indexers", **{"$select": "name"})

    def area_stats(self) -> tuple[int, bool, str]:
        if not self.indexes:
            raise Skip("no index to read statistics of" if self.indexes is not None
                       else "the index list was not readable")
        name = self.indexes[0]
        stats = self._get(f"{self.src.base}/indexes('{quote(name, safe='')}')/search.stats", params=self.src.params)
        return int(stats.get("documentCount") or 0), False, f"documents in index {name}"


_PROBES: dict[str, Callable[..., _Probe]] = {
    "mlflow": _MlflowProbe, "databricks": _DatabricksProbe,
    "azureml": _AzureMlProbe, "fabric": _FabricProbe, "azuresearch": _SearchProbe,
}


def check_source(source: SourceConfig, *, timeout: float = DEFAULT_TIMEOUT, sample: int = SAMPLE,
                 credential: Any = None) -> SourceCheck:
    """Probe one source; `credential` overrides the Azure credential (tests)."""
    kwargs = {"credential": credential} if source.kind in ("azureml", "fabric", "azuresearch") else {}
    try:
        probe = _PROBES[source.kind](source, timeout, sample, **kwargs)
    except Exception as e:   # building the client failed (e.g. no Azure credential can be created)
        status, detail = classify(e)
        return SourceCheck(source.name, source.kind, source.platform, {"error": detail},
                           [AreaCheck(a.key, a.label, status, detail=detail) for a in areas(source.kind)])
    return probe.run()


def check_all(config: Config, names: list[str] | None = None, *, timeout: float = DEFAULT_TIMEOUT,
              sample: int = SAMPLE, progress: Callable[[str], None] | None = None,
              credential: Any = None) -> list[SourceCheck]:
    sources = [config.source(n) for n in names] if names else list(config.sources)
    out = []
    for source in sources:
        if progress:
            progress(source.name)
        out.append(check_source(source, timeout=timeout, sample=sample, credential=credential))
    return out
