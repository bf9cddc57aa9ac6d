"""Endpoint health: the table (drift by producing run, red/amber/green against SLOs, staleness),
Databricks Prometheus rates, and the page (AppTest), on a store filled by the real Azure ML
collector against the local stub."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from collectors.azureml_source import AzureMlSource
from collectors.config import Slo, parse_config
from collectors.report import SourceReport
from demo.azure_fixtures import AML_RG, AML_SUB, AML_WS, CHURN_HEALTH, churn_azureml, log_rows
from demo.azure_stub import AzureStub
from store import Store
from store.entities import EntityBatch, Scope
from store.history import commit_snapshot
from health import series as hs
from health import status as hl

NOW = datetime(2026, 11, 24, 15, 2, tzinfo=timezone.utc)
RUN_TUNED, RUN_NOV = "a" * 32, "b" * 32
PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "endpoint_health.py")


def mlmodel(folder: Path, run_id: str) -> str:
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text(f"artifact_path: model\nrun_id: {run_id}\nmodel_uuid: u-{run_id[:6]}\n"
                                    "flavors:\n  sklearn: {}\n  python_function: {}\n", encoding="utf-8")
    return folder.as_uri()


@pytest.fixture()
def workspace(tmp_path) -> Path:
    """A Fabric registry (Production → copy of the tuned run, Staging → November retrain) and the
    Azure ML side: churn-aml blue v2 (tuned) 90 % / green v3 (November) 10 %."""
    store = Store(tmp_path / "w.duckdb")
    uris = {"2": mlmodel(tmp_path / "aml" / "v2", RUN_TUNED), "3": mlmodel(tmp_path / "aml" / "v3", RUN_NOV)}
    t0 = NOW - timedelta(hours=1)
    commit_snapshot(store, source="fab", kind="mlflow", platform="fabric", mode="full", started_at=t0,
                    finished_at=t0, warnings=[], state={}, batches={
                        "model_versions": EntityBatch([{"name": "churn_model", "version": "2", "run_id": None},
                                                       {"name": "churn_model", "version": "3", "run_id": None}],
                                                      Scope.ALL),
                        "model_origins": EntityBatch([{"name": "churn_model", "version": "2", "read_status": "ok",
                                                       "origin_run_id": RUN_TUNED},
                                                      {"name": "churn_model", "version": "3", "read_status": "ok",
                                                       "origin_run_id": RUN_NOV}], Scope.ALL),
                        "model_aliases": EntityBatch([{"name": "churn_model", "alias": "Production", "version": "2"},
                                                      {"name": "churn_model", "alias": "Staging", "version": "3"}],
                                                     Scope.ALL)})
    fixture = {"azureml": churn_azureml(model_uris=uris), "health": CHURN_HEALTH,
               "logs": {"rows": log_rows(CHURN_HEALTH, NOW.replace(minute=0), hours=2)}}
    with AzureStub(fixture) as stub:
        config = parse_config({"sources": [{
            "name": "aml", "kind": "azureml", "platform": "azureml", "subscription_id": AML_SUB,
            "resource_group": AML_RG, "workspace": AML_WS, "arm_endpoint": stub.url, "metrics_endpoint": stub.url,
            "logs_endpoint": stub.url, "log_analytics_workspace_id": "law", "metrics_window_hours": 6}]}).sources[0]
        report = SourceReport("aml")
        mode, batches, state = AzureMlSource(config, report, now=lambda: NOW).collect(None, False)
    commit_snapshot(store, source="aml", kind="azureml", platform="azureml", mode=mode, started_at=NOW,
                    finished_at=NOW, batches=batches, warnings=[], state=state)
    (tmp_path / "governance.toml").write_text(
        '[store]\npath = "w.duckdb"\n\n'
        '[[sources]]\nname = "fab"\nkind = "mlflow"\nplatform = "fabric"\n'
        f'tracking_uri = "sqlite:///{tmp_path}/unused.db"\n\n'
        f'[[sources]]\nname = "aml"\nkind = "azureml"\nplatform = "azureml"\nsubscription_id = "{AML_SUB}"\n'
        f'resource_group = "{AML_RG}"\nworkspace = "{AML_WS}"\n\n'
        '[[slo]]\nendpoint = "churn-*"\nserves = "churn_model@Production"\nlatency_p95_ms = 1000\n'
        'error_rate_pct = 0.5\nstale_after_minutes = 1000000\n', encoding="utf-8")
    return tmp_path


SLOS = (Slo(endpoint="churn-*", serves="churn_model@Production", latency_p95_ms=1000, error_rate_pct=0.5),)


def test_table_flags_drift_by_producing_run_and_grades_against_the_slo(workspace):
    table = hl.health_table(Store(workspace / "w.duckdb"), SLOS, now=NOW).set_index("deployment")
    assert set(table.index) == {"blue", "green"}
    blue, green = table.loc["blue"], table.loc["green"]
    # Blue serves Azure ML v2, registered from the tuned run's artifacts: the same run as Fabric's Production.
    assert (blue["model"], blue["version"], blue["traffic_pct"]) == ("churn-model", "2", 90)
    assert blue["should_serve"] == "churn_model@Production → v2"
    assert not blue["drift"] and blue["status"] == hl.GREEN, blue["reasons"]
    # Green serves the November retrain (Fabric's Staging): drift, and its 5xx rate breaks the 0.5 % SLO.
    assert green["drift"] and "not churn_model@Production" in green["reasons"]
    assert green["status"] == hl.RED and "error rate" in green["reasons"]
    assert 0 < blue["error_rate_pct"] < 0.5 < green["error_rate_pct"]
    assert blue["requests_per_min"] > green["requests_per_min"] > 0
    assert 0 < blue["latency_p50_ms"] < blue["latency_p95_ms"]
    assert not blue["stale"]
    assert table["last_data"].max() < NOW


def test_old_data_is_marked_stale_and_amber(workspace):
    slos = (Slo(endpoint="*", latency_p95_ms=1000, stale_after_minutes=30),)
    later = NOW + timedelta(hours=3)
    table = hl.health_table(Store(workspace / "w.duckdb"), slos, now=later).set_index("deployment")
    assert table["stale"].all()
    assert table.loc["blue", "status"] == hl.AMBER and "stale" in table.loc["blue", "reasons"]
    assert table.loc["blue", "should_serve"] is None   # no `serves` in this SLO: no drift check (the page shows —)


def test_a_rejected_review_flags_the_served_version(workspace):
    """The review is recorded the way the page records it (gates.reviews.submit_review), so the
    health table reads a real log entry, hash chain and all."""
    from dataclasses import replace

    from collectors.config import load_config
    from collectors.config_review import ReviewConfig, Reviewer
    from gates.evaluate import Context, evaluate
    from gates.identity import CONFIG, Identity
    from gates.policy import DEFAULT_POLICY, load_policy
    from gates.reviews import read_log, submit_review

    store = Store(workspace / "w.duckdb")
    config = replace(load_config(workspace / "governance.toml"), review=ReviewConfig(reviewers=(Reviewer("alice"),)))
    policy = load_policy(DEFAULT_POLICY)
    seen = evaluate(Context(store), policy, "aml", "churn-model", "2")
    submit_review(store, config, policy, Identity("alice", False, CONFIG), seen=seen, decision="reject",
                  note="worse than Production")
    assert [e.decision for e in read_log(store, "churn-model", "2")] == ["reject"]
    table = hl.health_table(store, (), now=NOW).set_index("deployment")
    assert table.loc["blue", "drift"] and "rejected" in table.loc["blue", "reasons"]
    assert not table.loc["green", "drift"]


def test_series_for_one_endpoint_over_a_window(workspace):
    series = hs.series_for(Store(workspace / "w.duckdb"), "aml", "churn-aml", hours=1)
    assert set(series["deployment"]) == {"blue", "green"}
    assert {"latency p95 (ms)", "requests / min", "error rate (%)", "CPU (%)"} <= set(series["label"])
    assert series["time"].max() - series["time"].min() < timedelta(hours=1)


def _export_rows(exports, endpoint="churn-dbx", entities=("churn-v4",), source="dbx") -> list[dict]:
    """Store-shaped samples of the stub's metrics exports: [(sampled_at ms, prometheus text)]."""
    from prometheus_client.parser import text_string_to_metric_families
    import json

    rows = []
    for t, text in exports:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                rows.append({"source": source, "endpoint": endpoint, "metric": s.name,
                             "labels": json.dumps(dict(sorted(s.labels.items()))), "sampled_at": t, "value": s.value})
    return rows


