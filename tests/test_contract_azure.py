"""Contract tests against shapes nobody here wrote (issue 11.2): the official example bodies of Azure
ML, Fabric, AI Search and Azure Monitor in tests/fixtures/ (sources in tests/fixtures/README.md).

1. The Azure stub serves bodies with exactly the keys and types of those examples (a recursive shape
   check), apart from a short, cited list of keys the specifications document but the examples omit.
2. Each collector turns the official example bodies, served as they are, into the expected rows.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from collectors.config import parse_config
from collectors.fabric_source import FabricSource
from collectors.report import SourceReport
from collectors.search_source import SearchSource
from demo.azure_fixtures import (AML_RG, AML_SUB, AML_WS, CHURN_HEALTH, FABRIC_WS, LH_PLAIN, aml_workspace_id,
                                 churn_azureml, churn_fabric, churn_search, log_rows)
from demo.azure_stub import AzureStub
from tests.test_collector_azureml import NOW, TinyCredential, collect as collect_aml

FIXTURES = Path(__file__).parent / "fixtures"


def example(path: str, status: str = "200") -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))["responses"][status]["body"]


# -- the shape check -------------------------------------------------------------------------------
# Paths are dotted keys with `[]` for list items; `*` stands for any key of a map.
# Objects whose keys are data (additionalProperties maps): only their values' types are compared.
MAPS = {"tags", "properties.properties", "properties.traffic", "properties.mirrorTraffic",
        "properties.environmentVariables", "properties.flavors", "properties.flavors.*.data",
        "properties.tags", "identity.userAssignedIdentities", "text.weights"}
# Keys present only on some items or pages (paging markers vanish on the last page; Fabric
# "removed from the response").
OPTIONAL = {"nextLink", "continuationToken", "continuationUri"}


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def shape_errors(expected: Any, actual: Any, path: str = "", *, extra: dict[str, Any] | None = None,
                 nullable: frozenset[str] = frozenset()) -> list[str]:
    """Where `actual` differs from `expected` in keys or types. `extra`: path → allowed keys the
    spec documents beyond the example; `nullable`: paths the spec marks nullable."""
    extra = extra or {}
    where = path or "<body>"
    generic = _generic(path)
    if actual is None and (expected is None or generic in nullable):
        return []
    if expected is None:   # a null in an example says nothing about the type
        return []
    if _kind(expected) != _kind(actual):
        return [f"{where}: expected {_kind(expected)}, got {_kind(actual)}"]
    if isinstance(expected, dict):
        if generic in MAPS:
            sample = next(iter(expected.values()), None)
            return [e for k, v in actual.items() if sample is not None
                    for e in shape_errors(sample, v, f"{path}.{k}" if path else k, extra=extra, nullable=nullable)]
        errors = []
        allowed_extra = set(extra.get(generic, ()))
        missing = set(expected) - set(actual) - OPTIONAL
        unknown = set(actual) - set(expected) - allowed_extra
        errors += [f"{where}: missing key {k!r}" for k in sorted(missing)]
        errors += [f"{where}: key {k!r} is not in the example" for k in sorted(unknown)]
        for k in set(expected) & set(actual):
            errors += shape_errors(expected[k], actual[k], f"{path}.{k}" if path else k, extra=extra, nullable=nullable)
        return errors
    if isinstance(expected, list):
        samples = [e for e in expected if e is not None]
        errors = []
        for i, item in enumerate(actual):
            if not samples:
                break
            # Items of one list may differ (indexers with and without a schedule, shortcut targets
            # of several kinds): an item must match one of the example's items.
            tries = [shape_errors(s, item, f"{path}[]", extra=extra, nullable=nullable) for s in samples]
            if all(tries):
                errors += [f"{path}[{i}]: " + "; ".join(min(tries, key=len))]
        return errors
    return []


def _generic(path: str) -> str:
    """A path as the rules above name it: relative to a list item (`value[].properties.traffic` →
    `properties.traffic`), with `*` for the entries of a map (`properties.flavors.*.data`)."""
    parts = [p for p in path.replace("[]", "").split(".") if p]
    if parts and parts[0] in ("value", "data"):
        parts = parts[1:]
    for i in range(len(parts)):
        if ".".join(parts[:i]) in MAPS and i > 0:
            parts[i] = "*"
    return ".".join(p for p in parts if p)


def test_the_shape_check_catches_a_missing_key_an_unknown_key_and_a_wrong_type():
    expected = {"value": [{"id": "x", "n": 1, "tags": {"k": "v"}}]}
    assert shape_errors(expected, {"value": [{"id": "y", "n": 2, "tags": {"a": "b", "c": "d"}}]}) == []
    assert "missing key 'n'" in shape_errors(expected, {"value": [{"id": "y", "tags": {}}]})[0]
    assert "'zz' is not in the example" in shape_errors(expected, {"value": [{"id": "y", "n": 2, "tags": {},
                                                                               "zz": 1}]})[0]
    assert "expected number, got str" in shape_errors(expected, {"value": [{"id": "y", "n": "2", "tags": {}}]})[0]
    assert "expected str, got number" in shape_errors(expected, {"value": [{"id": "y", "n": 2, "tags": {"a": 1}}]})[0]


# -- 1. the stub serves the examples' shapes --------------------------------------------------------
# Keys the specifications document that the official examples happen to omit (tests/fixtures/README.md):
SPEC_ONLY = {
    # mfe.json 2024-04-01 #/definitions/OnlineEndpoint: mirrorTraffic, publicNetworkAccess.
    "aml.endpoints": {"properties": {"mirrorTraffic", "publicNetworkAccess"}},
    # #/definitions/AssetContainer: isArchived, latestVersion (readOnly), nextVersion (readOnly).
    "aml.models": {"properties": {"isArchived", "latestVersion", "nextVersion"}},
    # #/definitions/AssetBase: isArchived (default false).
    "aml.versions": {"properties": {"isArchived"}},
    # Fabric lakehouse/definitions.json L61-63: defaultSchema "returned only for schema enabled lakehouse".
    "fabric.typed": {"properties": {"defaultSchema"}},
    # AI Search: vector search (SearchIndex.vectorSearch, SearchField.dimensions/vectorSearchProfile,
    # complex fields' `fields`) — in the 2024-07-01 spec, absent from the 2023-11-01 list example.
    "search.indexes": {"": {"vectorSearch"}, "fields": {"dimensions", "vectorSearchProfile", "fields"}},
    # Fabric Target.adlsGen2 (no ADLS shortcut in the official ListShortcuts example).
    "fabric.shortcuts": {"target": {"adlsGen2"}},
}
NULLABLE = {"aml.endpoints": frozenset({"properties.compute"}),   # mfe.json: compute x-nullable
            "search.indexer_status": frozenset({"lastResult"}),         # an indexer that never ran
            # Optional objects; the official index list example itself returns `encryptionKey: null`.
            "search.datasources": frozenset({"encryptionKey", "dataChangeDetectionPolicy",
                                             "dataDeletionDetectionPolicy"})}


def _get(stub: AzureStub, path: str, **params: Any) -> Any:
    r = requests.get(stub.url + path, params=params, headers={"Authorization": "Bearer t"}, timeout=10)
    assert r.status_code == 200, (path, r.text)
    return r.json()


AML = aml_workspace_id()
SEARCH = {"api-version": "2024-07-01"}
STUB_ROUTES = [
    # route, request path (+ query), official example
    ("aml.endpoints", f"{AML}/onlineEndpoints", {"api-version": "2024-04-01"},
     "azureml/2024-04-01/Workspace/OnlineEndpoint/list.json"),
    ("aml.deployments", f"{AML}/onlineEndpoints/churn-aml/deployments", {"api-version": "2024-04-01"},
     "azureml/2024-10-01/OnlineDeployment/ManagedOnlineDeployment/get.json"),
    ("aml.models", f"{AML}/models", {"api-version": "2024-04-01", "listViewType": "All"},
     "azureml/2024-10-01/Workspace/ModelContainer/list.json"),
    ("aml.versions", f"{AML}/models/churn-model/versions", {"api-version": "2024-04-01", "listViewType": "All"},
     "azureml/2024-10-01/Workspace/ModelVersion/list.json"),
    ("fabric.typed", f"/v1/workspaces/{FABRIC_WS}/mlModels", {}, "fabric/mlModel/ListMLModelsInWorkspace.json"),
    ("fabric.typed", f"/v1/workspaces/{FABRIC_WS}/mlExperiments", {},
     "fabric/mlExperiment/ListMLExperimentsInWorkspace.json"),
    ("fabric.typed", f"/v1/workspaces/{FABRIC_WS}/lakehouses", {}, "fabric/lakehouse/ListLakehousesInWorkspace.json"),
    ("fabric.items", f"/v1/workspaces/{FABRIC_WS}/items", {"type": "MLModel"},
     "fabric/platform/ListItemsInWorkspace.json"),
    ("fabric.items", f"/v1/workspaces/{FABRIC_WS}/items", {}, "fabric/platform/ListItemsInWorkspaceWithContinuation.json"),
    ("fabric.tables", f"/v1/workspaces/{FABRIC_WS}/lakehouses/{LH_PLAIN}/tables", {"maxResults": "2"},
     "fabric/lakehouse/ListTables.json"),
    ("fabric.shortcuts", f"/v1/workspaces/{FABRIC_WS}/items/a1b2c3d4-0000-4000-8000-000000000002/shortcuts", {},
     "fabric/platform/ListShortcuts.json"),
    ("search.indexes", "/indexes", SEARCH, "aisearch/2023-11-01/SearchServiceListIndexes.json"),
    ("search.stats", "/indexes('documents')/search.stats", SEARCH, "aisearch/2024-07-01/SearchServiceGetIndexStatistics.json"),
    ("search.indexers", "/indexers", SEARCH, "aisearch/2024-07-01/SearchServiceListIndexers.json"),
    ("search.indexer_status", "/indexers('documents-indexer')/search.status", SEARCH,
     "aisearch/2024-07-01/SearchServiceGetIndexerStatus.json"),
    ("search.indexer_status", "/indexers('never-ran')/search.status", SEARCH,
     "aisearch/2024-07-01/SearchServiceGetIndexerStatus.json"),
    ("search.datasources", "/datasources", SEARCH, "aisearch/2025-09-01/SearchServiceListDataSources.json"),
]


@pytest.fixture(scope="module")
def churn_stub():
    fixture = {"azureml": churn_azureml(), "fabric": churn_fabric(), "search": churn_search(),
               "health": CHURN_HEALTH, "logs": {"rows": log_rows(CHURN_HEALTH, NOW.replace(minute=0), hours=1)}}
    with AzureStub(fixture, page_size=3) as stub:
        yield stub


@pytest.mark.parametrize("route, path, query, official", STUB_ROUTES,
                         ids=[f"{r[0]}:{r[3].rsplit('/', 1)[-1]}" for r in STUB_ROUTES])
def test_stub_bodies_have_the_keys_and_types_of_the_official_examples(churn_stub, route, path, query, official):
    body = _get(churn_stub, path, **query)
    expected = example(official)
    if route == "aml.deployments":   # the Managed example is a get; the list wraps the same items
        expected = {"value": [expected], "nextLink": "string"}
    for items_key in ("value", "data"):
        if items_key in expected:
            assert body.get(items_key), f"{route}: empty {items_key!r}: nothing was compared"
    assert shape_errors(expected, body, extra=SPEC_ONLY.get(route), nullable=NULLABLE.get(route, frozenset())) == []


def test_metrics_batch_and_log_query_bodies_have_the_official_shapes(churn_stub):
    ep = churn_azureml()["endpoints"][0]["id"]
    q = {"api-version": "2024-02-01", "starttime": "2026-11-24T10:00:00Z", "endtime": "2026-11-24T10:15:00Z",
         "interval": "PT5M", "metricnamespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
         "metricnames": "RequestsPerMinute", "aggregation": "average", "top": "10",
         "filter": "deployment eq '*' and statusCodeClass eq '*'"}
    r = requests.post(f"{churn_stub.url}/subscriptions/{AML_SUB}/metrics:getBatch", params=q,
                      json={"resourceids": [ep]}, headers={"Authorization": "Bearer t"}, timeout=10)
    assert r.status_code == 200, r.text
    body, expected = r.json(), example("monitor/2024-02-01/MetricBatchExample.json")
    # Aggregation keys of a data point follow the `aggregation` asked for (here average only).
    point = {"timeStamp": "2026-11-24T10:00:00Z", "average": 1.0}
    for value in expected["values"]:
        for metric in value["value"]:
            for ts in metric["timeseries"]:
                ts["data"] = [point]
    assert shape_errors(expected, body) == []
    dims = {d["name"]["value"] for v in body["values"] for m in v["value"] for ts in m["timeseries"]
            for d in ts["metadatavalues"]}
    assert dims == {"deployment", "statuscodeclass"}          # lower-cased, as the service returns them
    assert {v["namespace"] for v in body["values"]} == {q["metricnamespace"].lower()}

    r = requests.post(f"{churn_stub.url}/v1/workspaces/w/query", headers={"Authorization": "Bearer t"},
                      json={"query": "AmlOnlineEndpointTrafficLog | take 1", "timespan": "PT1H"}, timeout=10)
    logs = r.json()
    assert shape_errors({"tables": [{k: v for k, v in t.items() if k != "rows"}
                                    for t in example("monitor/loganalytics-v1/la-post-example.json")["tables"]]},
                        {"tables": [{k: v for k, v in t.items() if k != "rows"} for t in logs["tables"]]}) == []
    types = {c["name"]: c["type"] for c in logs["tables"][0]["columns"]}
    row = logs["tables"][0]["rows"][0]
    assert isinstance(row[list(types).index("log_requests")], str)   # long cells as strings, like the example


# -- 2. the collectors read the official bodies ----------------------------------------------------
def _aml_from_examples() -> dict[str, Any]:
    endpoint = copy.deepcopy(example("azureml/2024-04-01/Workspace/OnlineEndpoint/list.json")["value"][0])
    deployment = copy.deepcopy(example("azureml/2024-10-01/OnlineDeployment/ManagedOnlineDeployment/get.json"))
    kube = copy.deepcopy(example("azureml/2024-04-01/OnlineDeployment/list.json")["value"][0])
    kube["name"] = "kube"
    endpoint["deployments"] = [deployment, kube]
    container = copy.deepcopy(example("azureml/2024-10-01/Workspace/ModelContainer/list.json")["value"][0])
    container["versions"] = copy.deepcopy(example("azureml/2024-10-01/Workspace/ModelVersion/list.json")["value"])
    return {"subscription_id": AML_SUB, "resource_group": AML_RG, "workspace": AML_WS,
            "endpoints": [endpoint], "models": [container]}


def test_azure_ml_collector_reads_the_official_bodies():
    with AzureStub({"azureml": _aml_from_examples()}) as stub:
        report, batches, _ = collect_aml(stub, log_analytics_workspace_id=None)
    [ep] = batches["aml_endpoints"].rows
    assert (ep["endpoint"], ep["auth_mode"], ep["provisioning_state"], ep["traffic"]) == \
        ("string", "AMLToken", "Creating", {"string": 1})
    assert ep["scoring_uri"] == "https://www.contoso.com/example" and ep["mirror_traffic"] == {}
    deps = {d["deployment"]: d for d in batches["aml_deployments"].rows}
    assert deps["string"]["compute_type"] == "Managed" and deps["kube"]["compute_type"] == "Kubernetes"
    assert deps["string"]["instance_count"] == 1 and deps["string"]["instance_type"] == "string"
    assert deps["string"]["model_ref"] == "string" and deps["string"]["model_ref_format"] == "unparsed"
    assert any("model reference 'string' not understood" in w for w in report.warnings)
    [model] = batches["registered_models"].rows
    assert (model["name"], model["description"], model["tags"]) == \
        ("testContainer", "Model container description", {"tag1": "value1", "tag2": "value2"})
    assert model["creation_time"] == int(datetime(2020, 12, 1, 12, tzinfo=timezone.utc).timestamp() * 1000)
    [version] = batches["model_versions"].rows
    assert (version["name"], version["version"], version["status"], version["source_uri"], version["run_id"]) == \
        ("testContainer", "string", "READY", "string", None)


def _fabric_from_examples() -> dict[str, Any]:
    items = (example("fabric/mlModel/ListMLModelsInWorkspace.json")["value"]
             + example("fabric/mlExperiment/ListMLExperimentsInWorkspace.json")["value"]
             + example("fabric/lakehouse/ListLakehousesInWorkspace.json")["value"])
    ws = items[0]["workspaceId"]
    lakehouse = example("fabric/lakehouse/ListLakehousesInWorkspace.json")["value"][0]["id"]
    return {ws: {"items": copy.deepcopy(items), "tables": {lakehouse: example("fabric/lakehouse/ListTables.json")["data"]},
                 "shortcuts": {lakehouse: example("fabric/platform/ListShortcuts.json")["value"]}}}, ws, lakehouse


def test_fabric_collector_reads_the_official_bodies():
    fabric, ws, lakehouse = _fabric_from_examples()
    with AzureStub({"fabric": fabric}, page_size=2) as stub:
        raw = {"name": "fab", "kind": "fabric", "platform": "fabric", "workspace_id": ws,
               "fabric_endpoint": f"{stub.url}/v1", "onelake_table_endpoint": stub.url}
        report = SourceReport("fab")
        _, batches, _ = FabricSource(parse_config({"sources": [raw]}).sources[0], report,
                                     credential=TinyCredential()).collect(None, False)
    items = {i["display_name"]: i for i in batches["fabric_items"].rows}
    assert set(items) == {"MLModel_1", "MLModel_2", "MLExperiment_1", "MLExperiment_2", "Lakehouse_1", "Lakehouse_2"}
    assert items["MLExperiment_1"]["mlflow_experiment_id"] == "7b0f1b08-da51-4561-a0ed-c0a2833f50c0"
    assert items["MLModel_1"]["mlflow_experiment_id"] is None and items["Lakehouse_1"]["schema_enabled"] is False
    [table] = batches["fabric_tables"].rows
    assert (table["lakehouse_id"], table["table_name"], table["format"], table["listed_via"]) == \
        (lakehouse, "Table1", "Delta", "tables_api")
    cuts = {s["name"]: s for s in batches["fabric_shortcuts"].rows}
    assert len(cuts) == 6
    assert cuts["MyOneLakeShortcut"]["target_location"] == (
        "abfss://cfafbeb1-8037-4d0c-896e-a46fb27ff229@onelake.dfs.fabric.microsoft.com/"
        "56bac802-080d-4f73-8a42-1b406eb1fcac/Tables/myTablesFolder/someTableSubFolder")
    assert cuts["MyS3CompatibleShortcut"]["target_location"] == \
        "https://s3endpoint.contoso.com/contosoBucket/s3CompatibleDirectory"
    assert cuts["MyGCSShortcut"]["target_location"] == "https://gcs-contosoBucket.storage.googleapis.com/gcsDirectory"
    # A target with only its type (no access to its details) is a gap, not a crash.
    assert cuts["MyS3Shortcut"]["target_type"] == "AmazonS3" and cuts["MyS3Shortcut"]["target_location"] is None
    assert cuts["MyExternalDataShareShortcut"]["target_location"] is None
    assert not report.warnings, report.warnings


def test_search_collector_reads_the_official_bodies():
    indexers = example("aisearch/2024-07-01/SearchServiceListIndexers.json")["value"]
    for ixr in indexers:
        ixr["targetIndexName"] = "hotels"   # the example's indexers feed "orders", which is not listed
    search = {"indexes": example("aisearch/2023-11-01/SearchServiceListIndexes.json")["value"],
              "stats": {"hotels": example("aisearch/2024-07-01/SearchServiceGetIndexStatistics.json"),
                        "testindex": example("aisearch/2024-07-01/SearchServiceGetIndexStatistics.json")},
              "indexers": indexers, "datasources": example("aisearch/2025-09-01/SearchServiceListDataSources.json")["value"],
              "indexer_status": {"myindexer": example("aisearch/2024-07-01/SearchServiceGetIndexerStatus.json")}}
    with AzureStub({"search": search}) as stub:
        raw = {"name": "search", "kind": "azuresearch", "platform": "azureml", "search_endpoint": stub.url}
        report = SourceReport("search")
        _, batches, _ = SearchSource(parse_config({"sources": [raw]}).sources[0], report,
                                     credential=TinyCredential()).collect(None, False)
    rows = {r["index_name"]: r for r in batches["search_indexes"].rows}
    hotels = rows["hotels"]
    assert hotels["key_field"] == "hotelId" and hotels["vector_fields"] == []
    assert (hotels["document_count"], hotels["storage_size"], hotels["vector_index_size"]) == (239572, 72375920, 123456)
    assert len(hotels["fields"]) == 12 and rows["testindex"]["key_field"] == "id"
    assert hotels["indexers"] == [
        {"name": "myindexer", "data_source": "mydocdbdatasource", "data_source_type": "cosmosdb",
         "container": "myDocDbCollectionId", "status": "success"},
        {"name": "myotherindexer", "data_source": "myblobdatasource", "data_source_type": None,
         "container": None, "status": "running"}]   # no run yet: the overall status
    assert not report.warnings, report.warnings


def test_metrics_collector_reads_the_official_batch_body():
    """The official metrics:getBatch response (storage metrics) served for an online endpoint: empty
    buckets (`{"timeStamp"}` only) are skipped, lower-cased dimensions are read."""
    body = copy.deepcopy(example("monitor/2024-02-01/MetricBatchExample.json"))
    fx = {"azureml": churn_azureml(traffic={"blue": 100})}
    ep = fx["azureml"]["endpoints"][0]["id"]
    names = {"Ingress": "RequestLatency_P50", "Egress": "RequestLatency_P95"}
    for value in body["values"][:1]:
        value["resourceid"] = ep
        for metric in value["value"]:
            metric["id"] = f"{ep}/providers/Microsoft.Insights/metrics/{names[metric['name']['value']]}"
            metric["name"] = {"value": names[metric["name"]["value"]], "localizedValue": metric["name"]["value"]}
            for ts in metric["timeseries"]:
                for d in ts["metadatavalues"]:
                    if d["name"]["value"] == "apiname":
                        d["name"]["value"], d["value"] = "deployment", "blue"
    body["values"] = body["values"][:1]
    expected = {(m["name"]["value"], p["timeStamp"]): p["average"] for m in body["values"][0]["value"]
                for ts in m["timeseries"] for p in ts["data"] if "average" in p}
    assert any("average" not in p for m in body["values"][0]["value"] for ts in m["timeseries"]
               for p in ts["data"]), "the example has empty buckets"
    with AzureStub(fx, canned={"metrics.batch": body}) as stub:
        report, batches, _ = collect_aml(stub, log_analytics_workspace_id=None)
    latency = [r for r in batches["endpoint_metrics"].rows if r["metric"].startswith("latency_")]
    got = {(r["metric"], r["sampled_at"]) for r in latency}
    want = {({"RequestLatency_P50": "latency_p50_ms", "RequestLatency_P95": "latency_p95_ms"}[n],
             int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1000)) for n, t in expected}
    assert got == want
    assert {json.loads(r["labels"]).get("deployment") for r in latency} == {"blue"}
