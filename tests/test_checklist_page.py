"""AppTest of the Checklist page on the real demo workspace: figures, steps, burn-up, filters, CSV,
and a manual status saved on the page (a real write from the app process), seen after the rerun
with its history; plus the Overview's migration figure and a broken plan file."""
from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from checklist.plan import SHIPPED_PLAN_DIR
from ui.safe_text import md  # pages show collected text escaped

TIMEOUT = 90
APP = str(Path(__file__).resolve().parent.parent / "app.py")
MODEL_KEY = "registered_model:dbx-churn:churn-prediction-gbm"
ENDPOINT_KEY = "serving_endpoint:dbx-uc:churn-scoring"


def checklist_page(monkeypatch, config_path) -> AppTest:
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    monkeypatch.setenv("WAYMARK_USER", "dana")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    at.switch_page("pages/checklist.py").run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def frame_with(at: AppTest, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def widget(elements, label: str):
    return next(e for e in elements if e.label == label)


def test_overview_shows_the_migration_figure(monkeypatch, demo_copy):
    monkeypatch.setenv("WAYMARK_CONFIG", str(demo_copy / "governance.toml"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert metric(at, "Migrated") == "62%"


def test_checklist_shows_progress_steps_kinds_and_burn_up(monkeypatch, demo_copy):
    at = checklist_page(monkeypatch, demo_copy / "governance.toml")
    assert at.title[0].value == "Migration checklist"
    # The demo: the churn experiment trains on Fabric, Production's model was copied there (both
    # registries: workspace and Unity Catalog), and Azure ML serves copies of what both churn
    # endpoints serve; the feature table is only reachable through a shortcut, the embeddings
    # endpoint and the vector index have no replacement.
    assert metric(at, "Migration progress") == "62%"
    assert metric(at, "Complete") == "5 of 8"
    assert metric(at, "Proven by evidence") == "5"
    assert metric(at, "Unowned") == "8"
    steps = frame_with(at, "detail")
    assert len(steps) == 11 and steps.loc[2, "progress"] == 1.0
    assert steps.loc[7, "detail"].startswith("no evidence in the store")       # hybrid pattern: by hand
    workloads = frame_with(at, "evidence").set_index("name")
    assert workloads.loc["/churn-prediction/ci-cd-pipeline", "workload"].startswith("Classical model training")
    assert "v4 (Production, Staging) → fabric-churn churn_model v3" in workloads.loc["churn-prediction-gbm", "evidence"]
    assert workloads.loc["Default", "in_scope"] == False  # noqa: E712  (listed, not counted)
    assert workloads.loc["churn.ml.churn_gbm", "asset_type"] == "uc_model"
    uc_reason = workloads.loc["churn.ml.churn_gbm", "reason"]
    assert "same runs as workspace-registry model dbx-churn:churn-prediction-gbm" in uc_reason
    assert workloads.loc["churn.gold.support_tickets_index", "status"] == "Not started"
    assert workloads.loc["churn.gold.support_tickets_index", "evidence"] == "no search index on the target replaces it"
    assert workloads.loc["churn.gold.features", "status"] == "In progress"
    assert "OneLake shortcut" in workloads.loc["churn.gold.features", "evidence"]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    assert any(b.label == "Download workloads (CSV)" for b in at.get("download_button"))


def test_endpoint_workload_shows_its_azure_ml_evidence(monkeypatch, demo_copy):
    at = checklist_page(monkeypatch, demo_copy / "governance.toml")
    widget(at.multiselect, "Kind").set_value(["model_serving"]).run()
    assert not at.exception, at.exception
    endpoints = frame_with(at, "evidence").set_index("name")
    assert sorted(endpoints.index) == ["bge-embeddings", "churn-batch-shadow", "churn-scoring"]
    scoring = endpoints.loc["churn-scoring"]
    assert scoring["workload"] == "Real-time model serving" and scoring["target"] == "Azure ML managed online endpoints"
    assert scoring["status"] == "Done" and scoring["evidence_status"] == "Done"      # words, not codes
    assert ("aml-churn: endpoint churn-aml serves copies of churn.ml.churn_gbm v2, churn.ml.churn_gbm v4"
            in scoring["evidence"])
    assert "provisioning Succeeded" in scoring["evidence"]
    assert endpoints.loc["bge-embeddings", "status"] == "Not started"
    assert endpoints.loc["bge-embeddings", "rule"] == "serving-endpoint-foundation-model"
    steps = frame_with(at, "detail").set_index("title")
    serving = steps.loc["Set up Azure ML managed endpoints for what Databricks Model Serving serves"]
    assert (serving["complete"], serving["workloads"]) == (2, 3)
    # The edit form says the same about the endpoint.
    widget(at.selectbox, "Item").set_value(ENDPOINT_KEY).run()
    assert any("churn-aml serves copies" in c.value for c in at.caption)


def test_status_set_on_the_page_is_stored_with_history_and_disagreement_shown(monkeypatch, demo_copy):
    at = checklist_page(monkeypatch, demo_copy / "governance.toml")
    widget(at.selectbox, "Item").set_value(MODEL_KEY).run()
    widget(at.selectbox, "Status").set_value("blocked")
    widget(at.text_input, "Owner").input("dana")
    widget(at.text_area, "Notes").input("waiting for the OneLake shortcut")
    widget(at.button, "Save").click().run()
    assert not at.exception, at.exception
    assert any("Saved" in s.value for s in at.success)
    assert metric(at, "Blocked") == "1" and metric(at, "Evidence disagrees") == "1"
    assert metric(at, "Migration progress") == "50%"
    assert any("churn-prediction-gbm" in w.value and "evidence shows done" in w.value for w in at.warning)
    history = frame_with(at, "recorded_at")
    assert history.loc[0, "status"] == "Blocked" and history.loc[0, "who"] == "dana (unverified)"
    assert history.loc[0, "notes"] == "waiting for the OneLake shortcut"

    # A second edit, after a fresh load: the form starts from the stored state; history grows.
    at = checklist_page(monkeypatch, demo_copy / "governance.toml")
    widget(at.selectbox, "Item").set_value(MODEL_KEY).run()
    assert widget(at.selectbox, "Status").value == "blocked"
    assert widget(at.text_input, "Owner").value == "dana"
    widget(at.selectbox, "Status").select_index(0)            # back to "(from evidence)"
    widget(at.button, "Save").click().run()
    assert not at.exception, at.exception
    assert metric(at, "Migration progress") == "62%" and metric(at, "Unowned") == "7"
    history = frame_with(at, "recorded_at")
    assert len(history) == 2 and history.loc[0, "status"] == "(from evidence)" and history.loc[1, "status"] == "Blocked"

    # Filters: only the disagreeing rows, only the unowned ones.
    widget(at.toggle, "Only where evidence disagrees").set_value(True).run()
    assert not any("evidence" in d.value.columns for d in at.dataframe)       # an empty result says so
    assert any(c.value == "No workload matches these filters." for c in at.caption)
    widget(at.toggle, "Only where evidence disagrees").set_value(False)
    widget(at.selectbox, "Owner").set_value("unowned").run()
    unowned = list(frame_with(at, "evidence")["name"])
    assert len(unowned) == 8 and "churn-prediction-gbm" not in unowned and "churn-scoring" in unowned


def test_a_broken_plan_file_is_reported_by_name(monkeypatch, demo_copy, tmp_path):
    plan_dir = tmp_path / "plan"
    shutil.copytree(SHIPPED_PLAN_DIR, plan_dir)
    checklist = plan_dir / "checklist.toml"
    checklist.write_text(checklist.read_text(encoding="utf-8").replace('kinds = ["automl"]', 'kinds = ["autoML"]'),
                         encoding="utf-8")
    monkeypatch.setenv("WAYMARK_PLAN_DIR", str(plan_dir))
    at = checklist_page(monkeypatch, demo_copy / "governance.toml")
    assert any(md(checklist) in e.value and "'autoML'" in e.value for e in at.error)


def test_a_step_set_to_blocked_counts_as_blocked_and_steps_export_as_csv(monkeypatch, demo_copy):
    """Issue 13: a step blocked by hand is blocked in the headline and on the step, whatever its
    workloads show; the steps download as CSV like the workloads."""
    at = checklist_page(monkeypatch, demo_copy / "governance.toml")
    before = int(metric(at, "Blocked"))
    from checklist.plan import load_plan

    step = load_plan(SHIPPED_PLAN_DIR).steps[7]                 # the hybrid pattern: measured by hand
    widget(at.selectbox, "Item").set_value(f"step:{step.id}").run()
    widget(at.selectbox, "Status").set_value("blocked")
    widget(at.button, "Save").click().run()
    assert not at.exception, at.exception
    assert int(metric(at, "Blocked")) == before + 1
    steps = frame_with(at, "title")
    assert "Blocked" in set(steps["state"])
    assert not steps.astype(str).isin(["None", "nan", "NaT"]).any().any()
    assert any(b.label == "Download steps (CSV)" for b in at.get("download_button"))
    from ui.checklist_loaders import steps_csv

    exported = steps_csv(steps_frame(demo_copy))
    assert exported.decode().splitlines()[0].startswith("number,title,state,progress")
    assert ",blocked," in exported.decode()


def steps_frame(workspace):
    """The steps as the page computes them, straight from the store (for the CSV check)."""
    from checklist import progress
    from checklist.plan import load_plan
    from store import Store

    return progress.assess(Store(workspace / "waymark.duckdb"), load_plan(SHIPPED_PLAN_DIR)).steps


def test_the_item_being_edited_lives_in_the_url(monkeypatch, demo_copy):
    monkeypatch.setenv("WAYMARK_CONFIG", str(demo_copy / "governance.toml"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/checklist.py")
    at.query_params["item"] = ENDPOINT_KEY
    at.run()
    assert not at.exception, at.exception
    assert widget(at.selectbox, "Item").value == ENDPOINT_KEY
    widget(at.selectbox, "Item").set_value(MODEL_KEY).run()
    assert at.query_params["item"] == MODEL_KEY
