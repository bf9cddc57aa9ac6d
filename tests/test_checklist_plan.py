"""The migration plan: the shipped plan files, edits a team makes to them, errors that name the file,
line, entry and field, and the classifier rules that give each asset its workload kind."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from checklist.assets import APP, FEATURE_TABLE, REGISTERED_MODEL, SERVING_ENDPOINT, VECTOR_INDEX, Asset
from checklist.plan import SHIPPED_PLAN_DIR, PlanError, load_plan
from checklist.rules import classify
from tests.test_checklist import _experiment


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


def test_plan_errors_give_the_line_of_the_field(plan_dir):
    """pydantic validates the files; the error still names the file, its line, the entry and the field."""
    checklist = plan_dir / "checklist.toml"
    text = checklist.read_text(encoding="utf-8")
    _edit(checklist, 'id = "automl"\n', 'id = "automl"\nowner = "x"\n')
    line = text.splitlines().index('id = "automl"') + 2      # 1-based, the line after the id
    with pytest.raises(PlanError) as err:
        load_plan(plan_dir)
    assert f"checklist.toml, line {line}: [[steps]] 'automl': field 'owner': unknown field" in str(err.value)


def test_a_workloads_step_without_kinds_is_refused_also_when_kinds_is_left_out(plan_dir):
    checklist = plan_dir / "checklist.toml"
    text = checklist.read_text(encoding="utf-8")
    block = text[text.index('id = "automl"'):]
    kinds_line = next(l for l in block.splitlines() if l.startswith("kinds"))
    _edit(checklist, kinds_line + "\n", "")
    with pytest.raises(PlanError) as err:
        load_plan(plan_dir)
    assert "field 'kinds'" in str(err.value) and "needs the workload kinds" in str(err.value)


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
