"""Unity Catalog registry: registered models, versions, aliases and model-version dependencies."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collectors.databricks_client import (
    MODELS_PAGE, MODELS_PAGE_SCHEMA, DatabricksClient, ReadResult, _dependency, _enum, _ms)
from collectors.mlflow_records import parse_models_uri
from store.entities import EntityBatch


class RegistryArea(DatabricksClient):
    # -- Unity Catalog models ------------------------------------------------------------------
    def _list_models(self) -> tuple[list[Any], set[str]]:
        """The registered models in scope, and the catalogs / `catalog.schema` prefixes that could
        not be listed (their models are left as they were in the store).

        `registered_models.list` takes a catalog and a schema together or neither (SDK docstring;
        the service answers a catalog alone with 400 INVALID_PARAMETER_VALUE), so a configured
        catalog is listed schema by schema."""
        catalogs = list(self.opts.get("catalogs") or [])
        schemas = [tuple(s.split(".", 1)) for s in (self.opts.get("schemas") or [])]
        if not catalogs and not schemas:
            return self._retry(lambda: list(self.w.registered_models.list(max_results=MODELS_PAGE))), set()
        unread: set[str] = set()
        pairs: list[tuple[str, str]] = []
        for catalog in catalogs:
            res = self._read(f"catalog {catalog} schemas (its models are not in this snapshot)",
                             lambda c=catalog: list(self.w.schemas.list(catalog_name=c, max_results=0)))
            if not res.ok:
                unread.add(catalog)
                continue
            pairs += [(catalog, s.name) for s in res.value if s.name and s.name != "information_schema"]
        pairs += [(c, s) for c, s in schemas if c not in catalogs]
        found: dict[str, Any] = {}
        for catalog, schema in dict.fromkeys(pairs):
            res = self._read(f"models in {catalog}.{schema} (not in this snapshot)",
                             lambda c=catalog, s=schema: list(self.w.registered_models.list(
                                 catalog_name=c, schema_name=s, max_results=MODELS_PAGE_SCHEMA)))
            if not res.ok:
                unread.add(f"{catalog}.{schema}")
                continue
            for m in res.value:
                found[m.full_name] = m
        return list(found.values()), unread

    def _models(self) -> dict[str, EntityBatch]:
        self.progress("Unity Catalog models")
        listed, unread_areas = self._list_models()
        listed = [m for m in listed if getattr(m, "full_name", None)]
        self.report.count("registered_models", len(listed))

        def detail(m) -> ReadResult:
            got = self._read(f"model {m.full_name}", lambda: self.w.registered_models.get(m.full_name, include_aliases=True))
            versions = self._read(f"model {m.full_name} versions",
                                  lambda: list(self.w.model_versions.list(m.full_name, max_results=1000)))
            return ReadResult("ok", (m, got, versions))

        models, uc_models, versions, uc_versions, aliases, deps = [], [], [], [], [], []
        no_versions: set[str] = set()   # models whose versions list failed
        no_aliases: set[str] = set()    # models whose details (and so aliases) failed
        for res in self._read_many(listed, detail):
            m, got, vres = res.value
            if not vres.ok:
                no_versions.add(m.full_name)
            if not got.ok:
                no_aliases.add(m.full_name)
            info = got.value if got.ok else m
            models.append({"name": m.full_name, "description": info.comment, "creation_time": _ms(info.created_at),
                           "last_updated_time": _ms(info.updated_at), "tags": {}})
            uc_models.append({"full_name": m.full_name, "catalog_name": info.catalog_name,
                              "schema_name": info.schema_name, "owner": info.owner,
                              "storage_location": info.storage_location, "created_by": info.created_by,
                              "updated_by": info.updated_by, "read_status": got.status, "detail": got.detail})
            by_version: dict[str, list[str]] = {}
            for a in (info.aliases or []) if got.ok else []:
                if a.alias_name is None or a.version_num is None:
                    continue
                aliases.append({"name": m.full_name, "alias": a.alias_name, "version": str(a.version_num)})
                by_version.setdefault(str(a.version_num), []).append(a.alias_name)
            for v in (vres.value or []) if vres.ok else []:
                if v.version is None:
                    continue
                version = str(v.version)
                if got.ok:   # a version row carries its aliases: without the model's details it waits
                    versions.append({
                        "name": m.full_name, "version": version, "run_id": v.run_id or None, "source_uri": v.source,
                        "model_id": parse_models_uri(v.source), "status": _enum(v.status), "stage": None,
                        "user_id": v.created_by, "description": v.comment, "creation_time": _ms(v.created_at),
                        "last_updated_time": _ms(v.updated_at), "tags": {},
                        "aliases": sorted(by_version.get(version, []))})
                uc_versions.append({"name": m.full_name, "version": version, "run_workspace_id": _ms(v.run_workspace_id),
                                    "storage_location": v.storage_location, "created_by": v.created_by,
                                    "updated_by": v.updated_by})
                for d in ((v.model_version_dependencies.dependencies or [])
                          if v.model_version_dependencies else []):
                    dep_type, dep_name = _dependency(d)
                    if dep_name:
                        deps.append({"name": m.full_name, "version": version, "dependency_type": dep_type,
                                     "dependency_name": dep_name})
                        if dep_type == "table":
                            self._want(dep_name, "model_dependency")
        self.report.count("model_versions", len(versions))
        self.report.count("aliases", len(aliases))

        def in_unread_area(name: str) -> bool:
            return any(name.startswith(area + ".") for area in unread_areas)

        def unread_if(failed: set[str]) -> Callable[[str], bool] | None:
            if not unread_areas and not failed:
                return None
            return lambda name: in_unread_area(name) or name in failed

        names = [m.full_name for m in listed]
        model_scope = unread_if(set())
        version_scope = unread_if(no_versions)
        version_row_scope = unread_if(no_versions | no_aliases)
        alias_scope = unread_if(no_aliases)
        return {"registered_models": EntityBatch(models, self._scope("registered_models", "name", names, model_scope)),
                "uc_models": EntityBatch(uc_models, self._scope("uc_models", "full_name", names, model_scope)),
                "model_versions": EntityBatch(versions, self._scope("model_versions", "name", names, version_row_scope)),
                "uc_model_versions": EntityBatch(uc_versions, self._scope("uc_model_versions", "name", names,
                                                                          version_scope)),
                "model_aliases": EntityBatch(aliases, self._scope("model_aliases", "name", names, alias_scope)),
                "model_version_dependencies": EntityBatch(deps, self._scope("model_version_dependencies", "name",
                                                                            names, version_scope))}
