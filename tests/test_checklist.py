"""Checklist: plan files, classifier rules, evidence (synthetic assets and stores built here with
the real snapshot writer), manual status with history, and the burn-up."""
from __future__ import annotations

import shutil
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from checklist.assets import (APP, CONTAINER_APP, EXPERIMENT, FEATURE_TABLE, ONLINE_ENDPOINT, REGISTERED_MODEL,
                              SEARCH_INDEX, SERVING_ENDPOINT, VECTOR_INDEX, Asset)
from checklist.evidence import evidence_for
from checklist.manual import Identity, ManualStatusError, local_identity, manual_log, record_manual_status
from checklist.plan import SHIPPED_PLAN_DIR, PlanError, load_plan
from checklist.progress import assess, burn_up
from checklist.rules import classify
from store import Store
from store.history import EntityBatch, Scope, commit_snapshot

T0 = datetime(2026, 9, 1, 12, tzinfo=timezone.utc)
ALICE = Identity("alice@example.com", verified=True)


# -- plan files --------------------------------------------------------------------------------
def test_shipped_plan_has_the_guide_steps_and_matrix_rows():
    plan = load_plan()
    assert plan.checklist_version >= 1 and plan.matrix_version >= 1
    assert [s.id for s in plan.steps][:10] == ["inventory", "classify", "experiments", "serving", "features",
                                               "automl", "vector-search", "hybrid", "cicd", "retrain"]
    assert plan.kinds["simple_training"].target == "Fabric notebooks"
    assert plan.kinds["model_serving"].target_platforms == ("azureml",)
    assert not plan.kinds["empty_experiment"].in_scope
    assert {s.number for s in plan.steps_for_kind("simple_training")} == {3, 10}


