"""Fabric source (`kind = "fabric"`): workspace items over the Fabric REST API — ML models, ML
experiments (with their MLflow experiment id), lakehouses, lakehouse tables and OneLake shortcuts
with their ADLS / OneLake targets (platform-apis.md §3.2).

Plain REST (collectors/azure_common.py) rather than the beta `microsoft-fabric-api` SDK: the two
fallbacks this collector needs leave the SDK's surface anyway — schema-enabled lakehouses answer
List Tables with 400 `UnsupportedOperationForSchemasEnabledLakehouse` and are read through the
OneLake table API (another host, Unity-Catalog shapes), and the user-only ML list APIs are
replaced by `/items?type=` when Fabric refuses the caller's principal type (400
PrincipalTypeNotSupported for a service principal or managed identity); the raw envelope also keeps the `data` (not
`value`) page key of List Tables visible. Paging follows the absolute `continuationUri`.

Fabric's MLflow (experiments, runs, models) is collected by the `mlflow` kind with the workspace's
tracking URI and a bearer token scope (see governance.example.toml).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from collectors.azure_common import FABRIC_SCOPE, STORAGE_SCOPE, AzureHttp, AzureHttpError
from collectors.azureml_source import credential_for
from collectors.config import SourceConfig
from collectors.report import SourceReport
from store.db import Store
from store.entities import EntityBatch, Scope

DEFAULT_FABRIC = "https://api.fabric.microsoft.com/v1"
DEFAULT_ONELAKE_TABLES = "https://onelake.table.fabric.microsoft.com"
ONELAKE_DFS = "onelake.dfs.fabric.microsoft.com"
TYPED_LISTS = {"MLModel": "mlModels", "MLExperiment": "mlExperiments", "Lakehouse": "lakehouses"}
SCHEMA_ENABLED_ERROR = "UnsupportedOperationForSchemasEnabledLakehouse"
# The ML model / experiment lists do not support service principals or managed identities (spec:
# identity table of Items_ListMLModels / Items_ListMLExperiments). Fabric refuses such a caller with
# 400 PrincipalTypeNotSupported; 401/403 are kept as a fallback trigger for tenants that answer so.
PRINCIPAL_TYPE_REFUSED = "PrincipalTypeNotSupported"
USER_ONLY_STATUSES = (401, 403)


def refused_for_principal_type(e: AzureHttpError) -> bool:
    return e.code == PRINCIPAL_TYPE_REFUSED or e.status in USER_ONLY_STATUSES


def shortcut_target_location(target: dict[str, Any]) -> str | None:
    """A shortcut's target as one URL, comparable with a UC table's storage location."""
    kind = (target or {}).get("type")
    if kind == "AdlsGen2" and target.get("adlsGen2"):
        t = target["adlsGen2"]
        loc = (t.get("location") or "").rstrip("/")
        sub = (t.get("subpath") or "").strip("/")
        # https://acct.dfs.core.windows.net + /container/path → abfss://container@acct.dfs.core.windows.net/path
        if loc.startswith("https://") and sub:
            host = loc[len("https://"):].split("/")[0]
            container, _, rest = sub.partition("/")
            return f"abfss://{container}@{host}/{rest}".rstrip("/")
        return f"{loc}/{sub}".rstrip("/") if loc else None
    if kind == "OneLake" and target.get("oneLake"):
        t = target["oneLake"]
        return f"abfss://{t.get('workspaceId')}@{ONELAKE_DFS}/{t.get('itemId')}/{(t.get('path') or '').strip('/')}"
    for key in ("amazonS3", "googleCloudStorage", "s3Compatible", "azureBlobStorage"):
        if target and target.get(key):
            t = target[key]
            # S3-compatible targets name their bucket apart from the endpoint (official ListShortcuts example).
            parts = [(t.get("location") or "").rstrip("/"), (t.get("bucket") or "").strip("/"),
                     (t.get("subpath") or "").strip("/")]
            return "/".join(p for p in parts if p) or None
    return None


class FabricSource:
    def __init__(self, config: SourceConfig, report: SourceReport,
                 progress: Callable[[str], None] | None = None, *, credential: Any = None):
        self.config = config
        self.report = report
        self.progress = progress or (lambda _msg: None)
        opts = config.options
        self.ws = opts["workspace_id"]
        self.base = str(opts.get("fabric_endpoint", DEFAULT_FABRIC)).rstrip("/")
        self.onelake = str(opts.get("onelake_table_endpoint", DEFAULT_ONELAKE_TABLES)).rstrip("/")
        self.item_types = list(opts.get("item_types", list(TYPED_LISTS)))
        self.credential = credential or credential_for([self.base, self.onelake])
        self.http = AzureHttp(self.credential, report)

    @staticmethod
    def previous_state(store: Store, source: str) -> None:
        return None  # item lists are small: every pass is a full read

    def _ws_url(self, suffix: str) -> str:
        return f"{self.base}/workspaces/{quote(self.ws, safe='')}{suffix}"

    def collect(self, previous: None, full: bool) -> tuple[str, dict[str, EntityBatch], dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for item_type in self.item_types:
            self.progress(f"{item_type} items")
            items += self._items(item_type)
        tables, shortcuts = [], []
        lakehouses = [i for i in items if i["item_type"] == "Lakehouse"]
        # Complete only for the item types listed: narrowing `item_types` removes nothing it no longer reads.
        batches = {"fabric_items": EntityBatch(items, Scope.partitions("item_type", self.item_types))}
        reads_lakehouses = "Lakehouse" in self.item_types
        # A lakehouse whose tables or shortcuts could not be read keeps its last known rows: the
        # batch is complete only for the lakehouses that were read (a partial read never removes).
        if reads_lakehouses and self.config.options.get("lakehouse_tables", True):
            read_ok, failed = [], False
            for lh in lakehouses:
                self.progress(f"tables of {lh['display_name']}")
                got = self._tables(lh)
                if got is None:
                    failed = True
                else:
                    tables += got
                    read_ok.append(lh["item_id"])
            batches["fabric_tables"] = EntityBatch(tables, Scope.partitions("lakehouse_id", read_ok) if failed
                                                   else Scope.ALL)
        if reads_lakehouses and self.config.options.get("shortcuts", True):
            read_ok, failed = [], False
            for lh in lakehouses:
                got = self._shortcuts(lh)
                if got is None:
                    failed = True
                else:
                    shortcuts += got
                    read_ok.append(lh["item_id"])
            batches["fabric_shortcuts"] = EntityBatch(shortcuts, Scope.partitions("item_id", read_ok) if failed
                                                      else Scope.ALL)
        # A switched-off read sends no batch at all, so its last known rows stay as they were.
        for name in ("fabric_items", "fabric_tables", "fabric_shortcuts"):
            if name in batches:
                self.report.count(name, len(batches[name].rows))
        return "full", batches, {}

    # -- items -------------------------------------------------------------------------------------
    def _items(self, item_type: str) -> list[dict[str, Any]]:
        typed = TYPED_LISTS.get(item_type)
        raw, via = None, "typed"
        if typed:
            try:
                raw = self.http.items(self._ws_url(f"/{typed}"), FABRIC_SCOPE)
            except AzureHttpError as e:
                if not refused_for_principal_type(e):
                    raise
                # ML model/experiment lists are user-identity only; a service principal gets the
                # generic list, which has no type-specific properties (no MLflow experiment id).
                self.report.warn(f"{typed}: {e.status} {e.code or ''} — listed through /items?type={item_type} "
                                 "(no item properties: a service principal cannot call the typed list)")
        if raw is None:
            via = "items"
            raw = self.http.items(self._ws_url("/items"), FABRIC_SCOPE, params={"type": item_type})
        rows = []
        for i in raw:
            props = i.get("properties") or {}
            rows.append({
                "item_id": i.get("id"), "workspace_id": i.get("workspaceId") or self.ws,
                "item_type": i.get("type") or item_type, "display_name": i.get("displayName"),
                "description": i.get("description"), "folder_id": i.get("folderId"),
                "mlflow_experiment_id": props.get("mlFlowExperimentId"),
                "schema_enabled": bool(props.get("defaultSchema")) if item_type == "Lakehouse" and props else None,
                "properties": props, "tags": i.get("tags") or [], "listed_via": via,
            })
        return rows

    # -- lakehouse tables --------------------------------------------------------------------------
    def _tables(self, lh: dict[str, Any]) -> list[dict[str, Any]] | None:
        lh_id = lh["item_id"]
        if not lh.get("schema_enabled"):
            try:
                data = self.http.items(self._ws_url(f"/lakehouses/{quote(lh_id, safe='')}/tables"), FABRIC_SCOPE,
                                       params={"maxResults": 100}, items_key="data")
                return [{"lakehouse_id": lh_id, "schema_name": "", "table_name": t.get("name"),
                         "table_type": t.get("type"), "format": t.get("format"), "location": t.get("location"),
                         "listed_via": "tables_api"} for t in data]
            except AzureHttpError as e:
                if not (e.status == 400 and e.code == SCHEMA_ENABLED_ERROR):
                    self.report.warn(f"lakehouse {lh['display_name']}: tables not listed, last known kept ({e})")
                    return None
        return self._onelake_tables(lh)

    def _onelake_tables(self, lh: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Schema-enabled lakehouse: the OneLake table API (Unity-Catalog shapes, storage scope)."""
        lh_id = lh["item_id"]
        base = f"{self.onelake}/delta/{quote(self.ws, safe='')}/{quote(lh_id, safe='')}/api/2.1/unity-catalog"
        try:
            schemas = self.http.items(f"{base}/schemas", STORAGE_SCOPE, params={"catalog_name": lh_id},
                                      items_key="schemas")
            rows = []
            for schema in schemas:
                for t in self.http.items(f"{base}/tables", STORAGE_SCOPE,
                                         params={"catalog_name": lh_id, "schema_name": schema["name"]},
                                         items_key="tables"):
                    rows.append({"lakehouse_id": lh_id, "schema_name": schema["name"], "table_name": t.get("name"),
                                 "table_type": t.get("table_type"), "format": t.get("data_source_format"),
                                 "location": t.get("storage_location"), "listed_via": "onelake_table_api"})
            return rows
        except AzureHttpError as e:
            self.report.warn(f"lakehouse {lh['display_name']} (schema-enabled): OneLake table API failed ({e})")
            return None

    # -- shortcuts ---------------------------------------------------------------------------------
    def _shortcuts(self, item: dict[str, Any]) -> list[dict[str, Any]] | None:
        """None when the list could not be read (its last known shortcuts are kept)."""
        try:
            raw = self.http.items(self._ws_url(f"/items/{quote(item['item_id'], safe='')}/shortcuts"), FABRIC_SCOPE)
        except AzureHttpError as e:
            self.report.warn(f"{item['display_name']}: shortcuts not listed, last known kept ({e})")
            return None
        rows = []
        for s in raw:
            target = s.get("target") or {}
            path = (s.get("path") or "").strip("/")
            rows.append({
                "item_id": item["item_id"], "path": path, "name": s.get("name"),
                "target_type": target.get("type"), "target_location": shortcut_target_location(target),
                "onelake_path": f"abfss://{self.ws}@{ONELAKE_DFS}/{item['item_id']}/{path}/{s.get('name')}",
                "target": target,
            })
        return rows