def test_databricks_export_is_read_as_per_minute_readings():
    """Counts in the export are requests during the last minute (gauges), and the latency histogram
    covers that minute: one export is a reading, and a lower count later is less traffic, not a reset."""
    from demo.databricks_stub import prometheus_text

    one = hs.databricks_series(pd.DataFrame(_export_rows([(0, prometheus_text("churn-dbx", ["churn-v4"],
                                                                               requests=700, errors=7))])))
    got = dict(zip(one["metric"], one["value"]))
    assert got["requests_per_min"] == pytest.approx(700.0)
    assert got["error_rate_pct"] == pytest.approx(1.0)
    # The stub's histogram of 700 requests around 42 ms: cumulative 210 under 25 ms, 560 under 50 ms
    # (and 100 ms), 679 under 250 ms. Read linearly inside the crossing bucket, as histogram_quantile:
    # p50 is request 350: 25 + 25 × (350 − 210) / (560 − 210) = 35 ms;
    # p95 is request 665: 100 + 150 × (665 − 560) / (679 − 560) ≈ 232.35 ms.
    assert got["latency_p50_ms"] == pytest.approx(35.0)
    assert got["latency_p95_ms"] == pytest.approx(100 + 150 * 105 / 119)
    assert got["cpu_pct"] == 12.5 and got["memory_pct"] == 30.0
    two = hs.databricks_series(pd.DataFrame(_export_rows([
        (0, prometheus_text("churn-dbx", ["churn-v4"], requests=700)),
        (120_000, prometheus_text("churn-dbx", ["churn-v4"], requests=100, errors=2))])))
    rpm = two[two["metric"] == "requests_per_min"].sort_values("time")["value"].tolist()
    assert rpm == [700.0, 100.0]
    assert two[two["metric"] == "error_rate_pct"].sort_values("time")["value"].tolist() == [0.0, 2.0]
    assert set(two["deployment"]) == {"churn-v4"}


