"""Features (Feature Engineering and classic), UC tables and their upstream table lineage."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from collectors.databricks_client import DEFAULT_LINEAGE_DEPTH, DatabricksClient, ReadResult, _enum, _ms, _three_part
from store.entities import EntityBatch


class DataArea(DatabricksClient):
    # -- Features ------------------------------------------------------------------------------
    def _feature_schemas(self) -> list[tuple[str, str]]:
        """Configured schemas, plus every schema holding a table a run, model or index reads."""
        out = {tuple(s.split(".", 1)) for s in (self.opts.get("schemas") or [])}
        out |= {tuple(t.split(".")[:2]) for t in self._table_reasons}
        return sorted(out)  # type: ignore[arg-type]

    def _features(self) -> None:
        """Declarative features (Feature Engineering API) of the schemas that matter. Their rows and
        lineage are assembled with the classic feature tables' in `_feature_batches`, after the
        tables are read."""
        self.progress("features")
        features = []
        failed_schemas: set[str] = set()
        for catalog, schema in self._feature_schemas():
            res = self._read(f"features in {catalog}.{schema}",
                             lambda c=catalog, s=schema: list(self.w.feature_engineering.list_features(c, s, page_size=1000)),
                             warn_missing=False)
            if res.status == "not_found":
                continue   # schema gone, or a workspace without the Feature Engineering API
            if not res.ok:
                failed_schemas.add(f"{catalog}.{schema}")
            features.extend(res.value or [])
        rows = []
        for f in features:
            if not f.full_name:
                continue
            src = getattr(getattr(f, "source", None), "delta_table_source", None)
            source_table = getattr(src, "full_name", None)
            self._want(source_table, "feature_source")
            name = f.name or f.full_name.split(".")[-1]
            rows.append({"full_name": f.full_name, "catalog_name": f.catalog_name, "schema_name": f.schema_name,
                         "name": name, "source_table": source_table,
                         "entity_columns": list(getattr(src, "entity_columns", None) or []),
                         "timeseries_column": getattr(src, "timeseries_column", None)
                                              or getattr(getattr(f, "timeseries_column", None), "name", None),
                         "inputs": list(f.inputs or []),
                         "function": f.function.as_dict() if f.function is not None else None,
                         "time_window": f.time_window.as_dict() if f.time_window is not None else None,
                         "description": f.description, "created_by": getattr(f, "created_by", None)})
        self._declarative = (rows, failed_schemas)

    def _classic_features(self) -> list[dict[str, Any]]:
        """Classic UC feature tables among the tables read: a feature table is a Delta table with a
        primary key constraint, and each of its other columns (not a key, not the timeseries
        column) is a feature."""
        rows = []
        for name, t in sorted(self._table_infos.items()):
            pk = next((c.primary_key_constraint for c in (getattr(t, "table_constraints", None) or [])
                       if c.primary_key_constraint is not None), None)
            if pk is None:
                continue
            keys = list(pk.child_columns or [])
            timeseries = list(getattr(pk, "timeseries_columns", None) or [])
            for col in getattr(t, "columns", None) or []:
                if not col.name or col.name in keys or col.name in timeseries:
                    continue
                rows.append({"full_name": f"{name}.{col.name}", "catalog_name": t.catalog_name,
                             "schema_name": t.schema_name, "name": col.name, "source_table": name,
                             "entity_columns": keys, "timeseries_column": timeseries[0] if timeseries else None,
                             "inputs": [col.name], "function": None, "time_window": None,
                             "description": col.comment, "created_by": None, "_feature_table": name})
        return rows

    def _feature_lineage_calls(self, declarative: list[dict[str, Any]],
                               classic: list[dict[str, Any]]) -> tuple[list[tuple[str, str, str, str | None]], set[str]]:
        """(feature, feature table, feature name, source table) per lineage call, and the features
        whose materializations could not be listed. `get_feature_lineage` takes a *feature table's*
        full name: a classic feature's own table, or the table a declarative feature is
        materialized into (`list_materialized_features`); a feature never materialized has none."""
        calls = [(r["full_name"], r["_feature_table"], r["name"], r["source_table"]) for r in classic]
        unread: set[str] = set()
        results = self._read_many(declarative, lambda r: self._read(
            f"feature {r['full_name']} materializations",
            lambda: list(self.w.feature_engineering.list_materialized_features(feature_name=r["full_name"])),
            warn_missing=False))
        for r, res in zip(declarative, results):
            if res.status not in ("ok", "not_found"):
                unread.add(r["full_name"])
            for mf in res.value or []:
                if getattr(mf, "table_name", None):
                    calls.append((r["full_name"], mf.table_name, r["name"], r["source_table"]))
        return list(dict.fromkeys(calls)), unread

    def _feature_batches(self) -> dict[str, EntityBatch]:
        declarative, failed_schemas = self._declarative
        classic = self._classic_features()
        calls, no_lineage = self._feature_lineage_calls(declarative, classic)
        links = []
        for (feature, table, name, source), res in zip(calls, self._read_many(calls, lambda c: self._read(
                f"feature {c[0]} lineage", lambda: self.w.materialized_features.get_feature_lineage(c[1], c[2]),
                warn_missing=False))):
            if res.status not in ("ok", "not_found"):   # a 404 is "no lineage"; anything else is unknown
                no_lineage.add(feature)
            if not res.ok or res.value is None:
                continue
            lin = res.value
            for m in lin.models or []:
                if m.name:
                    links.append({"feature": feature, "target_kind": "model", "target_name": m.name,
                                  "target_version": str(m.version) if m.version is not None else "",
                                  "source_table": source})
            for s in lin.feature_specs or []:
                if s.name:
                    links.append({"feature": feature, "target_kind": "feature_spec", "target_name": s.name,
                                  "target_version": "", "source_table": source})
            for o in lin.online_features or []:
                if o.table_name:
                    links.append({"feature": feature, "target_kind": "online_feature",
                                  "target_name": f"{o.table_name}.{o.feature_name or ''}".rstrip("."),
                                  "target_version": "", "source_table": source})
        rows = declarative + [{k: v for k, v in r.items() if k != "_feature_table"} for r in classic]
        self.report.count("features", len(rows))
        self.report.count("feature_lineage", len(links))
        # What could not be read keeps its rows: a schema whose features failed to list, a table
        # whose details failed (its classic features), a feature whose lineage failed.
        unread_tables = self._unread_tables

        def unread_feature(f: str) -> bool:
            return (f.rsplit(".", 1)[0] in failed_schemas or f.rsplit(".", 1)[0] in unread_tables)

        any_unread = bool(failed_schemas or unread_tables)
        read = [r["full_name"] for r in rows]
        return {"features": EntityBatch(rows, self._scope("features", "full_name", read,
                                                          unread_feature if any_unread else None)),
                "feature_lineage": EntityBatch(links, self._scope(
                    "feature_lineage", "feature", read,
                    (lambda f: unread_feature(f) or f in no_lineage) if any_unread or no_lineage else None))}

    # -- Tables and lineage --------------------------------------------------------------------
    def _table_row(self, t, reasons: Iterable[str], status: str = "ok", detail: str | None = None,
                   full_name: str | None = None) -> dict[str, Any]:
        name = full_name or t.full_name
        parts = name.split(".")
        return {"full_name": name, "catalog_name": getattr(t, "catalog_name", None) or parts[0],
                "schema_name": getattr(t, "schema_name", None) or (parts[1] if len(parts) > 1 else None),
                "table_type": _enum(getattr(t, "table_type", None)),
                "data_source_format": _enum(getattr(t, "data_source_format", None)),
                "storage_location": getattr(t, "storage_location", None), "owner": getattr(t, "owner", None),
                "table_id": getattr(t, "table_id", None), "created_at": _ms(getattr(t, "created_at", None)),
                "updated_at": _ms(getattr(t, "updated_at", None)), "comment": getattr(t, "comment", None),
                "reasons": sorted(reasons), "read_status": status, "detail": detail}

    def _tables(self) -> dict[str, EntityBatch]:
        self.progress("tables")
        rows: dict[str, dict[str, Any]] = {}
        unlisted: set[str] = set()
        for spec in self.opts.get("schemas") or []:
            catalog, schema = spec.split(".", 1)
            res = self._read(f"tables in {spec}", lambda c=catalog, s=schema: list(self.w.tables.list(
                c, s, omit_columns=True, omit_properties=True)))
            if not res.ok:
                unlisted.add(spec)
            for t in res.value or []:
                if t.full_name:
                    rows[t.full_name] = self._table_row(t, self._table_reasons.get(t.full_name, set()) | {"schema"})
        # Lineage first, so the upstream tables it finds are described too.
        lineage_rows, lineage_read = self._lineage(sorted(self._table_reasons))
        # Every referenced table is read with its details (columns and constraints show a classic
        # feature table), also when a configured schema's list already named it.
        wanted = sorted(self._table_reasons)
        for name, res in zip(wanted, self._read_many(wanted, lambda n: self._read(
                f"table {n}", lambda: self.w.tables.get(n)))):
            reasons = self._table_reasons[name]
            if res.ok:
                self._table_infos[name] = res.value
            elif res.status != "not_found":
                self._unread_tables.add(name)
            if name in rows:
                if not res.ok:
                    continue   # listed from its schema: the listing describes it
                reasons = reasons | set(rows[name]["reasons"])
            rows[name] = (self._table_row(res.value, reasons) if res.ok
                          else self._table_row(None, reasons, res.status, res.detail, full_name=name))
        for name, row in rows.items():   # tables listed from schemas that something also references
            row["reasons"] = sorted(set(row["reasons"]) | self._table_reasons.get(name, set()))
        self.report.count("uc_tables", len(rows))
        # A schema whose list failed keeps its tables; a lineage walk with a failed read closes
        # edges only below the tables whose lineage was read (what lies beyond a failure is unknown).
        # Tables found only through lineage may be missing when a lineage read failed: then no table
        # that was not seen is closed.
        def table_unread(name: str) -> bool:
            return name.rsplit(".", 1)[0] in unlisted or (lineage_read is not None and name not in rows)

        table_scope = self._scope("uc_tables", "full_name", rows,
                                  table_unread if unlisted or lineage_read is not None else None)
        lineage_scope = self._scope("table_lineage", "downstream", lineage_read,
                                    (lambda n: n not in lineage_read) if lineage_read is not None else None)
        return {"uc_tables": EntityBatch(list(rows.values()), table_scope),
                "table_lineage": EntityBatch(lineage_rows, lineage_scope)}

    def _lineage(self, seeds: list[str]) -> tuple[list[dict[str, Any]], set[str] | None]:
        """Upstream edges walked from `seeds`, and — when a read failed — the tables whose lineage
        was read (None when every read succeeded)."""
        depth_limit = int(self.opts.get("lineage_depth", DEFAULT_LINEAGE_DEPTH))
        if depth_limit <= 0 or not seeds:
            return [], None
        self.progress(f"table lineage ({len(seeds)} tables, depth {depth_limit})")
        cache: dict[str, ReadResult] = {}   # one call per table per pass
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        frontier, depth = list(seeds), 1
        while frontier and depth <= depth_limit:
            todo = [t for t in dict.fromkeys(frontier) if t not in cache]
            for t, res in zip(todo, self._read_many(todo, lambda t: self._read(
                    f"lineage of {t}", lambda: self.w.api_client.do(
                        "GET", "/api/2.0/lineage-tracking/table-lineage",
                        query={"table_name": t, "include_entity_lineage": True})))):
                cache[t] = res
            nxt = []
            for t in frontier:
                res = cache[t]
                body = res.value if res.ok and isinstance(res.value, dict) else {}
                for up in body.get("upstreams") or []:
                    info, file_info = up.get("tableInfo") or {}, up.get("fileInfo") or {}
                    if info:
                        up_name = ".".join(str(info.get(k) or "") for k in ("catalog_name", "schema_name", "name"))
                        if not _three_part(up_name):
                            continue
                        kind = "table"
                    elif file_info.get("path"):
                        up_name, kind = file_info["path"], "file"
                    else:
                        continue
                    key = (up_name, t)
                    if key in edges:
                        continue
                    edges[key] = {"upstream": up_name, "downstream": t, "upstream_kind": kind,
                                  "upstream_table_type": info.get("table_type"),
                                  "lineage_timestamp": info.get("lineage_timestamp"),
                                  "job_ids": sorted({str(j.get("job_id")) for j in up.get("jobInfos") or [] if j.get("job_id")}),
                                  "notebook_ids": sorted({str(n.get("notebook_id")) for n in up.get("notebookInfos") or []
                                                          if n.get("notebook_id")}),
                                  "pipeline_ids": sorted({str(p.get("pipeline_id")) for p in up.get("pipelineInfos") or []
                                                          if p.get("pipeline_id")}),
                                  "depth": depth}
                    if kind == "table":
                        self._want(up_name, "lineage_upstream")
                        nxt.append(up_name)
            frontier, depth = nxt, depth + 1
        self.report.count("table_lineage", len(edges))
        read = {t for t, res in cache.items() if res.status in ("ok", "not_found")}   # a 404: no table, no lineage
        return list(edges.values()), (read if len(read) < len(cache) else None)
