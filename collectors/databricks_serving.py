"""Model Serving (endpoints, served entities, Prometheus metrics export) and Vector Search."""
from __future__ import annotations

import json
from typing import Any

from collectors.databricks_client import DatabricksClient, ReadResult, _enum, _ms, _short
from store.entities import EntityBatch, Scope


class ServingArea(DatabricksClient):
    # -- Model Serving -------------------------------------------------------------------------
    def _serving(self) -> dict[str, EntityBatch]:
        from databricks.sdk.errors import PermissionDenied

        self.progress("serving endpoints")
        try:
            listed = self._retry(lambda: list(self.w.serving_endpoints.list()))   # one call, no paging
        except PermissionDenied as e:
            self.report.warn(f"serving endpoints: permission denied (403), not collected: {_short(e)}")
            return {}
        listed = [e for e in listed if getattr(e, "name", None)]
        self.report.count("serving_endpoints", len(listed))
        want_metrics = self.opts.get("metrics", True)

        def detail(e) -> ReadResult:
            got = self._read(f"serving endpoint {e.name}", lambda: self.w.serving_endpoints.get(e.name))
            metrics = (self._read(f"serving endpoint {e.name} metrics",
                                  lambda: self.w.serving_endpoints.export_metrics(e.name).contents.read())
                       if want_metrics else None)
            return ReadResult("ok", (e, got, metrics))

        endpoints, entities, samples = [], [], []
        no_detail: set[str] = set()
        known = self.context.current.get(("served_entities", "endpoint"), set())
        for res in self._read_many(listed, detail):
            e, got, metrics = res.value
            endpoints.append(self._endpoint_row(e, got))
            if not got.ok:
                no_detail.add(e.name)
            # Without the details the list item has no traffic, sizes or states: a known endpoint
            # keeps its last good served entities rather than losing them to a summary.
            if got.ok or e.name not in known:
                entities.extend(self._entity_rows(e, got))
            if metrics is not None and metrics.ok:
                samples.extend(self._metric_rows(e.name, metrics.value))
        self.report.count("endpoint_metric_samples", len(samples))
        names = [e.name for e in listed]
        return {"serving_endpoints": EntityBatch(endpoints, Scope.ALL),
                "served_entities": EntityBatch(entities, self._scope(
                    "served_entities", "endpoint", names, no_detail.__contains__ if no_detail else None)),
                # Samples are append-only: every pass adds its own, nothing is closed.
                "endpoint_metrics": EntityBatch(samples, Scope.NONE)}

    def _endpoint_row(self, e, got: ReadResult) -> dict[str, Any]:
        d = got.value if got.ok else e
        state = getattr(d, "state", None)
        cfg = getattr(d, "config", None)
        pending = getattr(d, "pending_config", None) if got.ok else None
        inference = None
        gw = getattr(getattr(d, "ai_gateway", None), "inference_table_config", None)
        capture = getattr(cfg, "auto_capture_config", None) if got.ok else None
        for kind, c in (("ai_gateway", gw), ("auto_capture", capture)):
            if c is not None and (c.catalog_name or c.table_name_prefix):
                inference = {"kind": kind, "catalog_name": c.catalog_name, "schema_name": c.schema_name,
                             "table_name_prefix": c.table_name_prefix, "enabled": c.enabled}
                break
        return {
            "name": e.name, "endpoint_id": getattr(d, "id", None),
            "ready": _enum(getattr(state, "ready", None)), "config_update": _enum(getattr(state, "config_update", None)),
            "config_version": _ms(getattr(cfg, "config_version", None)) if got.ok else None,
            "pending_config_version": _ms(getattr(pending, "config_version", None)),
            "creator": getattr(d, "creator", None), "creation_timestamp": _ms(getattr(d, "creation_timestamp", None)),
            "last_updated_timestamp": _ms(getattr(d, "last_updated_timestamp", None)), "task": getattr(d, "task", None),
            "tags": {t.key: t.value for t in (getattr(d, "tags", None) or []) if t.key},
            "inference_table": inference, "endpoint_url": getattr(d, "endpoint_url", None) if got.ok else None,
            "read_status": got.status, "detail": got.detail,
        }

    def _entity_rows(self, e, got: ReadResult) -> list[dict[str, Any]]:
        rows = []
        configs = [("active", getattr(got.value if got.ok else e, "config", None))]
        if got.ok:
            configs.append(("pending", getattr(got.value, "pending_config", None)))
        for label, cfg in configs:
            if cfg is None:
                continue
            traffic = {}
            for r in (getattr(getattr(cfg, "traffic_config", None), "routes", None) or []):
                key = r.served_entity_name or r.served_model_name
                if key:
                    traffic[key] = r.traffic_percentage
            has_routes = bool(traffic)
            for se in (getattr(cfg, "served_entities", None) or []):
                if not se.name:
                    continue
                st = getattr(se, "state", None)
                external = getattr(se, "external_model", None) or getattr(se, "foundation_model", None)
                rows.append({
                    "endpoint": e.name, "config": label, "served_entity_name": se.name,
                    "entity_name": se.entity_name or getattr(external, "name", None),
                    "entity_version": str(se.entity_version) if se.entity_version is not None else None,
                    "workload_size": getattr(se, "workload_size", None), "workload_type": _enum(getattr(se, "workload_type", None)),
                    "scale_to_zero_enabled": getattr(se, "scale_to_zero_enabled", None),
                    "deployment_state": _enum(getattr(st, "deployment", None)),
                    "deployment_state_message": getattr(st, "deployment_state_message", None),
                    # No routes at all on a detailed config with one entity means it takes everything.
                    "traffic_pct": traffic.get(se.name) if has_routes else None,
                    "external": external is not None and not se.entity_name,
                })
        return rows

    def _metric_rows(self, endpoint: str, payload: bytes | str) -> list[dict[str, Any]]:
        from prometheus_client.parser import text_string_to_metric_families

        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
        rows = []
        try:
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    rows.append({"endpoint": endpoint, "metric": s.name,
                                 "labels": json.dumps(dict(sorted(s.labels.items())), ensure_ascii=False),
                                 "sampled_at": int(s.timestamp * 1000) if s.timestamp else self.now_ms,
                                 "value": float(s.value)})
        except Exception as e:  # a malformed export is a gap, not a failed pass
            self.report.warn(f"serving endpoint {endpoint} metrics: not Prometheus text ({type(e).__name__}: {_short(e)})")
        return rows

    # -- Vector Search -------------------------------------------------------------------------
    def _vector_search(self) -> dict[str, EntityBatch]:
        from databricks.sdk.errors import NotFound, PermissionDenied

        self.progress("vector search")
        try:
            endpoints = self._retry(lambda: list(self.w.vector_search_endpoints.list_endpoints()))
        except (PermissionDenied, NotFound) as e:   # workspace without vector search, or no access
            self.report.warn(f"vector search endpoints: not collected ({type(e).__name__}: {_short(e)})")
            return {}
        ep_rows, minis, unlisted = [], [], set()
        for ep in endpoints:
            if not ep.name:
                continue
            st = getattr(ep, "endpoint_status", None)
            ep_rows.append({"name": ep.name, "endpoint_id": ep.id, "endpoint_type": _enum(ep.endpoint_type),
                            "endpoint_status": _enum(getattr(st, "state", None)), "num_indexes": ep.num_indexes,
                            "creator": ep.creator, "creation_timestamp": _ms(ep.creation_timestamp),
                            "last_updated_timestamp": _ms(ep.last_updated_timestamp)})
            res = self._read(f"vector search endpoint {ep.name} indexes",
                             lambda n=ep.name: list(self.w.vector_search_indexes.list_indexes(n)))
            if not res.ok:
                unlisted.add(ep.name)
            minis.extend(res.value or [])
        minis = [i for i in minis if i.name]
        details = self._read_many(minis, lambda i: self._read(f"vector index {i.name}",
                                                              lambda: self.w.vector_search_indexes.get_index(i.name)))
        rows = []
        for mini, res in zip(minis, details):
            idx = res.value if res.ok else mini
            spec = getattr(idx, "delta_sync_index_spec", None) if res.ok else None
            status = getattr(idx, "status", None) if res.ok else None
            columns = [{"name": c.name, "embedding_model_endpoint_name": c.embedding_model_endpoint_name}
                       for c in (getattr(spec, "embedding_source_columns", None) or [])]
            source_table = getattr(spec, "source_table", None)
            self._want(source_table, "vector_index")
            rows.append({"name": mini.name, "endpoint_name": mini.endpoint_name, "index_type": _enum(idx.index_type),
                         "primary_key": idx.primary_key, "source_table": source_table,
                         "embedding_source_columns": columns,
                         "embedding_model_endpoints": sorted({c["embedding_model_endpoint_name"] for c in columns
                                                              if c["embedding_model_endpoint_name"]}),
                         "pipeline_id": getattr(spec, "pipeline_id", None),
                         "ready": getattr(status, "ready", None), "indexed_row_count": getattr(status, "indexed_row_count", None),
                         "status_message": getattr(status, "message", None), "creator": idx.creator,
                         "read_status": res.status, "detail": res.detail})
        self.report.count("vector_indexes", len(rows))
        return {"vector_search_endpoints": EntityBatch(ep_rows, Scope.ALL),
                "vector_indexes": EntityBatch(rows, self._scope("vector_indexes", "endpoint_name",
                                                                [r["name"] for r in ep_rows],
                                                                unlisted.__contains__ if unlisted else None))}