def test_a_latency_summary_is_read_as_the_quantiles_it_names():
    text = ("# TYPE request_latency_ms summary\n"
            'request_latency_ms{served_entity_name="churn-v4",quantile="0.5"} 31\n'
            'request_latency_ms{served_entity_name="churn-v4",quantile="0.99"} 240\n'
            'request_latency_ms_sum{served_entity_name="churn-v4"} 900\n'
            'request_latency_ms_count{served_entity_name="churn-v4"} 20\n')
    series = hs.databricks_series(pd.DataFrame(_export_rows([(0, text)])))
    got = dict(zip(series["metric"], series["value"]))
    assert got == {"latency_p50_ms": 31.0, "latency_p99_ms": 240.0}


def _dbx_store(tmp_path, endpoint_row: dict, metrics_text: str | None) -> Store:
    store = Store(tmp_path / "dbx.duckdb")
    samples = _export_rows([(int((NOW - timedelta(minutes=5)).timestamp() * 1000), metrics_text)],
                           endpoint="churn-dbx") if metrics_text else []
    for s in samples:
        s.pop("source")
    commit_snapshot(store, source="dbx", kind="databricks", platform="databricks", mode="full", started_at=NOW,
                    finished_at=NOW, warnings=[], state={}, batches={
                        "serving_endpoints": EntityBatch([{"name": "churn-dbx", "ready": "READY", **endpoint_row}],
                                                         Scope.ALL),
                        "served_entities": EntityBatch([{"endpoint": "churn-dbx", "config": "active",
                                                         "served_entity_name": "churn-v4", "entity_name": "m",
                                                         "entity_version": "4", "traffic_pct": 100,
                                                         "deployment_state": "DEPLOYMENT_READY"}], Scope.ALL),
                        "endpoint_metrics": EntityBatch(samples, Scope.NONE)})
    return store


def test_a_databricks_endpoint_without_traffic_metrics_is_no_data_not_green(tmp_path):
    cpu_only = "# TYPE cpu_usage_percentage gauge\ncpu_usage_percentage{served_entity_name=\"churn-v4\"} 3.0\n"
    table = hl.health_table(_dbx_store(tmp_path, {"read_status": "ok"}, cpu_only), (), now=NOW)
    assert table.loc[0, "status"] == hl.GREY and "no metric data" in table.loc[0, "reasons"]


def test_an_endpoint_whose_details_were_not_read_is_an_error_not_green(tmp_path):
    from demo.databricks_stub import prometheus_text

    row = {"read_status": "forbidden", "detail": "User lacks CAN_VIEW on <b>churn-dbx</b>"}
    table = hl.health_table(_dbx_store(tmp_path, row, prometheus_text("churn-dbx", ["churn-v4"])), (), now=NOW)
    assert table.loc[0, "status"] == hl.ERROR
    assert "forbidden" in table.loc[0, "reasons"] and "<b>churn-dbx</b>" in table.loc[0, "reasons"]


def test_an_unreadable_review_log_is_an_error_not_green(workspace):
    store = Store(workspace / "w.duckdb")
    with store.writer() as con:   # a review log the loader cannot query (a damaged or foreign table)
        con.execute("DROP TABLE gate_review_log CASCADE")
        con.execute("CREATE TABLE gate_review_log (entry_id INTEGER, verdict VARCHAR)")
    table = hl.health_table(store, SLOS, now=NOW).set_index("deployment")
    assert set(table["status"]) == {hl.ERROR}
    assert "review log unreadable" in table.loc["blue", "reasons"]


def test_endpoint_health_page(monkeypatch, workspace):
    monkeypatch.setenv("WAYMARK_CONFIG", str(workspace / "governance.toml"))
    at = AppTest.from_file(PAGE, default_timeout=90)   # the page alone: it finds the workspace itself
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Endpoint health"
    table = at.dataframe[0].value
    assert set(table["deployment"]) == {"blue", "green"}
    assert table.set_index("deployment").loc["green", "drift"]
    assert next(m.value for m in at.metric if m.label == "Drifting") == "1"
    assert next(m.value for m in at.metric if m.label == "Red") == "1"
    assert at.selectbox[0].options == ["churn-aml · azureml (aml)"]
    at.segmented_control[0].set_value(6).run()
    assert not at.exception, at.exception
    assert not at.info   # samples exist for the chosen window
