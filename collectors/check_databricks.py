"""The check's Databricks probe: the workspace identity, then one call per API area the
Databricks collector reads (Unity Catalog, serving, lineage, vector search, jobs)."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from collectors.check_base import DENIED, UNAUTHENTICATED, UNREACHABLE, Blocked, Page, Probe, Skip, classify
from collectors.config import SourceConfig
from collectors.databricks_source import DatabricksSource

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class DatabricksProbe(Probe):
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
