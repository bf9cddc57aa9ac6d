"""The Azure side of the churn story as fixtures for `demo.azure_stub`: Azure ML endpoints and
models, their health profiles and the metric series generated from them (a daily cycle plus fixed
noise), traffic-log rows consistent with those series, the Fabric workspace and the AI Search
service. Tests and the demo build on these."""
from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone
from typing import Any


def _noise(*parts: Any) -> float:
    """Deterministic noise in [-1, 1] per (series, timestamp)."""
    h = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") / 2**31 - 1.0


def daily_load(when: datetime, key: str) -> float:
    """Traffic as people make it (0.05..~2): a quiet night, a morning and an afternoon peak, a small
    evening hump, weekends lower; slow hour-to-hour wander and the odd short burst on top."""
    hour = when.hour + when.minute / 60
    shape = (0.10 + math.exp(-((hour - 10.5) / 2.0) ** 2) + 0.8 * math.exp(-((hour - 15.0) / 2.6) ** 2)
             + 0.25 * math.exp(-((hour - 20.5) / 1.8) ** 2))
    if when.weekday() >= 5:
        shape *= 0.45
    wander = 1 + 0.12 * _noise(key, "hour", when.strftime("%Y-%m-%d %H"))
    burst = 1.3 if _noise(key, "burst", when.strftime("%Y-%m-%d %H"), when.minute // 15) > 0.96 else 1.0
    return 1.45 * shape * wander * burst        # 1.45: the week averages about 0.55, as before


def series_value(profile: dict[str, float], metric: str, when: datetime, key: str) -> float | None:
    """A believable value: daily traffic (see `daily_load`), latency following load, noise per sample."""
    load = daily_load(when, key)
    n = _noise(key, metric, when.isoformat())
    rpm = profile.get("rpm", 100.0) * load * (1 + 0.08 * n)
    err = profile.get("error_rate", 0.005) * (1 + 0.5 * n)
    if metric == "rpm_2xx":
        return round(rpm * (1 - err - profile.get("client_error_rate", 0.01)), 2)
    if metric == "rpm_4xx":
        return round(rpm * profile.get("client_error_rate", 0.01), 2)
    if metric == "rpm_5xx":
        return round(rpm * err, 3)
    if metric.startswith("latency_"):
        base = profile.get(metric.replace("_ms", ""), profile.get("latency_p50", 40.0))
        return round(base * (0.85 + 0.3 * load) * (1 + 0.05 * n), 1)
    if metric == "cpu":
        return round(min(99.0, profile.get("cpu", 30.0) * (0.6 + 0.7 * load) * (1 + 0.05 * n)), 1)
    if metric == "memory":
        return round(profile.get("memory", 45.0) * (1 + 0.02 * n), 1)
    return None


def log_rows(health: dict[str, dict[str, dict[str, float]]], end: datetime, hours: int, grain_minutes: int = 5):
    """Traffic-log aggregates consistent with the metric profiles (for fixtures)."""
    rows = []
    t = end - timedelta(hours=hours)
    while t < end:
        for endpoint, deps in health.items():
            for dep, profile in deps.items():
                key = f"{endpoint}/{dep}"
                rpm = sum(series_value(profile, k, t, key) or 0 for k in ("rpm_2xx", "rpm_4xx", "rpm_5xx"))
                requests = int(rpm * grain_minutes)
                rows.append([endpoint, dep, t.isoformat().replace("+00:00", "Z"), requests,
                             int(requests * profile.get("client_error_rate", 0.01)),
                             int(round(requests * profile.get("error_rate", 0.005))),
                             series_value(profile, "latency_p50_ms", t, key),
                             series_value(profile, "latency_p95_ms", t, key)])
        t += timedelta(minutes=grain_minutes)
    return rows


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- the churn story's Azure ML side (tests and the demo) ------------------------------------------
AML_SUB = "00000000-0000-4000-8000-00000000c0de"
AML_RG = "rg-churn"
AML_WS = "aml-churn"
AML_MODEL = "churn-model"


def aml_workspace_id() -> str:
    return (f"/subscriptions/{AML_SUB}/resourceGroups/{AML_RG}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{AML_WS}")


def churn_azureml(model_uris: dict[str, str] | None = None, traffic: dict[str, int] | None = None,
                  migrated_from: dict[str, str] | None = None, green_from_registry: bool = False) -> dict[str, Any]:
    """Endpoint `churn-aml`: blue (v2) / green (v3), 90/10 by default; models referenced by workspace
    ARM id, or green from a registry (`azureml://registries/…`)."""
    ws = aml_workspace_id()
    traffic = traffic if traffic is not None else {"blue": 90, "green": 10}
    model_uris = model_uris or {}
    migrated_from = migrated_from or {}

    def system(created: str, modified: str | None = None, by: str = "migration-pipeline") -> dict[str, Any]:
        return {"createdAt": created, "createdBy": by, "createdByType": "User",
                "lastModifiedAt": modified or created, "lastModifiedBy": by, "lastModifiedByType": "User"}

    identity = {"type": "SystemAssigned", "principalId": "00000000-0000-4000-8000-0000000001d0",
                "tenantId": "00000000-0000-4000-8000-0000000070e0",
                "userAssignedIdentities": {}}

    def deployment(name: str, model: str, instance_type: str, capacity: int) -> dict[str, Any]:
        # The keys and types of the official ManagedOnlineDeployment get example (2024-10-01).
        return {"id": f"{ws}/onlineEndpoints/churn-aml/deployments/{name}", "name": name,
                "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                "properties": {"description": f"churn {name}", "properties": {},
                               "codeConfiguration": {"codeId": f"{ws}/codes/score/versions/1", "scoringScript": "score.py"},
                               "environmentId": "azureml://registries/azureml/environments/sklearn-1.5/versions/1",
                               "environmentVariables": {},
                               "scaleSettings": {"scaleType": "Default"},
                               "requestSettings": {"maxQueueWait": "PT0.5S", "requestTimeout": "PT5S",
                                                   "maxConcurrentRequestsPerInstance": 1},
                               "appInsightsEnabled": True,
                               "livenessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                                 "period": "PT10S", "initialDelay": "PT10M"},
                               "provisioningState": "Succeeded", "instanceType": instance_type, "model": model,
                               "endpointComputeType": "Managed", "modelMountPath": "/var/azureml-app",
                               "readinessProbe": {"failureThreshold": 30, "successThreshold": 1, "timeout": "PT2S",
                                                  "period": "PT10S", "initialDelay": "PT10S"}},
                "systemData": system("2026-11-10T09:00:00Z"), "tags": {}, "location": "westeurope",
                "kind": "Managed", "identity": identity,
                "sku": {"name": "Default", "tier": "Standard", "size": "", "family": "", "capacity": capacity}}

    deployments = [deployment("blue", f"{ws}/models/{AML_MODEL}/versions/2", "Standard_DS3_v2", 2)]
    if "green" in traffic:
        green = (f"azureml://registries/churn-registry/models/{AML_MODEL}/versions/3" if green_from_registry
                 else f"{ws}/models/{AML_MODEL}/versions/3")
        deployments.append(deployment("green", green, "Standard_DS3_v2", 1))
    versions = []
    for v in ("1", "2", "3"):
        tags = {"team": "churn"}
        if v in migrated_from:
            tags["waymark.migrated_from"] = migrated_from[v]
        # The official ModelVersion list example's keys, plus `isArchived` (AssetBase; examples omit it).
        versions.append({"id": f"{ws}/models/{AML_MODEL}/versions/{v}", "name": v,
                         "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
                         "systemData": system(f"2026-11-0{v}T10:00:00Z"),
                         "properties": {"description": f"churn model v{v} copied from Fabric", "tags": tags,
                                        "properties": {}, "isAnonymous": False, "isArchived": v == "1",
                                        "flavors": {"python_function": {"data": {"loader_module": "mlflow.sklearn"}},
                                                    "sklearn": {"data": {"sklearn_version": "1.5.2"}}},
                                        "modelType": "mlflow_model",
                                        "modelUri": model_uris.get(v, f"azureml://subscriptions/{AML_SUB}/resourcegroups/"
                                                                      f"{AML_RG}/workspaces/{AML_WS}/datastores/"
                                                                      f"workspaceblobstore/paths/churn/v{v}/")}})
    return {
        "subscription_id": AML_SUB, "resource_group": AML_RG, "workspace": AML_WS, "location": "westeurope",
        "endpoints": [{
            "id": f"{ws}/onlineEndpoints/churn-aml", "name": "churn-aml",
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "properties": {"description": "churn scoring", "properties": {}, "authMode": "Key",
                           "scoringUri": "https://churn-aml.westeurope.inference.ml.azure.com/score",
                           "swaggerUri": "https://churn-aml.westeurope.inference.ml.azure.com/swagger.json",
                           "provisioningState": "Succeeded", "compute": None, "traffic": traffic,
                           "mirrorTraffic": {}, "publicNetworkAccess": "Enabled"},
            "systemData": system("2026-11-10T09:00:00Z", "2026-11-20T09:00:00Z"),
            "tags": {"owner": "churn-team"}, "location": "westeurope", "kind": "Managed", "identity": identity,
            "sku": {"name": "Default", "tier": "Standard", "size": "", "family": "", "capacity": 1},
            "deployments": deployments}],
        "models": [{"id": f"{ws}/models/{AML_MODEL}", "name": AML_MODEL,
                    "type": "Microsoft.MachineLearningServices/workspaces/models",
                    "systemData": system("2026-11-01T10:00:00Z", "2026-11-03T10:00:00Z"),
                    "properties": {"description": "Churn classifier migrated from Databricks via Fabric",
                                   "tags": {"team": "churn"}, "isArchived": False, "latestVersion": "3"},
                    "versions": versions}],
    }


