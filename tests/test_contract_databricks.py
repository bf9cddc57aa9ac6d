"""Contract tests: the Databricks stub against shapes nobody here wrote.

1. Every JSON body the stub serves round-trips through the databricks-sdk dataclass the real client
   parses it with (`X.from_dict(body).as_dict() == body`): a key the SDK does not know, or a value
   of the wrong type, fails.
2. Where an example body exists (`tests/fixtures/databricks/`, SDK-assembled or from DataHub's
   reader; see the README there), the stub fed with the example's records serves exactly the keys
   and types of the example (a recursive shape check), and the project's own fixtures (tests and
   demo) never give a key the example has a different type.
3. The collector turns the example bodies into the expected rows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.databricks_demo import build_fixture
from demo.databricks_stub import DatabricksStub
from tests.test_collector_databricks import TOKEN, base_workspace, rows, snapshot, token_env  # noqa: F401 (fixture)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "databricks"


def example(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))["responses"]["200"]["body"]


# -- shapes ----------------------------------------------------------------------------------------
def shape(value: Any) -> Any:
    """Keys and types, recursively; a list's shape is the union of its items' shapes."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        merged: Any = None
        for item in value:
            merged = _merge(merged, shape(item))
        return [merged]
    return "bool" if isinstance(value, bool) else type(value).__name__


def _merge(a: Any, b: Any) -> Any:
    if a is None or b is None:   # a key only some items have: its shape is the one it has
        return b if a is None else a
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge(a.get(k), b.get(k)) for k in sorted(set(a) | set(b))}
    if isinstance(a, list) and isinstance(b, list):
        return [_merge(a[0], b[0])]
    return a if a == b else f"{a}|{b}"