@pytest.fixture()
def plan_dir(tmp_path) -> Path:
    target = tmp_path / "plan"
    shutil.copytree(SHIPPED_PLAN_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("file, old, new, expected", [
    ("checklist.toml", 'kinds = ["model_serving"]', 'kinds = ["model_servign"]',
     ["checklist.toml", "[[steps]] 'serving'", "field 'kinds'", "'model_servign'", "decision_matrix.toml"]),
    ("checklist.toml", 'progress = "manual"', 'progress = "by hand"',
     ["checklist.toml", "[[steps]] 'hybrid'", "field 'progress'", "unknown measure"]),
    ("checklist.toml", 'id = "cicd"', 'id = "hybrid"', ["[[steps]] 'hybrid'", "duplicate step id"]),
    ("checklist.toml", "version = 1", 'version = "one"', ["checklist.toml", "'version'"]),
    ("checklist.toml", 'id = "automl"\n', 'id = "automl"\nowner = "x"\n',
     ["[[steps]] 'automl'", "field 'owner'", "unknown field"]),
    ("decision_matrix.toml", 'target_platforms = ["azureml"]\nrationale = "Fabric has no native',
     'target_platforms = ["aws"]\nrationale = "Fabric has no native',
     ["decision_matrix.toml", "[[workloads]] 'model_serving'", "field 'target_platforms'", "'aws'"]),
    ("decision_matrix.toml", 'kind = "automl"', 'kind = "experiment_tracking"',
     ["[[workloads]] 'experiment_tracking'", "duplicate kind"]),
    ("decision_matrix.toml", 'target = "Azure AI Search"\n', '',
     ["[[workloads]] 'vector_search'", "field 'target'", "missing"]),
    ("decision_matrix.toml", "[[workloads]]\nkind = \"model_registry\"", "[[workloads]\nkind = \"model_registry\"",
     ["decision_matrix.toml", "not valid TOML"]),
])
def test_plan_errors_name_the_file_the_entry_and_the_field(plan_dir, file, old, new, expected):
    _edit(plan_dir / file, old, new)
    with pytest.raises(PlanError) as err:
        load_plan(plan_dir)
    for part in expected:
        assert part in str(err.value), (part, str(err.value))


def test_a_kind_a_rule_yields_needs_a_matrix_row(plan_dir):
    matrix = plan_dir / "decision_matrix.toml"
    _edit(matrix, 'kind = "deep_learning"', 'kind = "gpu_training"')
    _edit(plan_dir / "checklist.toml", '"automl", "deep_learning"]', '"automl", "gpu_training"]')
    with pytest.raises(PlanError) as err:
        load_plan(plan_dir)
    assert "'deep_learning'" in str(err.value) and "experiment-deep-learning-flavor" in str(err.value)
    assert str(matrix) in str(err.value)


def test_a_team_can_add_steps_and_change_targets(plan_dir):
    _edit(plan_dir / "decision_matrix.toml", 'target = "Fabric notebooks"', 'target = "Azure ML jobs"')
    with (plan_dir / "checklist.toml").open("a", encoding="utf-8") as f:
        f.write('\n[[steps]]\nid = "decommission"\ntitle = "Switch off the Databricks jobs"\nprogress = "manual"\n')
    plan = load_plan(plan_dir)
    assert plan.kinds["simple_training"].target == "Azure ML jobs"
    assert plan.steps[-1].id == "decommission" and plan.steps[-1].number == len(plan.steps)


# -- classifier rules --------------------------------------------------------------------------
def _experiment(name="/team/churn", **facts) -> Asset:
    base = {"experiment_id": "1", "lifecycle_stage": "active", "tags": {}, "tag_keys": [], "params": [],
            "flavors": [], "run_count": 3, "finished_runs": 3, "run_ids": ["r1"], "models": []}
    return Asset(f"experiment:dbx:{name}", EXPERIMENT, "dbx", "databricks", name, {**base, **facts})


@pytest.mark.parametrize("asset, kind, rule", [
    (_experiment(tag_keys=["_databricks_automl", "team"], flavors=["sklearn"]), "automl", "experiment-automl-tag"),
    (_experiment(tag_keys=["_databricks_automl.problem_type"]), "automl", "experiment-automl-tag"),
    (_experiment("/Users/a@b.com/churn-AutoML-2026"), "automl", "experiment-automl-name"),
    (_experiment(flavors=["python_function", "pytorch"]), "deep_learning", "experiment-deep-learning-flavor"),
    (_experiment(flavors=["sklearn", "tensorflow"]), "deep_learning", "experiment-deep-learning-flavor"),
    (_experiment(params=[("num_gpus", "4")]), "deep_learning", "experiment-deep-learning-params"),
    (_experiment(params=[("device", "cuda:0")]), "deep_learning", "experiment-deep-learning-params"),
    (_experiment(params=[("model_type", "torch.nn.LSTM")]), "deep_learning", "experiment-deep-learning-params"),
    (_experiment(flavors=["python_function", "sklearn"]), "simple_training", "experiment-classical"),
    (_experiment(flavors=["xgboost"]), "simple_training", "experiment-classical"),
    (_experiment(params=[("model_type", "GradientBoostingClassifier")]), "simple_training", "experiment-classical"),
    (_experiment(params=[("alpha", "0.1")]), "experiment_tracking", "experiment-tracking"),
    (_experiment(run_count=0), "empty_experiment", "experiment-empty"),
    (_experiment(lifecycle_stage="deleted", flavors=["pytorch"]), "empty_experiment", "experiment-empty"),
    (Asset("m", REGISTERED_MODEL, "dbx", "databricks", "c.s.bert", {"flavors": ["transformers"]}), "deep_learning",
     "model-deep-learning-flavor"),
    (Asset("m", REGISTERED_MODEL, "dbx", "databricks", "c.s.churn", {"flavors": ["sklearn"]}), "model_registry",
     "model-registry"),
    (Asset("e", SERVING_ENDPOINT, "dbx", "databricks", "churn-predictor"), "model_serving", "serving-endpoint"),
    (Asset("f", FEATURE_TABLE, "dbx", "databricks", "prod.features.customer"), "feature_store", "feature-table"),
    (Asset("v", VECTOR_INDEX, "dbx", "databricks", "c.s.docs_index"), "vector_search", "vector-index"),
    (Asset("a", APP, "dbx", "databricks", "churn-explorer"), "databricks_apps", "databricks-app"),
    (Asset("j", "job", "dbx", "databricks", "nightly"), "unclassified", "none"),
])
def test_rules_classify_in_order_and_say_why(asset, kind, rule):
    found = classify(asset)
    assert (found.kind, found.rule_id) == (kind, rule)
    assert found.reason


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
                   {"migrated_from": "databricks:cat.schema.doc_embeddings_index"})
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


def _snap(store, source, platform, day, **tables):
    when = T0 + timedelta(days=day)
    batches = {t: EntityBatch(rows, Scope.ALL) for t, rows in tables.items()}
    commit_snapshot(store, source=source, kind="mlflow", platform=platform, mode="full", started_at=when,
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
                         kind_override=None, who=local_identity())
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


def test_local_identity_is_unverified(monkeypatch):
    monkeypatch.setenv("WAYMARK_USER", "carol")
    me = local_identity()
    assert me == Identity("carol", verified=False) and me.label == "carol (unverified)"
