"""The Unity Catalog side of the Databricks workspace stub (`demo.databricks_stub`): catalogs,
schemas, registered models and versions, tables, table lineage and features, as route handlers
mixed into `DatabricksStub`; and `ApiError`, the Databricks error envelope every route raises."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class UnityCatalogRoutes:
    """Route handlers over `self.workspace`, `self.models`, `self.tables` and `self._page` (set by
    `DatabricksStub`)."""

    def _r_uc_catalogs_list(self, params, query):
        """The fixture's own `catalogs` list, else the catalogs its models and tables live in."""
        catalogs = self.workspace.get("catalogs") or [
            {"name": c, "full_name": c}
            for c in sorted({o.get("catalog_name") for o in [*self.models.values(), *self.tables.values()]} - {None})]
        return self._page("uc.catalogs.list", catalogs, "catalogs", query)

    def _r_uc_schemas_list(self, params, query):
        catalog = query.get("catalog_name")
        if not catalog:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "catalog_name is required")
        found = {(x.get("catalog_name"), x.get("schema_name"))
                 for x in [*self.models.values(), *self.tables.values(), *self.workspace.get("features", [])]}
        found |= {tuple(s.split(".", 1)) for s in self.workspace.get("schemas", [])}
        items = [{"name": s, "catalog_name": c, "full_name": f"{c}.{s}"}
                 for c, s in sorted(x for x in found if x[0] == catalog and x[1])]
        items.append({"name": "information_schema", "catalog_name": catalog,
                      "full_name": f"{catalog}.information_schema"})   # every UC catalog has one
        return self._page("uc.schemas.list", items, "schemas", query)

    def _r_uc_models_list(self, params, query):
        # The service takes a catalog and a schema together or neither (SDK docstring of
        # RegisteredModelsAPI.list; unitycatalog PR #404 mirrors the rule).
        if bool(query.get("catalog_name")) != bool(query.get("schema_name")):
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           "catalog_name and schema_name must be specified together, or not at all")
        # List items carry `aliases` as in the SDK-assembled example (ListRegisteredModels.json); the
        # collector still reads aliases from the get call, the documented place.
        items = [self._model_view(m, aliases=True) for m in self.models.values()
                 if (not query.get("catalog_name") or m.get("catalog_name") == query["catalog_name"])
                 and (not query.get("schema_name") or m.get("schema_name") == query["schema_name"])]
        route = "uc.models.list.schema" if query.get("catalog_name") and query.get("schema_name") else "uc.models.list"
        return self._page(route, items, "registered_models", query)

    def _model_view(self, m: dict[str, Any], aliases: bool) -> dict[str, Any]:
        out = {k: v for k, v in m.items() if k != "aliases"}
        if aliases and m.get("aliases"):
            out["aliases"] = m["aliases"]
        return out

    def _r_uc_models_get(self, params, query):
        m = self.models.get(params["full_name"])
        if m is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model '{params['full_name']}' does not exist.")
        return self._model_view(m, aliases=query.get("include_aliases") == "true")

    def _versions(self, full_name: str) -> list[dict[str, Any]]:
        if full_name not in self.models:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model '{full_name}' does not exist.")
        return self.workspace.get("model_versions", {}).get(full_name, [])

    def _r_uc_versions_list(self, params, query):
        items = [{k: v for k, v in mv.items() if k != "aliases"} for mv in self._versions(params["full_name"])]
        return self._page("uc.versions.list", items, "model_versions", query)

    def _r_uc_versions_get(self, params, query):
        for mv in self._versions(params["full_name"]):
            if str(mv["version"]) == params["version"]:
                return mv if query.get("include_aliases") == "true" else {k: v for k, v in mv.items() if k != "aliases"}
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Model version {params['version']} does not exist.")

    def _r_uc_tables_get(self, params, query):
        t = self.tables.get(params["full_name"])
        if t is None:
            raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table '{params['full_name']}' does not exist.")
        return t

    def _r_uc_tables_list(self, params, query):
        if not query.get("catalog_name") or not query.get("schema_name"):
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "catalog_name and schema_name are required")
        items = [t for t in self.tables.values() if t.get("catalog_name") == query["catalog_name"]
                 and t.get("schema_name") == query["schema_name"]]
        return self._page("uc.tables.list", items, "tables", query)

    @staticmethod
    def _table_info(full_name: str, ts: str | None) -> dict[str, Any]:
        # Only {catalog_name, schema_name, name} are attested (GetTableLineage.json, from DataHub's
        # reader); `lineage_timestamp` is served only when a fixture names one.
        catalog, schema, name = (full_name.split(".") + ["", "", ""])[:3]
        info = {"catalog_name": catalog, "schema_name": schema, "name": name}
        if ts:
            info["lineage_timestamp"] = ts
        return info

    @staticmethod
    def _lineage_item(table: str, link: dict[str, Any], entity: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"tableInfo": UnityCatalogRoutes._table_info(table, link.get("lineage_timestamp"))}
        if entity:
            for k in ("notebookInfos", "jobInfos", "pipelineInfos"):
                if link.get(k):
                    item[k] = link[k]
        return item

    def _r_lineage_table(self, params, query):
        name = query.get("table_name")
        if not name:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "table_name is required")
        entity = query.get("include_entity_lineage") == "true"
        ups = []
        for up in self.workspace.get("lineage", {}).get(name, []):
            if "file" in up:
                ups.append({"fileInfo": {"path": up["file"], **up.get("fileInfo", {})}})
                continue
            ups.append(self._lineage_item(up["table"], up, entity))
        downs = [self._lineage_item(d, link, entity) for d, link in self.downstreams.get(name, [])]
        out: dict[str, Any] = {}
        if ups:
            out["upstreams"] = ups
        if downs:
            out["downstreams"] = downs
        return out

    def _r_features_list(self, params, query):
        items = [f for f in self.workspace.get("features", [])
                 if f.get("catalog_name") == query.get("catalog_name") and f.get("schema_name") == query.get("schema_name")]
        return self._page("features.list", items, "features", query, size_param="page_size")

    def _r_features_materialized_list(self, params, query):
        items = [m for m in self.workspace.get("materialized_features", [])
                 if not query.get("feature_name") or m.get("feature_name") == query["feature_name"]]
        return self._page("features.materialized.list", items, "materialized_features", query, size_param="page_size")

    def _r_features_lineage(self, params, query):
        lin = self.workspace.get("feature_lineage", {}).get(f"{params['table']}|{params['feature']}")
        if lin is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Feature {params['feature']} not found in {params['table']}.")
        return lin