def type_conflicts(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """Keys both shapes have whose types differ (keys only one side has are not conflicts)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [c for k in set(ours) & set(theirs) for c in type_conflicts(ours[k], theirs[k], f"{path}.{k}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        return type_conflicts(ours[0], theirs[0], path + "[]") if ours[0] is not None and theirs[0] is not None else []
    if isinstance(ours, (dict, list)) or isinstance(theirs, (dict, list)) or ours != theirs:
        return [] if ours == theirs else [f"{path}: ours {ours}, example {theirs}"]
    return []


def test_the_shape_check_sees_a_missing_key_and_a_type_change():
    body = example("ListModelVersions")
    item = dict(body["model_versions"][0])
    del item["run_id"]
    assert shape({"model_versions": [item]}) != shape({"model_versions": [body["model_versions"][0]]})
    item = {**body["model_versions"][0], "version": "2"}
    assert type_conflicts(shape(item), shape(body["model_versions"][0])) == [".version: ours str, example int"]


# -- the stub fed with the examples' own records ------------------------------------------------------
MODEL, OTHER = "main.ml.churn_model", "main.ml.fraud_model"
TABLE = "main.features.customer_features"   # the versions' table dependency, so the collector walks its lineage


def example_workspace() -> dict[str, Any]:
    lineage = example("GetTableLineage")
    up_table, up_file = lineage["upstreams"]
    down = lineage["downstreams"][0]

    def full(info: dict[str, str]) -> str:
        return f"{info['catalog_name']}.{info['schema_name']}.{info['name']}"

    file_info = {k: v for k, v in up_file["fileInfo"].items() if k != "path"}
    return {
        "registered_models": example("ListRegisteredModels")["registered_models"],
        "model_versions": {MODEL: example("ListModelVersions")["model_versions"]},
        "serving_endpoints": [example("GetServingEndpoint")],
        "lineage": {TABLE: [{"table": full(up_table["tableInfo"]), "notebookInfos": up_table["notebookInfos"]},
                            {"file": up_file["fileInfo"]["path"], "fileInfo": file_info}],
                    full(down["tableInfo"]): [{"table": TABLE, "notebookInfos": down["notebookInfos"]}]},
    }


def _get(stub: DatabricksStub, path: str, **query: Any) -> dict[str, Any]:
    response = requests.get(stub.url + path, params=query, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    response.raise_for_status()
    return response.json()


EXAMPLE_CALLS = {   # example file -> (path, query) on the stub
    "GetRegisteredModel_include_aliases": (f"/api/2.1/unity-catalog/models/{MODEL}", {"include_aliases": "true"}),
    "ListRegisteredModels": ("/api/2.1/unity-catalog/models",
                             {"catalog_name": "main", "schema_name": "ml", "max_results": 1}),
    "ListModelVersions": (f"/api/2.1/unity-catalog/models/{MODEL}/versions", {"max_results": 100}),
    "GetServingEndpoint": ("/api/2.0/serving-endpoints/churn-endpoint", {}),
    "GetTableLineage": ("/api/2.0/lineage-tracking/table-lineage",
                        {"table_name": TABLE, "include_entity_lineage": "true"}),
}


@pytest.fixture(scope="module")
def example_stub():
    with DatabricksStub(example_workspace(), token=TOKEN) as stub:
        yield stub


@pytest.mark.parametrize("name", list(EXAMPLE_CALLS))
def test_stub_serves_exactly_the_keys_and_types_of_the_example(example_stub, name):
    path, query = EXAMPLE_CALLS[name]
    assert shape(_get(example_stub, path, **query)) == shape(example(name))


# -- every stub body through the SDK's dataclasses -------------------------------------------------------
def _sdk_classes():
    from databricks.sdk.service import catalog, jobs, ml, serving, vectorsearch

    return {
        "uc.schemas.list": catalog.ListSchemasResponse, "uc.models.list": catalog.ListRegisteredModelsResponse,
        "uc.models.get": catalog.RegisteredModelInfo, "uc.versions.list": catalog.ListModelVersionsResponse,
        "uc.versions.get": catalog.ModelVersionInfo, "uc.tables.list": catalog.ListTablesResponse,
        "uc.tables.get": catalog.TableInfo, "features.list": ml.ListFeaturesResponse,
        "features.materialized.list": ml.ListMaterializedFeaturesResponse, "features.lineage": ml.FeatureLineage,
        "serving.list": serving.ListEndpointsResponse, "serving.get": serving.ServingEndpointDetailed,
        "vs.endpoints.list": vectorsearch.ListEndpointResponse,
        "vs.indexes.list": vectorsearch.ListVectorIndexesResponse, "vs.indexes.get": vectorsearch.VectorIndex,
        "jobs.runs.get": jobs.Run,
    }


def round_trip_differences(cls, body: dict[str, Any]) -> list[str]:
    """Where `cls.from_dict(body).as_dict()` differs from `body` (a key dropped, a value changed)."""
    back = cls.from_dict(body).as_dict()

    def diff(a: Any, b: Any, path: str) -> list[str]:
        if isinstance(a, dict) and isinstance(b, dict):
            return ([f"{path}.{k}: not in {cls.__name__}" for k in set(a) - set(b)]
                    + [f"{path}.{k}: added" for k in set(b) - set(a)]
                    + [d for k in set(a) & set(b) for d in diff(a[k], b[k], f"{path}.{k}")])
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
        return [] if (a == b and type(a) is type(b)) else [f"{path}: {a!r} became {b!r}"]

    return diff(body, back, "")


def test_the_round_trip_check_sees_a_dropped_key():
    from databricks.sdk.service import catalog

    body = {**example("GetRegisteredModel_include_aliases"), "owner_team": "churn"}
    assert round_trip_differences(catalog.RegisteredModelInfo, body) == [".owner_team: not in RegisteredModelInfo"]
    assert round_trip_differences(catalog.RegisteredModelInfo, example("GetRegisteredModel_include_aliases")) == []


def _demo_workspace() -> dict[str, Any]:
    runs = {name: {"run_id": f"{i:032x}", "start_time": 1_700_000_000_000 + i, "end_time": 1_700_000_100_000 + i,
                   "job_run_id": str(900 + i)} for i, name in enumerate(
        ("gbm-baseline", "gbm-tuned-depth", "gbm-new-features", "gbm-retrain-nov"))}
    return build_fixture(runs, {name: "a" * 40 for name in runs}, 1_700_000_000_000)


def _crawl(workspace: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every JSON body the stub serves for a workspace, by route: each list, each item's get."""
    out: dict[str, list[dict[str, Any]]] = {}
    with DatabricksStub(workspace, token=TOKEN) as stub:
        def get(route: str, path: str, **query: Any) -> dict[str, Any]:
            body = _get(stub, path, **query)
            out.setdefault(route, []).append(body)
            return body

        catalogs = {m["catalog_name"] for m in workspace.get("registered_models", [])} | {
            t["catalog_name"] for t in workspace.get("tables", [])}
        for c in sorted(catalogs):
            for s in get("uc.schemas.list", "/api/2.1/unity-catalog/schemas", catalog_name=c).get("schemas", []):
                get("uc.models.list", "/api/2.1/unity-catalog/models", catalog_name=c, schema_name=s["name"])
                get("uc.tables.list", "/api/2.1/unity-catalog/tables", catalog_name=c, schema_name=s["name"])
                get("features.list", "/api/2.0/feature-engineering/features", catalog_name=c, schema_name=s["name"])
        for m in workspace.get("registered_models", []):
            get("uc.models.get", f"/api/2.1/unity-catalog/models/{m['full_name']}", include_aliases="true")
            for v in get("uc.versions.list", f"/api/2.1/unity-catalog/models/{m['full_name']}/versions"
                         ).get("model_versions", []):
                get("uc.versions.get", f"/api/2.1/unity-catalog/models/{m['full_name']}/versions/{v['version']}",
                    include_aliases="true")
        for t in workspace.get("tables", []):
            get("uc.tables.get", f"/api/2.1/unity-catalog/tables/{t['full_name']}")
        get("features.materialized.list", "/api/2.0/feature-engineering/materialized-features")
        for key in workspace.get("feature_lineage", {}):
            table, feature = key.split("|")
            get("features.lineage", f"/api/2.0/feature-store/feature-tables/{table}/features/{feature}/lineage")
        for e in get("serving.list", "/api/2.0/serving-endpoints").get("endpoints", []):
            get("serving.get", f"/api/2.0/serving-endpoints/{e['name']}")
        for e in get("vs.endpoints.list", "/api/2.0/vector-search/endpoints").get("endpoints", []):
            for i in get("vs.indexes.list", "/api/2.0/vector-search/indexes", endpoint_name=e["name"]
                         ).get("vector_indexes", []):
                get("vs.indexes.get", f"/api/2.0/vector-search/indexes/{i['name']}")
        for r in workspace.get("job_runs", []):
            get("jobs.runs.get", "/api/2.2/jobs/runs/get", run_id=r["run_id"])
        for down in workspace.get("lineage", {}):
            get("lineage.table", "/api/2.0/lineage-tracking/table-lineage", table_name=down,
                include_entity_lineage="true")
    return out


WORKSPACES = {"tests": base_workspace, "demo": _demo_workspace, "examples": example_workspace}


@pytest.fixture(scope="module", params=list(WORKSPACES))
def crawled(request):
    return request.param, _crawl(WORKSPACES[request.param]())


def test_every_stub_body_round_trips_through_the_sdk_dataclasses(crawled):
    name, bodies = crawled
    classes = _sdk_classes()
    problems = [f"{route}: {d}" for route, items in bodies.items() if route in classes
                for body in items for d in round_trip_differences(classes[route], body)]
    assert problems == [], f"{name} workspace"
    if name != "examples":   # the project's fixtures reach every route the collector parses
        assert set(classes) <= set(bodies), sorted(set(classes) - set(bodies))


def test_our_fixtures_never_give_an_example_key_another_type(crawled):
    name, bodies = crawled
    pairs = {"uc.models.list": "ListRegisteredModels", "uc.versions.list": "ListModelVersions",
             "uc.models.get": "GetRegisteredModel_include_aliases", "serving.get": "GetServingEndpoint",
             "lineage.table": "GetTableLineage"}
    problems = [f"{route}{c}" for route, ex in pairs.items() for body in bodies.get(route, [])
                for c in type_conflicts(shape(body), shape(example(ex)))]
    assert problems == [], f"{name} workspace"


# -- the collector on the example bodies -------------------------------------------------------------
def test_collector_turns_the_example_bodies_into_rows(tmp_path, token_env):
    with DatabricksStub(example_workspace(), token=TOKEN) as stub:
        outcome, store = snapshot(tmp_path, stub, catalogs=["main"], metrics=False)
    assert outcome.ok, outcome.errors
    assert set(rows(store, "registered_models")["name"]) == {MODEL, OTHER}
    versions = rows(store, "model_versions").set_index(["name", "version"])
    assert set(versions.index) == {(MODEL, "1"), (MODEL, "2")}
    assert versions.loc[(MODEL, "2")]["run_id"] == "0123456789abcdef0123456789abcdef"
    assert versions.loc[(MODEL, "2")]["aliases"] == ["champion"] and versions.loc[(MODEL, "2")]["status"] == "READY"
    assert {(r.name, r.alias, r.version) for r in rows(store, "model_aliases").itertuples()} == {(MODEL, "champion", "2")}
    deps = {(r.version, r.dependency_type, r.dependency_name) for r in rows(store, "model_version_dependencies").itertuples()}
    assert ("2", "table", "main.features.customer_features") in deps
    assert rows(store, "uc_model_versions").set_index(["name", "version"]).loc[(MODEL, "2")]["run_workspace_id"] \
        == 1234567890123456
    served = {(r.served_entity_name, r.entity_name, r.entity_version, r.traffic_pct, r.deployment_state)
              for r in rows(store, "served_entities").itertuples()}
    assert served == {("churn_model-2", MODEL, "2", 90, "DEPLOYMENT_READY"),
                      ("churn_model-1", MODEL, "1", 10, "DEPLOYMENT_READY")}
    endpoint = rows(store, "serving_endpoints").set_index("name").loc["churn-endpoint"]
    assert endpoint["config_version"] == 3 and endpoint["tags"] == {"team": "ml"} and endpoint["ready"] == "READY"
    lineage = {(r.upstream, r.downstream, r.upstream_kind) for r in rows(store, "table_lineage").itertuples()}
    assert lineage == {("main.bronze.orders_raw", TABLE, "table"),
                       ("abfss://landing@account.dfs.core.windows.net/orders/", TABLE, "file")}
    edge = rows(store, "table_lineage").set_index("upstream").loc["main.bronze.orders_raw"]
    assert edge["notebook_ids"] == ["1234567890123456"]

