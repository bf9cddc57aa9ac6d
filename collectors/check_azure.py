"""The check's Azure probes: Azure ML (ARM, Azure Monitor, Log Analytics), Fabric and AI Search,
each with the Entra ID identity its token names."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from collectors.azure_common import (
    ARM_SCOPE, FABRIC_SCOPE, SEARCH_SCOPE, STORAGE_SCOPE, AzureHttp, AzureHttpError, enforce_https_for)
from collectors.azureml_source import ENDPOINT_NS, AzureMlSource, metrics_endpoint_for
from collectors.check_base import UNAUTHENTICATED, Blocked, Page, Probe, Skip, classify, token_identity
from collectors.config import SourceConfig
from collectors.fabric_source import SCHEMA_ENABLED_ERROR, FabricSource
from collectors.search_source import SearchSource


class AzureProbe(Probe):
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


class AzureMlProbe(AzureProbe):
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


class FabricProbe(AzureProbe):
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


class SearchProbe(AzureProbe):
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
