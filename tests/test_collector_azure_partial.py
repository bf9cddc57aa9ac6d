"""A partial read never records a removal (issue 10.2): when one list of the Fabric or AI Search
source cannot be read, the pass stays good, says so in a warning, and the last known rows of that
list stay current. Two real passes through the runner into a DuckDB store, against the Azure stub."""
from __future__ import annotations

import pytest

from collectors.runner import snapshot_source
from demo.azure_fixtures import FABRIC_WS, LH_PLAIN, LH_SCHEMAS, churn_azureml, churn_fabric, churn_search
from demo.azure_stub import AzureStub
from store import Store
from store import queries as q
from tests.test_collector_azure_fabric import config as fabric_config
from tests.test_collector_azure_search import config as search_config
from tests.test_collector_azureml import source_config as aml_config

TOKEN = "waymark-loopback-stub"   # what the runner's loopback credential sends


def _fabric_fixture():
    fabric = churn_fabric()
    fabric[FABRIC_WS]["shortcuts"][LH_PLAIN] = [
        {"name": "raw_events", "path": "Files/raw",
         "target": {"type": "AdlsGen2", "adlsGen2": {"location": "https://raw.dfs.core.windows.net",
                                                      "subpath": "/events/2026"}}}]
    return fabric


def _current(store, table, key):
    frame = q.entity_as_of(store, table)
    return sorted(tuple(r) for r in frame[list(key)].itertuples(index=False))


@pytest.mark.parametrize("fail", [f"fabric.shortcuts@{LH_SCHEMAS}", "fabric.shortcuts"])
def test_a_failed_shortcut_list_removes_no_shortcut(tmp_path, fail):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"fabric": _fabric_fixture()}, token=TOKEN) as stub:
        first = snapshot_source(store, fabric_config(stub))
        assert first.ok, first.errors
        before = _current(store, "fabric_shortcuts", ("item_id", "path", "name"))
        assert len(before) == 3
        stub.fail[fail] = 403
        second = snapshot_source(store, fabric_config(stub))
    assert second.ok, second.errors
    assert any("shortcuts not listed" in w and "403" in w for w in second.warnings), second.warnings
    assert second.counts["fabric_shortcuts"]["removed"] == 0
    assert _current(store, "fabric_shortcuts", ("item_id", "path", "name")) == before


def test_a_shortcut_that_really_went_away_is_still_removed_when_its_lakehouse_was_read(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"fabric": _fabric_fixture()}, token=TOKEN) as stub:
        assert snapshot_source(store, fabric_config(stub)).ok
        stub.fixture["fabric"][FABRIC_WS]["shortcuts"][LH_PLAIN] = []   # removed on the read lakehouse
        stub.fail[f"fabric.shortcuts@{LH_SCHEMAS}"] = 403                # the other one is unreadable
        second = snapshot_source(store, fabric_config(stub))
    assert second.ok and second.counts["fabric_shortcuts"]["removed"] == 1
    assert {r[0] for r in _current(store, "fabric_shortcuts", ("item_id",))} == {LH_SCHEMAS}


@pytest.mark.parametrize("switch", ["lakehouse_tables", "shortcuts"])
def test_switching_a_read_off_removes_nothing(tmp_path, switch):
    store = Store(tmp_path / "w.duckdb")
    table = {"lakehouse_tables": "fabric_tables", "shortcuts": "fabric_shortcuts"}[switch]
    with AzureStub({"fabric": _fabric_fixture()}, token=TOKEN) as stub:
        assert snapshot_source(store, fabric_config(stub)).ok
        before = len(q.entity_as_of(store, table))
        second = snapshot_source(store, fabric_config(stub, **{switch: False}))
    assert second.ok and table not in second.counts
    assert len(q.entity_as_of(store, table)) == before > 0


@pytest.mark.parametrize("fail", ["search.indexers", "search.datasources"])
def test_a_failed_indexer_list_keeps_the_last_known_indexers(tmp_path, fail):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"search": churn_search()}, token=TOKEN) as stub:
        first = snapshot_source(store, search_config(stub))
        assert first.ok, first.errors
        before = q.entity_as_of(store, "search_indexes").set_index("index_name")["indexers"].to_dict()
        assert before["documents"][0]["name"] == "documents-indexer"
        stub.fail[fail] = 403
        second = snapshot_source(store, search_config(stub))
    assert second.ok, second.errors
    assert any("indexers/data sources not read" in w and "403" in w for w in second.warnings), second.warnings
    assert second.counts["search_indexes"]["removed"] == 0
    now = q.entity_as_of(store, "search_indexes").set_index("index_name")
    assert now["indexers"].to_dict() == before
    assert now.loc["documents", "read_status"] == "partial"
    assert "indexers not read" in now.loc["documents", "detail"]


def test_an_indexes_filter_removes_no_index_outside_it(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"search": churn_search()}, token=TOKEN) as stub:
        assert snapshot_source(store, search_config(stub)).ok
        second = snapshot_source(store, search_config(stub, indexes=["faq"]))
    assert second.ok and second.counts["search_indexes"]["removed"] == 0
    assert set(q.entity_as_of(store, "search_indexes")["index_name"]) == {"documents", "faq"}


def test_azure_ml_origins_stay_when_origin_reading_is_switched_off(tmp_path):
    model_dir = tmp_path / "v2"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("run_id: abc123\nflavors:\n  sklearn: {}\n", encoding="utf-8")
    store = Store(tmp_path / "w.duckdb")
    aml = churn_azureml(model_uris={"2": model_dir.as_uri()})
    with AzureStub({"azureml": aml}, token=TOKEN) as stub:
        first = snapshot_source(store, aml_config(stub))
        assert first.ok, first.errors
        assert q.entity_as_of(store, "model_origins").set_index("version").loc["2", "origin_run_id"] == "abc123"
        second = snapshot_source(store, aml_config(stub,
                                                   read_model_origins=False))
    assert second.ok and "model_origins" not in second.counts
    assert len(q.entity_as_of(store, "model_origins")) == 1


def test_narrowing_item_types_removes_nothing_it_no_longer_reads(tmp_path):
    store = Store(tmp_path / "w.duckdb")
    with AzureStub({"fabric": _fabric_fixture()}, token=TOKEN) as stub:
        assert snapshot_source(store, fabric_config(stub)).ok
        before = {t: len(q.entity_as_of(store, t)) for t in ("fabric_items", "fabric_tables", "fabric_shortcuts")}
        second = snapshot_source(store, fabric_config(stub, item_types=["MLModel"]))
    assert second.ok and second.counts["fabric_items"]["removed"] == 0
    assert {t: len(q.entity_as_of(store, t)) for t in before} == before
