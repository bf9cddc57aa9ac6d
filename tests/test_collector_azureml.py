"""Azure ML collector against a local ARM / Azure Monitor / Log Analytics stub, with the real clients
(requests, azure-monitor-querymetrics MetricsClient, azure-monitor-query LogsQueryClient)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from collectors.azure_common import AzureHttp, AzureHttpError, enforce_https_for
from collectors.azureml_source import AzureMlSource, metrics_endpoint_for, parse_model_reference
from collectors.config import parse_config
from collectors.report import SourceReport
from collectors.runner import snapshot_source
from demo.azure_fixtures import AML_RG, AML_SUB, AML_WS, CHURN_HEALTH, churn_azureml, log_rows
from demo.azure_stub import AzureStub
from store import Store
from store import queries as q

NOW = datetime(2026, 11, 24, 12, 7, tzinfo=timezone.utc)


class TinyCredential:
    """A credential object as azure-identity's: get_token(*scopes) -> AccessToken."""

    def __init__(self):
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("test-token-not-a-secret", int(datetime.now(timezone.utc).timestamp()) + 3600)


def fixture(**kwargs):
    end = NOW.replace(minute=5)
    return {"azureml": churn_azureml(green_from_registry=True, **kwargs), "health": CHURN_HEALTH,
            "logs": {"rows": log_rows(CHURN_HEALTH, end, hours=2)}}


def source_config(stub: AzureStub, name: str = "aml", **extra):
    raw = {"name": name, "kind": "azureml", "platform": "azureml", "subscription_id": AML_SUB,
           "resource_group": AML_RG, "workspace": AML_WS, "arm_endpoint": stub.url,
           "metrics_endpoint": stub.url, "logs_endpoint": stub.url,
           "log_analytics_workspace_id": "11111111-2222-3333-4444-555555555555",
           "metrics_window_hours": 2, **extra}
    raw = {k: v for k, v in raw.items() if v is not None}   # None: leave the option out
    return parse_config({"sources": [raw]}).sources[0]


def collect(stub, **extra):
    report = SourceReport("aml")
    cred = TinyCredential()
    src = AzureMlSource(source_config(stub, **extra), report, credential=cred, now=lambda: NOW)
    mode, batches, state = src.collect(None, False)
    return report, batches, cred


@pytest.mark.parametrize("ref, expected", [
    (f"/subscriptions/{AML_SUB}/resourceGroups/{AML_RG}/providers/Microsoft.MachineLearningServices/workspaces/"
     f"{AML_WS}/models/churn-model/versions/2", ("workspace", "churn-model", "2", None)),
    ("azureml://registries/shared-reg/models/churn-model/versions/7", ("registry", "churn-model", "7", "shared-reg")),
    ("azureml:churn-model:3", ("short", "churn-model", "3", None)),
    ("azureml://locations/westeurope/workspaces/0000/models/m/versions/4", ("workspace_uri", "m", "4", None)),
    ("something-else", ("unparsed", None, None, None)),
])
def test_model_reference_formats(ref, expected):
    p = parse_model_reference(ref)
    assert (p["format"], p["name"], p["version"], p["registry"]) == expected


def test_endpoints_deployments_models_and_traffic_split():
    with AzureStub(fixture(), page_size=1) as stub:   # page size 1: every list follows nextLink
        report, batches, cred = collect(stub)
    endpoints = batches["aml_endpoints"].rows
    assert [e["endpoint"] for e in endpoints] == ["churn-aml"]
    assert endpoints[0]["traffic"] == {"blue": 90, "green": 10}
    assert endpoints[0]["provisioning_state"] == "Succeeded"
    deps = {d["deployment"]: d for d in batches["aml_deployments"].rows}
    assert (deps["blue"]["model_ref_format"], deps["blue"]["model_name"], deps["blue"]["model_version"]) == \
        ("workspace", "churn-model", "2")
    assert (deps["green"]["model_ref_format"], deps["green"]["model_registry"], deps["green"]["model_version"]) == \
        ("registry", "churn-registry", "3")
    assert deps["blue"]["instance_count"] == 2 and deps["blue"]["instance_type"] == "Standard_DS3_v2"
    versions = {v["version"]: v for v in batches["model_versions"].rows}
    assert set(versions) == {"1", "2", "3"} and versions["1"]["status"] == "ARCHIVED"
    assert stub.counts["aml.versions"] == 3       # three pages of one version each
    # Every ARM call carried the bearer token for the ARM scope; nothing was stored about it.
    assert ("https://management.azure.com/.default",) in cred.scopes
    assert "test-token" not in json.dumps([b.rows for b in batches.values()], default=str)


