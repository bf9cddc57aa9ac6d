"""The Databricks collector against a faulty stub workspace (tests/databricks_workspace.py): empty pages
carrying a token, 429 + Retry-After, 5xx then success, 403 on one catalog or table, a persistent server
error, an unreachable host; and a partial read never records a removal."""
from __future__ import annotations

import copy

import pytest

from collectors.config import load_config
from collectors.runner import snapshot_all
from demo.databricks_stub import DatabricksStub, Faults
from store.queries import entity_as_of
from tests.conftest import write_config
from tests.databricks_workspace import (MODEL, OTHER, SECRET_MODEL, TOKEN, base_workspace, dbx_source, rows,
                                        snapshot, version_fixture)
from tests.databricks_workspace import token_env  # noqa: F401  (fixture)


# -- faults ----------------------------------------------------------------------------------------
def test_empty_pages_with_tokens_429_and_5xx(tmp_path, token_env):
    ws = base_workspace()
    # 250 more models: several pages even at the maximum page size of 1000? no — force small pages
    # by paging versions (page size 100 by default on the server) with 230 versions of one model.
    ws["model_versions"][OTHER] = [version_fixture(OTHER, v, f"run-o{v}") for v in range(1, 231)]
    faults = Faults(empty_pages=True, throttle={"uc.models.get": 1, "serving.list": 1}, retry_after=1,
                    flaky={"uc.versions.list": 2, "serving.get": 1}, flaky_status=500)
    with DatabricksStub(ws, token=TOKEN, faults=faults) as stub:
        outcome, store = snapshot(tmp_path, stub)
    assert outcome.ok, outcome.errors
    versions = rows(store, "model_versions")
    assert len(versions[versions.name == OTHER]) == 230
    assert len(rows(store, "serving_endpoints")) == 3
    # Faults were really served: every throttled/flaky route was asked again and answered.
    assert stub.counts["uc.models.get"] == 3 + 1 and stub.counts["serving.list"] == 2
    assert outcome.warnings == []
    # The collector's request count (client side) matches what the stub saw, minus the host probe.
    assert outcome.api_calls == stub.total_requests - stub.counts["host_metadata"]


def test_forbidden_catalog_is_a_warning_not_a_failure(tmp_path, token_env):
    with DatabricksStub(base_workspace(), token=TOKEN, faults=Faults(forbidden_catalogs={"secret"})) as stub:
        outcome, store = snapshot(tmp_path, stub, catalogs=["main", "secret"])
    assert outcome.ok
    assert any("catalog secret" in w and "403" in w for w in outcome.warnings)
    assert set(rows(store, "registered_models")["name"]) == {MODEL, OTHER}


def test_forbidden_referenced_table_is_recorded_as_a_gap(tmp_path, token_env):
    ws = base_workspace()
    ws["model_versions"][MODEL][2]["model_version_dependencies"]["dependencies"].append(
        {"table": {"table_full_name": "secret.hr.salaries"}})
    with DatabricksStub(ws, token=TOKEN, faults=Faults(forbidden_catalogs={"secret"})) as stub:
        outcome, store = snapshot(tmp_path, stub)
    assert outcome.ok
    tables = rows(store, "uc_tables").set_index("full_name")
    assert tables.loc["secret.hr.salaries"]["read_status"] == "forbidden"
    assert any("secret.hr.salaries" in w and "403" in w for w in outcome.warnings)
    # The model listing itself was metastore-wide: the forbidden model's details failed one by one.
    assert rows(store, "uc_models").set_index("full_name").loc[SECRET_MODEL]["read_status"] == "forbidden"


def test_persistent_server_error_on_a_listing_fails_the_pass_and_keeps_good_data(tmp_path, token_env):
    ws = base_workspace()
    with DatabricksStub(ws, token=TOKEN) as stub:
        first, store = snapshot(tmp_path, stub)
    assert first.ok
    with DatabricksStub(ws, token=TOKEN, faults=Faults(flaky={"uc.models.list": 99})) as stub:
        second, _ = snapshot(tmp_path, stub)
    assert not second.ok and any("InternalError" in e for e in second.errors)
    assert set(rows(store, "registered_models")["name"]) == {MODEL, OTHER, SECRET_MODEL}


