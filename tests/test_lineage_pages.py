"""AppTest of the Audit trace and Lineage explorer pages on the demo workspace."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest



APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_page(monkeypatch, config_path, page: str) -> AppTest:
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_audit_trace_shows_the_cross_platform_chain_and_downloads(monkeypatch, demo_copy):  # noqa: F811
    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/audit_trace.py")
    assert at.title[0].value == "Audit trace"
    at.selectbox(key="audit_alias").set_value("churn_model@Production · fabric").run()
    assert not at.exception, at.exception
    chain = at.dataframe[2].value
    assert "run gbm-tuned-depth (databricks)" in set(chain["upstream"])         # a name, not a node id
    assert "run:databricks:" in " ".join(chain["upstream_id"])                  # the id alongside
    assert {"registry", "artifact_origin"} <= set(chain["basis"])
    assert chain["snapshot_time"].notna().all()
    runs = at.dataframe[0].value
    assert runs["run_name"].tolist() == ["gbm-tuned-depth"]
    inputs = at.dataframe[1].value
    versions = inputs[inputs["level"] == "version"]
    assert set(zip(versions["name"], versions["version"])) == {("churn.gold.features", "14"), ("churn.gold.holdout", "5")}
    assert "churn.silver.customer_events" in set(inputs["name"])        # upstream, by UC table lineage
    assert len(at.get("download_button")) == 3      # Markdown, printable HTML, JSON
    assert len(at.get("vega_lite_chart")) == 1      # alias history timeline


def test_audit_trace_on_a_past_date_names_the_later_move(monkeypatch, demo_copy):  # noqa: F811
    import duckdb

    con = duckdb.connect(str(demo_copy / "waymark.duckdb"), read_only=True)
    first_move = con.execute("""SELECT s.finished_at FROM model_aliases a JOIN snapshots s ON s.snapshot_id = a.valid_from
                                WHERE a.name = 'churn-prediction-gbm' AND a.alias = 'Production' AND a.version = '1'
                                """).fetchall()[0][0]
    con.close()
    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/audit_trace.py")
    at.selectbox(key="audit_alias").set_value("churn-prediction-gbm@Production · databricks").run()
    at.text_input(key="audit_day").input(first_move.date().isoformat()).run()
    assert not at.exception, at.exception
    # The later move is information, not a gap.
    assert not any("moved" in w.value for w in at.warning)
    assert any("Production" in i.value for i in at.info)
    assert at.dataframe[0].value["run_name"].tolist() == ["gbm-baseline"]


def test_audit_trace_from_an_endpoint_shows_traffic_runs_and_shas(monkeypatch, demo_copy):  # noqa: F811
    from demo.build import git_sha

    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/audit_trace.py")
    at.radio(key="audit_start").set_value("Endpoint").run()
    labels = at.selectbox(key="audit_endpoint").options
    assert {"churn-scoring · databricks", "churn-aml · azureml"} <= set(labels)
    at.selectbox(key="audit_endpoint").set_value("churn-aml · azureml").run()
    assert not at.exception, at.exception
    serving = at.dataframe[0].value
    assert set(zip(serving["route"], serving["version"], serving["traffic_pct"])) == {("blue", "2", 90), ("green", "3", 10)}
    chain = at.dataframe[3].value
    assert chain["upstream_id"].iloc[0] == "model_version:azureml:churn-model/2"
    assert chain["upstream"].iloc[0] == "model version churn-model v2 (azureml)"
    runs = at.dataframe[1].value
    assert set(runs["git_sha"]) == {git_sha("tuned"), git_sha("retrain-nov")}
    assert len(at.get("download_button")) == 3
    assert len(at.get("vega_lite_chart")) == 0      # no alias history for an endpoint


def test_lineage_explorer_draws_and_clicks_through(monkeypatch, demo_copy):  # noqa: F811
    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/lineage_explorer.py")
    assert at.title[0].value == "Lineage explorer"
    focus = at.selectbox(key="lineage_focus")
    assert focus.value.startswith("alias:")
    assert len(at.get("graphviz_chart")) == 1
    neighbour = at.button[0]
    neighbour.click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lineage_focus").value == neighbour.key.split(":", 1)[1]  # the button label is the node id, escaped
    at.multiselect(key="lineage_types").set_value(["commit"]).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lineage_focus").value.startswith("commit:")
    edges = at.dataframe[0].value
    assert set(edges["kind"]) >= {"code_version"}
    json.dumps(edges.to_dict())   # plain data
