"""Fabric collector against the local Fabric REST / OneLake table API stub: absolute continuationUri
paging, 429 with Retry-After, the schema-enabled lakehouse 400 and its fallback, the user-only
ML list APIs, shortcut targets."""
from __future__ import annotations

import pytest

from collectors.azure_common import AzureHttpError, _error
from collectors.config import parse_config
from collectors.fabric_source import FabricSource, shortcut_target_location
from collectors.report import SourceReport
from collectors.runner import snapshot_source
from demo.azure_fixtures import FABRIC_WS, LH_PLAIN, LH_SCHEMAS, churn_fabric
from demo.azure_stub import AzureStub
from store import Store
from store import queries as q
from tests.test_collector_azureml import TinyCredential


def config(stub, **extra):
    raw = {"name": "fab", "kind": "fabric", "platform": "fabric", "workspace_id": FABRIC_WS,
           "fabric_endpoint": f"{stub.url}/v1", "onelake_table_endpoint": stub.url, **extra}
    return parse_config({"sources": [raw]}).sources[0]


def collect(stub, **extra):
    report = SourceReport("fab")
    cred = TinyCredential()
    _, batches, _ = FabricSource(config(stub, **extra), report, credential=cred).collect(None, False)
    return report, batches, cred


def test_items_with_mlflow_experiment_id_following_absolute_continuation_uri():
    with AzureStub({"fabric": churn_fabric()}, page_size=1) as stub:
        report, batches, cred = collect(stub)
        typed = [r for r in stub.requests if r["route"] == "fabric.typed"]
    items = {i["display_name"]: i for i in batches["fabric_items"].rows}
    assert set(items) == {"churn_model", "customer-churn", "lh_churn", "lh_features"}
    assert items["customer-churn"]["mlflow_experiment_id"] == "1"
    assert items["lh_features"]["schema_enabled"] is True and items["lh_churn"]["schema_enabled"] is False
    # Lakehouses come in two pages: the second request is the continuationUri (token in the query).
    lakehouse_calls = [r for r in typed if r["path"].endswith("/lakehouses")]
    assert len(lakehouse_calls) == 2 and lakehouse_calls[1]["query"].get("continuationToken") == "1"
    assert ("https://api.fabric.microsoft.com/.default",) in cred.scopes
    assert not report.warnings, report.warnings


def test_lakehouse_tables_page_under_data_and_schema_enabled_lakehouses_use_onelake():
    with AzureStub({"fabric": churn_fabric()}, page_size=2) as stub:
        report, batches, cred = collect(stub)
        assert stub.counts["fabric.tables"] == 2   # plain lakehouse: 3 tables in 2 pages under `data`
        assert stub.counts["onelake.tables"] == 2  # schema-enabled (defaultSchema): one call per schema
    tables = batches["fabric_tables"].rows
    plain = sorted(t["table_name"] for t in tables if t["lakehouse_id"] == LH_PLAIN)
    assert plain == ["churn_scores_0", "churn_scores_1", "churn_scores_2"]
    schema = {(t["schema_name"], t["table_name"]): t for t in tables if t["lakehouse_id"] == LH_SCHEMAS}
    assert set(schema) == {("dbo", "churn_features"), ("gold", "holdout")}
    assert {t["listed_via"] for t in schema.values()} == {"onelake_table_api"}
    assert schema[("dbo", "churn_features")]["location"].endswith("/Tables/dbo/churn_features")
    assert ("https://storage.azure.com/.default",) in cred.scopes   # OneLake table API scope
    assert not report.warnings


def test_schema_enabled_400_falls_back_to_the_onelake_table_api():
    fabric = churn_fabric()
    ws = fabric[FABRIC_WS]
    lakehouse = next(i for i in ws["items"] if i["id"] == LH_SCHEMAS)
    del lakehouse["properties"]["defaultSchema"]          # not advertised: List Tables is tried first
    ws["schema_enabled"] = [LH_SCHEMAS]
    with AzureStub({"fabric": fabric}) as stub:
        report, batches, _ = collect(stub)
        table_calls = [r for r in stub.requests if r["route"] == "fabric.tables"]
    assert [r["path"].split("/")[-2] for r in table_calls] == [LH_PLAIN, LH_SCHEMAS]
    fallback = [t for t in batches["fabric_tables"].rows if t["lakehouse_id"] == LH_SCHEMAS]
    assert {t["table_name"] for t in fallback} == {"churn_features", "holdout"}
    assert not report.warnings   # the documented 400 is handled, not a problem to report