CHURN_HEALTH = {"churn-aml": {
    "blue": {"latency_p50": 38.0, "latency_p95": 96.0, "latency_p99": 171.0, "rpm": 180.0,
             "error_rate": 0.002, "client_error_rate": 0.01, "cpu": 34.0, "memory": 52.0},
    "green": {"latency_p50": 44.0, "latency_p95": 131.0, "latency_p99": 240.0, "rpm": 20.0,
              "error_rate": 0.012, "client_error_rate": 0.01, "cpu": 22.0, "memory": 47.0},
}}


# -- the churn story's Fabric side ----------------------------------------------------------------
FABRIC_WS = "5b4a3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
LH_PLAIN = "a1b2c3d4-0000-4000-8000-000000000001"     # lakehouse without schemas (List Tables works)
LH_SCHEMAS = "a1b2c3d4-0000-4000-8000-000000000002"   # schema-enabled: List Tables answers 400


def churn_fabric(uc_feature_location: str = "abfss://gold@churnlake.dfs.core.windows.net/churn/features") -> dict[str, Any]:
    container, _, rest = uc_feature_location[len("abfss://"):].partition("@")
    host, _, sub = rest.partition("/")
    account = f"https://{host}"   # the shortcut must land on the UC table's own storage account
    label = {"id": "b7b4f4d9-3f0d-4b3e-8f3d-4f6d3f4f3f4f"}

    def sql_endpoint(lh: str) -> dict[str, Any]:
        return {"connectionString": f"{lh[:8]}.datawarehouse.fabric.microsoft.com", "id": lh[:-4] + "5e1d",
                "provisioningStatus": "Success"}

    def paths(lh: str) -> dict[str, str]:
        return {"oneLakeTablesPath": f"https://onelake.dfs.fabric.microsoft.com/{FABRIC_WS}/{lh}/Tables",
                "oneLakeFilesPath": f"https://onelake.dfs.fabric.microsoft.com/{FABRIC_WS}/{lh}/Files"}

    # The keys of the official typed-list examples (ListMLModels / ListMLExperiments / ListLakehouses);
    # the generic /items list drops `properties` and `sensitivityLabel` (ListItemsInWorkspace).
    items = [
        {"id": "c0000000-0000-4000-8000-0000000000m1", "type": "MLModel", "displayName": "churn_model",
         "description": "Churn classifier (copied from Databricks)", "workspaceId": FABRIC_WS,
         "sensitivityLabel": label},
        {"id": "c0000000-0000-4000-8000-0000000000e1", "type": "MLExperiment", "displayName": "customer-churn",
         "description": "Churn experiments", "workspaceId": FABRIC_WS,
         "properties": {"mlFlowExperimentId": "1"}, "sensitivityLabel": label},
        {"id": LH_PLAIN, "type": "Lakehouse", "displayName": "lh_churn", "description": "Churn scores",
         "workspaceId": FABRIC_WS, "properties": {**paths(LH_PLAIN), "sqlEndpointProperties": sql_endpoint(LH_PLAIN)},
         "sensitivityLabel": label},
        {"id": LH_SCHEMAS, "type": "Lakehouse", "displayName": "lh_features", "description": "Churn features",
         "workspaceId": FABRIC_WS, "properties": {**paths(LH_SCHEMAS), "sqlEndpointProperties": sql_endpoint(LH_SCHEMAS),
                                                  "defaultSchema": "dbo"},
         "sensitivityLabel": label},
    ]
    plain_tables = [{"type": "Managed", "name": f"churn_scores_{i}", "format": "Delta",
                     "location": f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/{LH_PLAIN}/Tables/churn_scores_{i}"}
                    for i in range(3)]
    onelake = {LH_SCHEMAS: {"dbo": [{"name": "churn_features", "schema_name": "dbo", "table_type": "MANAGED",
                                     "data_source_format": "DELTA",
                                     "storage_location": f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/"
                                                         f"{LH_SCHEMAS}/Tables/dbo/churn_features"}],
                            "gold": [{"name": "holdout", "schema_name": "gold", "table_type": "MANAGED",
                                      "data_source_format": "DELTA",
                                      "storage_location": f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/"
                                                          f"{LH_SCHEMAS}/Tables/gold/holdout"}]}}
    shortcuts = {LH_SCHEMAS: [
        {"name": "uc_features", "path": "Tables/dbo",
         "target": {"type": "AdlsGen2", "adlsGen2": {"location": account, "subpath": f"/{container}/{sub}",
                                                     "connectionId": "d0000000-0000-4000-8000-000000000001"}}},
        {"name": "shared_scores", "path": "Tables/dbo",
         "target": {"type": "OneLake", "oneLake": {"workspaceId": FABRIC_WS, "itemId": LH_PLAIN,
                                                   "path": "Tables/churn_scores_0"}}},
    ]}
    return {FABRIC_WS: {"items": items, "tables": {LH_PLAIN: plain_tables}, "onelake": onelake,
                        "shortcuts": shortcuts}}


# -- the churn story's Azure AI Search side -------------------------------------------------------
def indexer_status(last: str | None, overall: str = "running") -> dict[str, Any]:
    """An indexer status body with the keys of the official Indexers_GetStatus example."""
    def run(status: str) -> dict[str, Any]:
        return {"status": status, "errorMessage": None, "startTime": "2026-11-24T11:00:00Z",
                "endTime": "2026-11-24T11:02:00Z", "errors": [], "warnings": [], "itemsProcessed": 120,
                "itemsFailed": 0, "initialTrackingState": None, "finalTrackingState": None}
    return {"status": overall, "lastResult": run(last) if last else None,
            "executionHistory": [run(last)] if last else [],
            "limits": {"maxRunTime": "PT2H", "maxDocumentExtractionSize": 16777216,
                       "maxDocumentContentCharactersToExtract": 32768}}


# What the service fills in on every field and index it returns (keys of the official Indexes_List example).
_FIELD_DEFAULTS = {"searchable": False, "filterable": False, "retrievable": True, "sortable": False,
                   "facetable": False, "key": False, "indexAnalyzer": None, "searchAnalyzer": None,
                   "analyzer": None, "synonymMaps": []}
_INDEX_DEFAULTS = {"scoringProfiles": [], "defaultScoringProfile": None, "suggesters": [], "analyzers": [],
                   "tokenizers": [], "tokenFilters": [], "charFilters": [], "corsOptions": None,
                   "encryptionKey": None}


def search_index_as_served(index: dict[str, Any]) -> dict[str, Any]:
    def field(f: dict[str, Any]) -> dict[str, Any]:
        out = {**_FIELD_DEFAULTS, **f}
        if f.get("fields"):
            out["fields"] = [field(c) for c in f["fields"]]
        return out
    return {**_INDEX_DEFAULTS, **index, "fields": [field(f) for f in index.get("fields") or []]}


def churn_search() -> dict[str, Any]:
    """`documents`: the replacement of Databricks `catalog.schema.doc_embeddings_index` (seed 000 §6)."""
    return {
        "indexes": [{
            "name": "documents",
            "fields": [{"name": "doc_id", "type": "Edm.String", "key": True},
                       {"name": "title", "type": "Edm.String", "searchable": True},
                       {"name": "content", "type": "Edm.String", "searchable": True},
                       {"name": "content_vector", "type": "Collection(Edm.Single)", "dimensions": 1024,
                        "vectorSearchProfile": "my-profile"},
                       {"name": "chunks", "type": "Collection(Edm.ComplexType)", "fields": [
                           {"name": "vector", "type": "Collection(Edm.Half)", "dimensions": 256,
                            "vectorSearchProfile": "small"}]}],
            "vectorSearch": {"algorithms": [{"name": "hnsw", "kind": "hnsw",
                                             "hnswParameters": {"metric": "cosine", "m": 4, "efConstruction": 400}},
                                            {"name": "eknn", "kind": "exhaustiveKnn",
                                             "exhaustiveKnnParameters": {"metric": "dotProduct"}}],
                             "profiles": [{"name": "my-profile", "algorithm": "hnsw"},
                                          {"name": "small", "algorithm": "eknn"}]}},
            {"name": "faq", "fields": [{"name": "id", "type": "Edm.String", "key": True}]}],
        "stats": {"documents": {"documentCount": 48210, "storageSize": 912_000_000, "vectorIndexSize": 205_000_000},
                  "faq": {"documentCount": 120, "storageSize": 40_000, "vectorIndexSize": 0}},
        "indexers": [{"name": "documents-indexer", "description": "documents from OneLake",
                      "dataSourceName": "onelake-docs", "targetIndexName": "documents",
                      "schedule": {"interval": "PT1H", "startTime": "2026-11-01T00:00:00Z"},
                      "parameters": {"maxFailedItems": 10, "maxFailedItemsPerBatch": 5},
                      "fieldMappings": [], "disabled": False}],
        "datasources": [{"name": "onelake-docs", "description": "lh_docs files", "type": "onelake",
                         "credentials": {"connectionString": None},
                         "container": {"name": "lh_docs", "query": "Files/docs"},
                         "dataChangeDetectionPolicy": None, "dataDeletionDetectionPolicy": None,
                         "encryptionKey": None}],
        "indexer_status": {"documents-indexer": indexer_status("success")},
    }
