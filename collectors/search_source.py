"""Azure AI Search source (`kind = "azuresearch"`), the Vector Search replacement (seed 000 §6):
indexes with their vector fields (dimensions, vector profile → algorithm and metric), document
counts and sizes, and the indexers feeding them with their data sources — so the checklist can
tell which Databricks vector indexes have a replacement.

Plain REST over the data-plane API (api-version 2024-07-01: `GET /indexes`,
`/indexes('name')/search.stats`, `/indexers`, `/indexers('name')/search.status`, `/datasources`)
with the shared paging/retry client, rather than azure-search-documents 12.0.0 (installable here,
~350 kB): five GETs do not justify a second HTTP stack, and the raw JSON keeps every field
(`vectorSearchProfile`, `dimensions`) whatever the SDK version models. Auth: Entra ID only
(scope https://search.azure.com/.default); admin/query API keys are never configured here.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from collectors.azure_common import SEARCH_SCOPE, AzureHttp, AzureHttpError
from collectors.azureml_source import credential_for
from collectors.config import SourceConfig
from collectors.report import SourceReport
from store.db import Store, StoreMissing
from store.entities import EntityBatch, Scope

DEFAULT_API_VERSION = "2024-07-01"
# Every call here reads object definitions or statistics on the data plane. Microsoft's built-in
# roles for that (search-security-rbac): "Reader" on the search service — "read access across the
# entire service, including ... content metrics ... and the object definitions of data plane
# resources (indexes, indexers, and so on)" — or the broader "Search Service Contributor".
# "Search Index Data Reader" only queries documents and does not let a caller list indexes.
READ_ROLE = "Reader"
ROLE_HINT = (f"the identity needs the built-in role '{READ_ROLE}' (or 'Search Service Contributor') on the "
             "search service, and the service must have role-based access enabled "
             "('Search Index Data Reader' only queries documents)")


class SearchAccessDenied(RuntimeError):
    """A 401/403 from the search service, with the role that grants the call."""


def explain(e: AzureHttpError) -> str:
    return f"{e} — {ROLE_HINT}" if e.status in (401, 403) else str(e)


def vector_fields(index: dict[str, Any]) -> list[dict[str, Any]]:
    """Every vector field (nested ones as `parent/child`) with its profile's algorithm."""
    vs = index.get("vectorSearch") or {}
    algorithms = {a.get("name"): a for a in vs.get("algorithms") or []}
    profiles = {p.get("name"): p for p in vs.get("profiles") or []}
    out = []

    def walk(fields: list[dict[str, Any]], prefix: str) -> None:
        for f in fields or []:
            name = f"{prefix}{f.get('name')}"
            if f.get("dimensions") or f.get("vectorSearchProfile"):
                profile = profiles.get(f.get("vectorSearchProfile")) or {}
                algo = algorithms.get(profile.get("algorithm")) or {}
                params = algo.get("hnswParameters") or algo.get("exhaustiveKnnParameters") or {}
                out.append({"name": name, "type": f.get("type"), "dimensions": f.get("dimensions"),
                            "profile": f.get("vectorSearchProfile"), "algorithm": profile.get("algorithm"),
                            "algorithm_kind": algo.get("kind"), "metric": params.get("metric"),
                            "vectorizer": profile.get("vectorizer")})
            if f.get("fields"):
                walk(f["fields"], f"{name}/")

    walk(index.get("fields") or [], "")
    return out