def test_metrics_by_deployment_and_status_class_and_resource_metrics():
    with AzureStub(fixture()) as stub:
        report, batches, _ = collect(stub)
        batch_calls = [r for r in stub.requests if r["route"] == "metrics.batch"]
    rows = batches["endpoint_metrics"].rows
    metrics = {(json.loads(r["labels"])["deployment"], r["metric"]) for r in rows}
    for dep in ("blue", "green"):
        for m in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "rpm_2xx", "rpm_4xx", "rpm_5xx",
                  "cpu_pct", "memory_pct", "log_requests", "log_5xx", "log_latency_p95_ms"):
            assert (dep, m) in metrics, (dep, m)
    # Only complete 5-minute bins before "now" (12:07 → up to 12:05, exclusive).
    latest = max(r["sampled_at"] for r in rows)
    assert latest < int(NOW.replace(minute=5).timestamp() * 1000)
    # The requests were the documented batch shape: namespace, names, filter by deployment/status class.
    filters = {r["query"].get("filter") for r in batch_calls}
    assert "deployment eq '*' and statusCodeClass eq '*'" in filters
    assert all(r["body"]["resourceids"] for r in batch_calls)
    assert not report.warnings, report.warnings


def test_partial_log_results_are_kept_and_reported():
    fx = fixture()
    fx["logs"]["partial_error"] = {"code": "PartialError", "message": "Query exceeded the row limit"}
    with AzureStub(fx) as stub:
        report, batches, _ = collect(stub)
    logged = [r for r in batches["endpoint_metrics"].rows if r["metric"].startswith("log_")]
    assert logged, "partial rows are kept"
    assert any("partial result kept" in w and "PartialError" in w for w in report.warnings), report.warnings


def test_throttled_arm_call_is_retried_after_retry_after():
    with AzureStub(fixture(), throttle={"aml.endpoints": 2}, retry_after=0) as stub:
        report, batches, _ = collect(stub)
        assert stub.counts["aml.endpoints"] == 3
    assert [e["endpoint"] for e in batches["aml_endpoints"].rows] == ["churn-aml"]


def test_wrong_workspace_fails_with_status_and_code_not_token():
    with AzureStub(fixture()) as stub:
        report = SourceReport("aml")
        src = AzureMlSource(source_config(stub, workspace="nope"), report, credential=TinyCredential(), now=lambda: NOW)
        with pytest.raises(AzureHttpError) as info:
            src.collect(None, False)
    assert info.value.status == 404 and "ResourceNotFound" in str(info.value)
    assert "test-token" not in str(info.value)


def test_bearer_tokens_are_never_sent_over_http_to_a_remote_host():
    http = AzureHttp(TinyCredential(), SourceReport("x"))
    with pytest.raises(ValueError, match="refusing to send a bearer token"):
        http.get("http://management.example.com/subscriptions", "https://management.azure.com/.default")
    assert enforce_https_for("https://westeurope.metrics.monitor.azure.com")
    assert enforce_https_for("http://metrics.example.com")
    assert not enforce_https_for("http://127.0.0.1:8080")