def test_unreachable_workspace_fails_fast(tmp_path, token_env):
    cfg = write_config(tmp_path / "governance.toml",
                       [dbx_source("http://127.0.0.1:9", retry_timeout_seconds=2, http_timeout_seconds=2)])
    outcome = snapshot_all(load_config(cfg))[0]
    assert not outcome.ok and outcome.errors


# -- a partial read never records a removal ----------------------------------------------------------
PARTIAL_READS = {
    "a 403 on one catalog": Faults(forbidden_catalogs={"secret"}),
    "a schema's model list": Faults(failing={"uc.models.list": 500}),
    "a model's versions list": Faults(failing={"uc.versions.list": 403}),
    "a model's details (aliases)": Faults(failing={"uc.models.get": 500}),
    "an endpoint's details": Faults(failing={"serving.get": 403}),
    "a vector endpoint's index list": Faults(failing={"vs.indexes.list": 403}),
    "a schema's table list": Faults(failing={"uc.tables.list": 403}),
    "a table's lineage": Faults(failing={"lineage.table": 500}),
    "a schema's feature list": Faults(failing={"features.list": 403}),
    "a feature's lineage": Faults(failing={"features.lineage": 403}),
    "a feature's materializations": Faults(failing={"features.materialized.list": 403}),
}


@pytest.mark.parametrize("what", list(PARTIAL_READS))
def test_a_pass_with_a_failed_item_read_removes_nothing_and_warns(tmp_path, token_env, what):
    ws = base_workspace()
    ws["schemas"] = ["secret.hr"]
    opts = {"catalogs": ["main", "secret"], "schemas": ["main.churn"]}
    with DatabricksStub(ws, token=TOKEN) as stub:
        first, store = snapshot(tmp_path, stub, **opts)
    assert first.ok and first.warnings == [], first.warnings
    before = {t: len(rows(store, t)) for t in first.counts if t != "endpoint_metrics"}   # samples append
    with DatabricksStub(ws, token=TOKEN, faults=PARTIAL_READS[what]) as stub:
        second, _ = snapshot(tmp_path, stub, **opts)
    assert second.ok, second.errors
    assert second.warnings, "a failed read must be reported"
    removed = {t: c["removed"] for t, c in second.counts.items() if c["removed"]}
    assert removed == {}, f"{what}: recorded removals {removed}"
    assert {t: len(rows(store, t)) for t in before} == before
    # The as-of view after the pass still holds the aliases (an audit trace would not say "removed").
    aliases = {(r.name, r.alias) for r in entity_as_of(store, "model_aliases", second.snapshot_id).itertuples()}
    assert aliases == {(MODEL, "champion"), (MODEL, "challenger"), (SECRET_MODEL, "prod")}


def test_a_complete_pass_still_records_removals_next_to_a_failed_read(tmp_path, token_env):
    ws = base_workspace()
    opts = {"catalogs": ["main", "secret"]}
    with DatabricksStub(ws, token=TOKEN) as stub:
        first, store = snapshot(tmp_path, stub, **opts)
    ws2 = copy.deepcopy(ws)
    ws2["registered_models"] = [m for m in ws2["registered_models"] if m["full_name"] != OTHER]
    del ws2["model_versions"][OTHER]
    with DatabricksStub(ws2, token=TOKEN, faults=Faults(forbidden_catalogs={"secret"})) as stub:
        second, _ = snapshot(tmp_path, stub, **opts)
    assert first.ok and second.ok and second.warnings
    assert set(rows(store, "registered_models")["name"]) == {MODEL, SECRET_MODEL}   # OTHER really went
    assert set(rows(store, "model_versions")["name"]) == {MODEL, SECRET_MODEL}