def test_throttling_is_retried_after_retry_after():
    with AzureStub({"fabric": churn_fabric()}, throttle={"fabric.typed": 2, "fabric.tables": 1},
                   retry_after=0) as stub:
        report, batches, _ = collect(stub)
    assert len(batches["fabric_items"].rows) == 4
    assert any(t["lakehouse_id"] == LH_PLAIN for t in batches["fabric_tables"].rows)


def test_user_only_ml_lists_fall_back_to_items_for_a_service_principal():
    with AzureStub({"fabric": churn_fabric()}, user_only_forbidden=True) as stub:
        report, batches, _ = collect(stub)
        assert stub.counts["fabric.items"] == 2
    items = {i["display_name"]: i for i in batches["fabric_items"].rows}
    assert items["churn_model"]["listed_via"] == "items"
    assert items["customer-churn"]["mlflow_experiment_id"] is None   # the generic list has no properties
    assert items["lh_churn"]["listed_via"] == "typed"
    assert sum("/items?type=" in w for w in report.warnings) == 2
    # The refusal Fabric sends a service principal: 400 with error code PrincipalTypeNotSupported.
    assert all("400 PrincipalTypeNotSupported" in w for w in report.warnings), report.warnings


def test_another_400_on_a_typed_list_is_an_error_not_a_fallback():
    with AzureStub({"fabric": churn_fabric()}, fail={"fabric.typed@/mlModels": 400}) as stub:
        with pytest.raises(AzureHttpError) as info:
            collect(stub)
        assert stub.counts["fabric.items"] == 0
    assert info.value.status == 400 and info.value.code == "Failed"


def test_the_error_code_is_read_from_fabrics_header_when_the_body_has_none():
    import requests

    resp = requests.Response()
    resp.status_code, resp._content = 400, b""
    resp.headers["x-ms-public-api-error-code"] = "PrincipalTypeNotSupported"
    err = _error(resp, "https://api.fabric.microsoft.com/v1/workspaces/w/mlModels")
    assert (err.status, err.code) == (400, "PrincipalTypeNotSupported")


def test_shortcut_targets_are_normalised_to_storage_urls():
    with AzureStub({"fabric": churn_fabric("abfss://gold@churnlake.dfs.core.windows.net/churn/features")}) as stub:
        _, batches, _ = collect(stub)
    cuts = {s["name"]: s for s in batches["fabric_shortcuts"].rows}
    assert cuts["uc_features"]["target_location"] == "abfss://gold@churnlake.dfs.core.windows.net/churn/features"
    assert cuts["shared_scores"]["target_type"] == "OneLake"
    assert cuts["shared_scores"]["target_location"].startswith(f"abfss://{FABRIC_WS}@onelake.dfs.fabric.microsoft.com/")
    assert cuts["uc_features"]["onelake_path"].endswith(f"{LH_SCHEMAS}/Tables/dbo/uc_features")


@pytest.mark.parametrize("target, expected", [
    ({"type": "AdlsGen2", "adlsGen2": {"location": "https://acct.dfs.core.windows.net/", "subpath": "/c/a/b/"}},
     "abfss://c@acct.dfs.core.windows.net/a/b"),
    ({"type": "AmazonS3", "amazonS3": {"location": "https://bucket.s3.amazonaws.com", "subpath": "/x"}},
     "https://bucket.s3.amazonaws.com/x"),
    ({"type": "Dataverse", "dataverse": {}}, None),
])
def test_shortcut_target_location(target, expected):
    assert shortcut_target_location(target) == expected


def test_snapshot_through_the_runner_with_the_loopback_credential(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"fabric": churn_fabric()}, token="waymark-loopback-stub") as stub:
        outcome = snapshot_source(store, config(stub))
    assert outcome.ok, outcome.errors
    items = q.entity_as_of(store, "fabric_items")
    assert set(items["platform"]) == {"fabric"} and len(items) == 4
    assert len(q.entity_as_of(store, "fabric_tables")) == 5
