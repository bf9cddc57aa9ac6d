"""Checklist evidence from the platform collectors (Databricks workspace, Azure ML, AI Search, Fabric
items) on stores built in test_checklist.py with the real snapshot writer."""
from __future__ import annotations

from checklist.evidence import evidence_for
from checklist.plan import load_plan
from checklist.progress import burn_up
from tests.test_checklist import UC, UC_TABLE_LOCATION, _aml, _experiment, _platform_store, _rows, _search, _snap, _uc

ENDPOINT = "serving_endpoint:dbx-ws:churn-scoring"


def test_uc_model_is_its_own_workload_linked_to_the_workspace_model(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    rows = _rows(store)
    uc = rows.loc[f"registered_model:dbx-ws:{UC}"]     # the key it had before the type existed
    workspace = rows.loc["registered_model:dbx:churn"]
    assert (uc["asset_type"], workspace["asset_type"]) == ("uc_model", "registered_model")
    assert uc["rule"] == "uc-model-registry" and "dbx:churn" in uc["reason"]
    # The Fabric copy of r2 proves the UC champion (v2) moved: done; the workspace model's
    # champion is v2 too, so both registries are proven by the same copy, each counted once.
    assert uc["evidence_status"] == "done" and "v2 (champion) → fab churn_fabric v1" in uc["evidence"]
    assert workspace["evidence_status"] == "done"
    assert list(rows.index).count(f"registered_model:dbx-ws:{UC}") == 1


def test_endpoint_done_when_a_healthy_azure_ml_endpoint_serves_copies_of_its_versions(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    assert _rows(store).loc[ENDPOINT, "evidence"] == "nothing collected can say yet"   # no Azure ML source
    _aml(store, 1)
    row = _rows(store).loc[ENDPOINT]
    assert row["kind"] == "model_serving" and row["evidence_status"] == "done"
    assert "aml: endpoint churn-aml serves copies of main.ml.churn v2" in row["evidence"]


def test_endpoint_in_progress_while_the_azure_ml_endpoint_is_unhealthy_or_partial(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1, served=(("churn-1", "1", 20.0), ("churn-2", "2", 80.0)))
    _aml(store, 1, deployments=(("blue", "2", 100, "Failed"),))
    row = _rows(store).loc[ENDPOINT]
    assert row["evidence_status"] == "in_progress"
    assert "not healthy: deployment blue provisioning Failed" in row["evidence"]
    _aml(store, 2, deployments=(("blue", "2", 100, "Succeeded"),))          # healthy, but v1 has no copy
    row = _rows(store).loc[ENDPOINT]
    assert row["evidence_status"] == "in_progress" and "not yet: main.ml.churn v1" in row["evidence"]
    _aml(store, 3, deployments=(("blue", "2", 100, "Succeeded"), ("green", "1", 0, "Succeeded")))
    row = _rows(store).loc[ENDPOINT]                                          # v1 deployed, takes no traffic
    assert row["evidence_status"] == "in_progress" and "deploys main.ml.churn v1 without traffic" in row["evidence"]
    _aml(store, 4, deployments=(("blue", "2", 80, "Succeeded"), ("green", "1", 20, "Succeeded")))
    assert _rows(store).loc[ENDPOINT, "evidence_status"] == "done"


def test_azure_ml_copy_found_by_migrated_from_tag_when_the_mlmodel_is_not_readable(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    _aml(store, 1, link="tag")      # no origin rows: the tag names the UC version, whose run is r2
    row = _rows(store).loc[ENDPOINT]
    assert row["evidence_status"] == "done" and "churn-aml" in row["evidence"]
    _aml(store, 2, deployments=(("blue", "1", 100, "Succeeded"),), link="tag")   # serves a copy of v1 only
    assert _rows(store).loc[ENDPOINT, "evidence_status"] == "not_started"


def test_vector_index_replaced_by_a_search_index_with_vectors(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    key = "vector_index:dbx-ws:main.gold.tickets_index"
    assert _rows(store).loc[key, "evidence"] == "nothing collected can say yet"
    docs = {"index_name": "documents", "vector_fields": [{"name": "v", "dimensions": 8}], "document_count": 10,
            "indexers": [{"name": "ixr", "data_source": "onelake-docs", "container": "docs"}]}
    _search(store, 1, docs)
    row = _rows(store).loc[key]
    assert row["evidence_status"] == "not_started" and row["status"] == "not_started"
    # Same short name, but no vector field yet: in progress.
    _search(store, 2, docs, {"index_name": "tickets-index", "vector_fields": [], "document_count": 0})
    row = _rows(store).loc[key]
    assert row["evidence_status"] == "in_progress" and "no vector field" in row["evidence"]
    # Fed from a container named after the vector index's source table, with vectors and documents: done.
    fed = {"index_name": "support", "vector_fields": [{"name": "body_vector", "dimensions": 1024}],
           "document_count": 4800, "indexers": [{"name": "ixr2", "data_source": "ds", "container": "tickets"}]}
    _search(store, 3, docs, fed)
    row = _rows(store).loc[key]
    assert row["evidence_status"] == "done"
    assert "search index support replaces it (vector field body_vector, 4800 documents)" in row["evidence"]
    assert "source table main.gold.tickets" in row["evidence"]


def test_feature_table_reachable_through_a_onelake_shortcut_and_fabric_items(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    key = "feature_table:dbx-ws:main.gold.features"
    assert _rows(store).loc[key, "kind"] == "feature_store"
    _snap(store, "fab-items", "fabric", 1, kind="fabric",
          fabric_items=[{"item_id": "lh", "item_type": "Lakehouse", "display_name": "lh_churn"},
                        {"item_id": "e1", "item_type": "MLExperiment", "display_name": "/Shared/vision",
                         "mlflow_experiment_id": "abc"},
                        {"item_id": "m1", "item_type": "MLModel", "display_name": "churn_fabric"}],
          fabric_shortcuts=[{"item_id": "lh", "path": "Tables", "name": "uc_features", "target_type": "AdlsGen2",
                             "target_location": UC_TABLE_LOCATION.replace("acct", "ACCT") + "/"}])
    rows = _rows(store)
    assert rows.loc[key, "evidence_status"] == "in_progress"
    assert "OneLake shortcut lh_churn/Tables/uc_features reaches its storage" in rows.loc[key, "evidence"]
    # A Fabric ML experiment item of the same name (runs not collected): linked, in progress.
    vision = rows.loc["experiment:dbx:2"]
    assert vision["kind"] == "deep_learning"          # judged on Azure ML: the Fabric item does not count
    from checklist.progress import estate_now
    assets, _ = estate_now(store)
    fabric_items = [a for a in assets if a.source == "fab-items"]
    # The ML model item duplicates the MLflow source's churn_fabric: left out; the experiment stays.
    assert sorted(a.asset_type for a in fabric_items) == ["experiment", "onelake_shortcut"]
    exp = evidence_for(_experiment("/Shared/vision", experiment_id="2", run_ids=["v1"]), assets, ["fabric"])
    assert exp.status == "in_progress" and "its runs are not collected" in exp.detail


def test_burn_up_replays_the_platform_assets(tmp_path):
    store = _platform_store(tmp_path)
    _uc(store, 1)
    _aml(store, 5, deployments=(("blue", "2", 100, "Failed"),))
    _aml(store, 9)
    table = burn_up(store, load_plan()).pivot(index="time", columns="series", values="workloads")
    # in scope: 2 experiments + workspace model; then + UC model, endpoint, feature table, vector index.
    assert list(table["in scope"]) == [3, 7, 7, 7]
    # done: workspace model (Fabric copy of the champion) → + UC model → endpoint unhealthy → healthy.
    assert list(table["done by evidence"]) == [1, 2, 2, 3]