class SearchSource:
    def __init__(self, config: SourceConfig, report: SourceReport,
                 progress: Callable[[str], None] | None = None, *, credential: Any = None):
        self.config = config
        self.report = report
        self.progress = progress or (lambda _msg: None)
        self.base = str(config.options["search_endpoint"]).rstrip("/")
        self.params = {"api-version": config.options.get("api_version", DEFAULT_API_VERSION)}
        self.only = set(config.options.get("indexes") or [])
        self.http = AzureHttp(credential or credential_for([self.base]), report)
        self.known_indexers: dict[str, Any] = {}

    @staticmethod
    def previous_state(store: Store, source: str) -> None:
        return None

    def read_store_context(self, store: Store) -> None:
        """The indexers last recorded per index: kept when this pass cannot read the indexer list."""
        try:
            with store.reader() as con:
                rows = con.execute("""SELECT index_name, indexers FROM search_indexes
                                      WHERE source = ? AND valid_to IS NULL""", [self.config.name]).fetchall()
        except StoreMissing:
            return
        self.known_indexers = {name: json.loads(raw) if isinstance(raw, str) else raw for name, raw in rows}

    def _get(self, path: str) -> dict[str, Any]:
        return self.http.get(f"{self.base}{path}", SEARCH_SCOPE, self.params)

    def collect(self, previous: None, full: bool) -> tuple[str, dict[str, EntityBatch], dict[str, Any]]:
        self.progress("search indexes")
        try:
            indexes = self.http.items(f"{self.base}/indexes", SEARCH_SCOPE, params=self.params)
        except AzureHttpError as e:
            if e.status in (401, 403):
                raise SearchAccessDenied(explain(e)) from None
            raise
        if self.only:
            indexes = [i for i in indexes if i.get("name") in self.only]
        feeding, indexer_error = self._indexers()
        rows = []
        for index in indexes:
            name = index.get("name")
            row: dict[str, Any] = {
                "index_name": name,
                "key_field": next((f.get("name") for f in index.get("fields") or [] if f.get("key")), None),
                "fields": [{"name": f.get("name"), "type": f.get("type")} for f in index.get("fields") or []],
                "vector_fields": vector_fields(index), "indexers": feeding.get(name, []),
                "read_status": "ok", "detail": None,
            }
            if indexer_error:
                # Unknown is not "none": keep the last known indexers, and say the row is partial.
                row.update(indexers=self.known_indexers.get(name, []), read_status="partial",
                           detail=f"indexers not read, last known kept: {indexer_error}"[:500])
            try:
                stats = self._get(f"/indexes('{quote(name, safe='')}')/search.stats")
                row.update(document_count=stats.get("documentCount"), storage_size=stats.get("storageSize"),
                           vector_index_size=stats.get("vectorIndexSize"))
            except AzureHttpError as e:
                self.report.warn(f"index {name}: statistics not read ({explain(e)})")
                detail = "; ".join(filter(None, [row["detail"], str(e)]))
                row.update(read_status="partial", detail=detail[:500])
            rows.append(row)
        self.report.count("search_indexes", len(rows))
        # With an `indexes` filter the pass is complete only for the indexes it names.
        scope = Scope.partitions("index_name", sorted(self.only)) if self.only else Scope.ALL
        return "full", {"search_indexes": EntityBatch(rows, scope)}, {}

    def _indexers(self) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
        """index name → the indexers writing into it, with data source type and container; plus the
        error when the indexer or data source list could not be read."""
        try:
            indexers = self._get("/indexers").get("value") or []
            sources = {d.get("name"): d for d in self._get("/datasources").get("value") or []}
        except AzureHttpError as e:   # a reader without indexer rights still gets the indexes
            self.report.warn(f"indexers/data sources not read, last known kept ({explain(e)})")
            return {}, str(e)
        out: dict[str, list[dict[str, Any]]] = {}
        for ixr in indexers:
            ds = sources.get(ixr.get("dataSourceName")) or {}
            status = None
            try:
                st = self._get(f"/indexers('{quote(ixr.get('name') or '', safe='')}')/search.status")
                status = ((st.get("lastResult") or {}).get("status")) or st.get("status")
            except AzureHttpError as e:
                self.report.warn(f"indexer {ixr.get('name')}: status not read ({explain(e)})")
            out.setdefault(ixr.get("targetIndexName"), []).append({
                "name": ixr.get("name"), "data_source": ixr.get("dataSourceName"), "data_source_type": ds.get("type"),
                "container": (ds.get("container") or {}).get("name"), "status": status})
        return out, None
