"""Checklist evidence and manual status on synthetic estates: asset records, and stores built here
with the real snapshot writer (a migration over 20 days; the platform collectors' tables, whose
tests are in test_checklist_platforms.py); manual status with history, and the burn-up.
Plan files and classifier rules: test_checklist_plan.py."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest

from checklist.assets import (APP, CONTAINER_APP, EXPERIMENT, ONLINE_ENDPOINT, SEARCH_INDEX, SERVING_ENDPOINT,
                              VECTOR_INDEX, Asset)
from checklist.evidence import evidence_for
from checklist.manual import ManualStatusError, manual_log, record_manual_status
from gates.identity import Identity
from checklist.plan import load_plan
from checklist.progress import assess, burn_up
from store import Store
from store.entities import EntityBatch, Scope
from store.history import commit_snapshot

T0 = datetime(2026, 9, 1, 12, tzinfo=timezone.utc)
ALICE = Identity("alice@example.com", True, "oidc")
CAROL = Identity("carol", False, "env")


# -- synthetic assets ------------------------------------------------------------------------------
def _experiment(name="/team/churn", **facts) -> Asset:
    base = {"experiment_id": "1", "lifecycle_stage": "active", "tags": {}, "tag_keys": [], "params": [],
            "flavors": [], "run_count": 3, "finished_runs": 3, "run_ids": ["r1"], "models": []}
    return Asset(f"experiment:dbx:{name}", EXPERIMENT, "dbx", "databricks", name, {**base, **facts})


# -- evidence on asset records (collectors that land later plug in this way) --------------------
def test_serving_endpoint_is_done_when_a_healthy_target_endpoint_serves_its_model():
    source = Asset("serving_endpoint:dbx:churn", SERVING_ENDPOINT, "dbx", "databricks", "churn-predictor",
                   {"served": [{"model": "churn", "version": "3", "run_id": "r3"}]})
    sick = Asset("online_endpoint:aml:churn", ONLINE_ENDPOINT, "aml", "azureml", "churn-aml",
                 {"served_origin_run_ids": ["r3"], "healthy": False})
    assert evidence_for(source, [source, sick], ["azureml"]).status == "in_progress"
    healthy = Asset(sick.key, ONLINE_ENDPOINT, "aml", "azureml", "churn-aml",
                    {"served_origin_run_ids": ["r3"], "healthy": True})
    found = evidence_for(source, [source, healthy], ["azureml"])
    assert found.status == "done" and "churn-aml" in found.detail
    other = Asset("online_endpoint:aml:x", ONLINE_ENDPOINT, "aml", "azureml", "x",
                  {"served_origin_run_ids": ["r9"], "healthy": True})
    assert evidence_for(source, [source, other], ["azureml"]).status == "not_started"
    # No Azure ML collector yet: the store cannot say.
    assert evidence_for(source, [source], ["azureml"]) is None


def test_vector_index_and_app_are_done_when_a_replacement_names_them():
    index = Asset("vector_index:dbx:docs", VECTOR_INDEX, "dbx", "databricks", "cat.schema.doc_embeddings_index")
    search = Asset("search_index:s:documents", SEARCH_INDEX, "s", "azureml", "documents",
                   {"migrated_from": "databricks:cat.schema.doc_embeddings_index", "document_count": 10})
    assert evidence_for(index, [index, search], []).status == "done"
    app = Asset("app:dbx:explorer", APP, "dbx", "databricks", "churn-explorer")
    container = Asset("container_app:a:churn-explorer", CONTAINER_APP, "a", "azureml", "churn-explorer")
    assert evidence_for(app, [app, container], []).status == "done"
    assert evidence_for(app, [app, search], []) is None   # no container apps collected at all


# -- stores built here with the real snapshot writer -------------------------------------------
def _run(run_id, exp="1", status="FINISHED", start=0, **extra):
    return {"run_id": run_id, "experiment_id": exp, "run_name": run_id, "status": status,
            "lifecycle_stage": "active", "start_time": int((T0.timestamp() + start) * 1000), "params": {},
            "metrics": {}, "tags": {}, **extra}


def _snap(store, source, platform, day, kind="mlflow", **tables):
    when = T0 + timedelta(days=day)
    batches = {t: EntityBatch(rows, Scope.ALL) for t, rows in tables.items()}
    commit_snapshot(store, source=source, kind=kind, platform=platform, mode="full", started_at=when,
                    finished_at=when, batches=batches, warnings=[], state={})


DBX_EXPERIMENTS = [{"experiment_id": "1", "name": "/Shared/churn", "lifecycle_stage": "active", "tags": {}},
                   {"experiment_id": "2", "name": "/Shared/vision", "lifecycle_stage": "active", "tags": {}}]
DBX_RUNS = [_run("r1"), _run("r2", start=60), _run("v1", exp="2", params={"device": "cuda"})]
DBX_VERSIONS = [{"name": "churn", "version": "1", "run_id": "r1", "model_id": "m-1", "tags": {}},
                {"name": "churn", "version": "2", "run_id": "r2", "model_id": "m-2", "tags": {}}]
DBX_ORIGINS = [{"name": "churn", "version": v, "read_status": "ok", "origin_run_id": r, "origin_model_id": m,
                "flavors": ["sklearn"]} for v, r, m in (("1", "r1", "m-1"), ("2", "r2", "m-2"))]


def _dbx(store, day):
    _snap(store, "dbx", "databricks", day, experiments=DBX_EXPERIMENTS, runs=DBX_RUNS,
          registered_models=[{"name": "churn", "tags": {}}], model_versions=DBX_VERSIONS,
          model_aliases=[{"name": "churn", "alias": "champion", "version": "2"}], model_origins=DBX_ORIGINS)


def _fabric(store, day, *, experiment=None, runs=(), versions=(), origins=()):
    _snap(store, "fab", "fabric", day, experiments=[experiment] if experiment else [], runs=list(runs),
          registered_models=[{"name": "churn_fabric", "tags": {}}] if versions else [],
          model_versions=list(versions), model_aliases=[], model_origins=list(origins))


@pytest.fixture()
def migrating_store(tmp_path) -> Store:
    """Day 0: nothing on Fabric. Day 10: the champion's older sibling copied. Day 20: the champion
    copied and a Fabric experiment of the same name trains."""
    store = Store(tmp_path / "w.duckdb")
    _dbx(store, 0)
    _fabric(store, 0)
    copy = lambda v, run, model: ({"name": "churn_fabric", "version": v, "run_id": None, "model_id": None,  # noqa: E731
                                   "tags": {}},
                                  {"name": "churn_fabric", "version": v, "read_status": "ok", "origin_run_id": run,
                                   "origin_model_id": model, "flavors": ["sklearn"]})
    v1, o1 = copy("1", "r1", "m-1")
    _dbx(store, 10)
    _fabric(store, 10, versions=[v1], origins=[o1])
    v2, o2 = copy("2", "r2", "m-2")
    _dbx(store, 20)
    _fabric(store, 20, experiment={"experiment_id": "7", "name": "churn", "lifecycle_stage": "active", "tags": {}},
            runs=[_run("f1", exp="7", start=20 * 86400)], versions=[v1, v2], origins=[o1, o2])
    return store


def _by_name(assessment):
    return assessment.workloads.set_index("name")


def test_evidence_follows_the_store_over_time(migrating_store):
    plan = load_plan()
    day0 = _by_name(assess(migrating_store, plan, as_of=T0 + timedelta(days=1)))
    assert day0.loc["/Shared/churn", "kind"] == "simple_training"
    assert day0.loc["/Shared/vision", "kind"] == "deep_learning"
    assert set(day0["evidence_status"].fillna("none")) == {"not_started", "none"}
    assert day0.loc["/Shared/vision", "evidence"] == "nothing collected can say yet"   # no Azure ML source

    day10 = _by_name(assess(migrating_store, plan, as_of=T0 + timedelta(days=11)))
    assert day10.loc["churn", "evidence_status"] == "in_progress"
    assert "v1 → fab churn_fabric v1" in day10.loc["churn", "evidence"]
    assert "not yet: v2 (champion)" in day10.loc["churn", "evidence"]
    assert day10.loc["/Shared/churn", "evidence_status"] == "in_progress"   # models copied, no training yet

    now = assess(migrating_store, plan)
    today = _by_name(now)
    assert today.loc["churn", "status"] == "done"
    assert today.loc["/Shared/churn", "status"] == "done" and "same name" in today.loc["/Shared/churn", "evidence"]
    assert now.headline["workloads"] == 3 and now.headline["proven"] == 2 and now.headline["complete"] == 2


def test_burn_up_counts_proven_workloads_at_each_snapshot(migrating_store):
    frame = burn_up(migrating_store, load_plan())
    table = frame.pivot(index="time", columns="series", values="workloads")
    assert list(table["in scope"]) == [3, 3, 3]
    assert list(table["done by evidence"]) == [0, 0, 2]


def test_manual_status_is_kept_with_history_and_disagreement_is_shown(migrating_store):
    plan = load_plan()
    key = "experiment:dbx:2"   # the deep learning experiment: nothing collected can prove it
    record_manual_status(migrating_store, key, status="in_progress", owner="bob", due=date(2026, 12, 1),
                         notes="GPU quota asked", kind_override=None, who=ALICE, known_kinds=list(plan.kinds))
    record_manual_status(migrating_store, key, status="stays", owner="bob", due=None, notes="stays on Databricks",
                         kind_override=None, who=CAROL)
    record_manual_status(migrating_store, "registered_model:dbx:churn", status="blocked", owner=None, due=None,
                         notes=None, kind_override=None, who=ALICE)
    found = assess(migrating_store, plan)
    rows = _by_name(found)
    assert rows.loc["/Shared/vision", "status"] == "stays" and rows.loc["/Shared/vision", "complete"]
    assert rows.loc["/Shared/vision", "owner"] == "bob" and rows.loc["/Shared/vision", "disagreement"] == ""
    # Blocked by hand, but the copies prove it done: both are shown.
    assert rows.loc["churn", "status"] == "blocked"
    assert "evidence shows done" in rows.loc["churn", "disagreement"]
    assert found.headline["blocked"] == 1 and found.headline["disagreements"] == 1
    history = found.log[found.log["asset_key"] == key]
    assert list(history["status"]) == ["in_progress", "stays"]
    assert list(history["who_verified"]) == [True, False]
    from checklist.manual import item_history
    shown = item_history(found.log, key)
    assert shown.loc[0, "status"] == "stays" and shown.loc[0, "who"].endswith("(unverified)")
    assert shown.loc[1, "who"] == "alice@example.com" and str(shown.loc[1, "due"])[:10] == "2026-12-01"
    # The decision shows in the burn-up from the moment it was recorded.
    table = burn_up(migrating_store, plan).pivot(index="time", columns="series", values="workloads")
    assert table["complete (evidence or decision)"].iloc[-1] == 2   # churn exp done + vision stays; churn blocked


def test_kind_override_replaces_the_rule_and_says_who(migrating_store):
    plan = load_plan()
    record_manual_status(migrating_store, "experiment:dbx:2", status=None, owner=None, due=None, notes=None,
                         kind_override="simple_training", who=ALICE, known_kinds=list(plan.kinds))
    row = _by_name(assess(migrating_store, plan)).loc["/Shared/vision"]
    assert row["kind"] == "simple_training" and row["target"] == "Fabric notebooks"
    assert row["rule"] == "manual override" and "alice@example.com" in row["reason"]
    assert row["evidence_status"] == "not_started"     # now judged against Fabric


def test_bad_manual_entries_are_refused(migrating_store):
    with pytest.raises(ManualStatusError):
        record_manual_status(migrating_store, "x", status="finished", owner=None, due=None, notes=None,
                             kind_override=None, who=ALICE)
    with pytest.raises(ManualStatusError):
        record_manual_status(migrating_store, "x", status=None, owner=None, due=None, notes=None,
                             kind_override="quantum", who=ALICE, known_kinds=["automl"])
    assert manual_log(migrating_store).empty


def test_a_save_waits_for_a_reader_of_the_same_process(migrating_store):
    """DuckDB refuses a read-write connection while a read-only one is open in the same process."""
    opened, release = threading.Event(), threading.Event()

    def hold_reader():
        with migrating_store.reader():
            opened.set()
            release.wait(5)

    reader = threading.Thread(target=hold_reader)
    reader.start()
    opened.wait(5)
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    record_manual_status(migrating_store, "step:hybrid", status="done", owner=None, due=None, notes=None,
                         kind_override=None, who=ALICE)
    reader.join()
    assert time.monotonic() - started >= 0.4
    assert manual_log(migrating_store)["status"].tolist() == ["done"]


def test_who_is_recorded_in_canonical_form_and_never_empty(migrating_store):
    key = "experiment:dbx:2"
    record_manual_status(migrating_store, key, status="blocked", owner=None, due=None, notes=None, kind_override=None,
                         who=Identity("Alice\u200b@Example.COM", True, "oidc"))
    assert manual_log(migrating_store)["who"].tolist() == ["alice@example.com"]
    with pytest.raises(ManualStatusError, match="who made it"):
        record_manual_status(migrating_store, key, status="done", owner=None, due=None, notes=None,
                             kind_override=None, who=Identity("\u200b\u2060", False, "env"))


# -- platform collectors' tables: Databricks workspace, Azure ML, AI Search, Fabric items ----------
# (their tests: test_checklist_platforms.py, test_checklist_search_evidence.py)
UC = "main.ml.churn"
UC_TABLE_LOCATION = "abfss://lake@acct.dfs.core.windows.net/main/gold/features"


def _uc(store, day, *, served=(("churn-2", "2", None),), vector_index="main.gold.tickets_index"):
    """A `databricks` source: the UC model (same runs r1, r2 as the workspace model `churn`), an
    endpoint serving `served` (entity, UC version, traffic), two features of one table, a vector index."""
    _snap(store, "dbx-ws", "databricks", day, kind="databricks",
          registered_models=[{"name": UC, "tags": {}}], uc_models=[{"full_name": UC, "catalog_name": "main"}],
          model_versions=[{"name": UC, "version": v, "run_id": r, "tags": {}} for v, r in (("1", "r1"), ("2", "r2"))],
          model_aliases=[{"name": UC, "alias": "champion", "version": "2"}],
          serving_endpoints=[{"name": "churn-scoring", "ready": "READY", "config_update": "NOT_UPDATING", "tags": {}}],
          served_entities=[{"endpoint": "churn-scoring", "config": "active", "served_entity_name": e,
                            "entity_name": UC, "entity_version": v, "traffic_pct": t, "external": False,
                            "deployment_state": "DEPLOYMENT_READY"} for e, v, t in served],
          features=[{"full_name": f"main.gold.{n}", "name": n, "source_table": "main.gold.features",
                     "entity_columns": ["customer_id"]} for n in ("tenure_days", "monthly_charges")],
          uc_tables=[{"full_name": "main.gold.features", "storage_location": UC_TABLE_LOCATION, "reasons": []}],
          vector_indexes=[{"name": vector_index, "endpoint_name": "vs", "index_type": "DELTA_SYNC",
                           "source_table": "main.gold.tickets", "embedding_model_endpoints": ["bge"], "ready": True}]
          if vector_index else [])


def _aml(store, day, *, deployments=(("blue", "2", 100, "Succeeded"),), link="origin"):
    """An `azureml` source: `churn-aml` with `deployments` (name, AML version, traffic, state); AML
    v1/v2 are copies of Databricks r1/r2, found by MLmodel origin (`link="origin"`) or by tag."""
    versions, origins = [], []
    for v, run in (("1", "r1"), ("2", "r2")):
        tags = {"waymark.migrated_from": f"databricks:{UC}/{v}"} if link == "tag" else {}
        versions.append({"name": "churn-model", "version": v, "run_id": None, "tags": tags})
        if link == "origin":
            origins.append({"name": "churn-model", "version": v, "read_status": "ok", "origin_run_id": run,
                            "flavors": ["sklearn"]})
    _snap(store, "aml", "azureml", day, kind="azureml",
          aml_endpoints=[{"endpoint": "churn-aml", "provisioning_state": "Succeeded",
                          "traffic": {d: t for d, _, t, _ in deployments}, "mirror_traffic": {}, "tags": {}}],
          aml_deployments=[{"endpoint": "churn-aml", "deployment": d, "provisioning_state": state,
                            "model_name": "churn-model", "model_version": v, "model_ref_format": "workspace"}
                           for d, v, _, state in deployments],
          registered_models=[{"name": "churn-model", "tags": {}}], model_versions=versions, model_origins=origins)


def _search(store, day, *indexes):
    _snap(store, "search", "azureml", day, kind="azuresearch", search_indexes=list(indexes))


def _platform_store(tmp_path) -> Store:
    """Workspace MLflow source `dbx` (model `churn`, runs r1, r2) + the UC side; Fabric MLflow
    source with a copy of r2 (the UC champion's run)."""
    store = Store(tmp_path / "p.duckdb")
    _dbx(store, 0)
    copy = ({"name": "churn_fabric", "version": "1", "run_id": None, "tags": {}},
            {"name": "churn_fabric", "version": "1", "read_status": "ok", "origin_run_id": "r2",
             "flavors": ["sklearn"]})
    _fabric(store, 0, versions=[copy[0]], origins=[copy[1]])
    return store


def _rows(store, plan=None):
    return assess(store, plan or load_plan()).workloads.set_index("asset_key")