def test_snapshot_through_the_runner_stores_versioned_rows_and_appends_samples(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub(fixture()) as stub:
        config = source_config(stub)
        first = snapshot_source(store, config)
        assert first.ok, first.errors
        # Green is promoted: traffic moves; metric samples already stored are not added again.
        stub.fixture["azureml"] = churn_azureml(traffic={"blue": 0, "green": 100})
        second = snapshot_source(store, config)
        assert second.ok, second.errors
    endpoints = q.entity_as_of(store, "aml_endpoints")
    assert endpoints["traffic"].tolist() == [{"blue": 0, "green": 100}]
    before = q.entity_as_of(store, "aml_endpoints", as_of=first.snapshot_id)
    assert before["traffic"].tolist() == [{"blue": 90, "green": 10}]
    versions = q.entity_as_of(store, "model_versions")
    assert set(versions["platform"]) == {"azureml"} and len(versions) == 3
    samples = second.counts["endpoint_metrics"]
    assert samples["added"] + samples["changed"] < first.counts["endpoint_metrics"]["added"]


def test_archiving_a_version_or_a_model_is_a_status_change_not_a_deletion(tmp_path):
    """The model lists default to listViewType=ActiveOnly (as the stub does): an archived version
    must still be listed (listViewType=All) and recorded as ARCHIVED, never as removed."""
    store = Store(tmp_path / "w.duckdb")
    with AzureStub(fixture(), token="waymark-loopback-stub") as stub:
        config = source_config(stub, metrics_endpoint=stub.url)
        first = snapshot_source(store, config)
        assert first.ok, first.errors
        model = stub.fixture["azureml"]["models"][0]
        next(v for v in model["versions"] if v["name"] == "2")["properties"]["isArchived"] = True
        second = snapshot_source(store, config)
        model["properties"]["isArchived"] = True          # the whole model archived
        third = snapshot_source(store, config)
        listed = [r for r in stub.requests if r["route"] in ("aml.models", "aml.versions")]
    assert {r["query"].get("listViewType") for r in listed} == {"All"}
    assert second.ok and second.counts["model_versions"]["removed"] == 0
    assert second.counts["model_versions"]["changed"] == 1
    versions = q.entity_as_of(store, "model_versions").set_index("version")
    assert versions["status"].to_dict() == {"1": "ARCHIVED", "2": "ARCHIVED", "3": "READY"}
    assert third.ok and third.counts["registered_models"]["removed"] == 0
    assert third.counts["model_versions"]["removed"] == 0


def _wide_fixture(deployments: int = 5):
    """One endpoint with `deployments` deployments: 3 status classes each → more than 10 series."""
    fx = fixture()
    ep = fx["azureml"]["endpoints"][0]
    blue = ep["deployments"][0]
    ep["deployments"] = []
    for i in range(deployments):
        d = json.loads(json.dumps(blue))
        d["name"], d["id"] = f"d{i}", blue["id"].rsplit("/", 1)[0] + f"/d{i}"
        ep["deployments"].append(d)
    ep["properties"]["traffic"] = {f"d{i}": (100 if i == 0 else 0) for i in range(deployments)}
    fx["health"] = {"churn-aml": {f"d{i}": CHURN_HEALTH["churn-aml"]["blue"] for i in range(deployments)}}
    return fx


def test_filtered_metrics_ask_for_more_than_the_default_ten_series_per_resource():
    with AzureStub(_wide_fixture(5)) as stub:
        report, batches, _ = collect(stub, log_analytics_workspace_id=None)
        filtered = [r for r in stub.requests if r["route"] == "metrics.batch" and r["query"].get("filter")]
    got = {(json.loads(r["labels"])["deployment"], r["metric"]) for r in batches["endpoint_metrics"].rows
           if r["metric"].startswith("rpm_")}
    assert got == {(f"d{i}", f"rpm_{c}") for i in range(5) for c in ("2xx", "4xx", "5xx")}   # 15 series
    assert filtered and all(int(r["query"]["top"]) >= 15 for r in filtered)
    assert not report.warnings, report.warnings


def _two_regions():
    fx = fixture()
    north = json.loads(json.dumps(fx["azureml"]["endpoints"][0]))
    north["name"], north["location"] = "churn-north", "northeurope"
    north["id"] = north["id"].replace("churn-aml", "churn-north")
    for d in north["deployments"]:
        d["id"] = d["id"].replace("churn-aml", "churn-north")
    fx["azureml"]["endpoints"].append(north)
    fx["health"] = {**CHURN_HEALTH, "churn-north": CHURN_HEALTH["churn-aml"]}
    return fx


def test_metrics_are_queried_on_each_resources_own_regional_endpoint():
    with AzureStub(_two_regions()) as stub:
        report, batches, _ = collect(stub, metrics_endpoint=stub.url + "/{region}", log_analytics_workspace_id=None)
        calls = [r for r in stub.requests if r["route"] == "metrics.batch"]
    assert {r["path"].split("/")[1] for r in calls} == {"westeurope", "northeurope"}
    for r in calls:   # never a resource of another region in a call
        region = r["path"].split("/")[1]
        assert all(("churn-north" in rid) == (region == "northeurope") for rid in r["body"]["resourceids"])
    endpoints = {row["endpoint"] for row in batches["endpoint_metrics"].rows}
    assert endpoints == {"churn-aml", "churn-north"}
    assert not report.warnings, report.warnings


def test_a_resource_outside_the_endpoints_region_is_refused_and_reported():
    with AzureStub(_two_regions()) as stub:   # one fixed endpoint: the stub plays westeurope
        report, batches, _ = collect(stub, log_analytics_workspace_id=None)
    assert {row["endpoint"] for row in batches["endpoint_metrics"].rows} == {"churn-aml"}
    assert any("region northeurope" in w and "400" in w for w in report.warnings), report.warnings


@pytest.mark.parametrize("configured, region, expected", [
    ("https://{region}.metrics.monitor.azure.com", "northeurope", "https://northeurope.metrics.monitor.azure.com"),
    ("https://westeurope.metrics.monitor.azure.com", "eastus2", "https://eastus2.metrics.monitor.azure.com"),
    ("https://metrics.example.sovereign.cloud", "x", "https://metrics.example.sovereign.cloud"),
])
def test_metrics_endpoint_for_a_region(configured, region, expected):
    assert metrics_endpoint_for(configured, region) == expected
