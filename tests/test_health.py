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
from demo.azure_stub import AML_RG, AML_SUB, AML_WS, CHURN_HEALTH, AzureStub, _log_rows, churn_azureml
from store import Store
from store.history import EntityBatch, Scope, commit_snapshot
from ui import health_loaders as hl

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
               "logs": {"rows": _log_rows(CHURN_HEALTH, NOW.replace(minute=0), hours=2)}}
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
    assert table.loc["blue", "should_serve"] == "—"   # no `serves` in this SLO: no drift check


def test_a_rejected_review_flags_the_served_version(workspace):
    store = Store(workspace / "w.duckdb")
    with store.writer() as con:
        con.execute("""INSERT INTO gate_review_log VALUES (1, '2026-11-24T10:00:00Z', 'review', 'aml', 'azureml',
                       'churn-model', '2', 'reject', 'alice', false, 'local', 'worse than Production', 'FAIL',
                       NULL, '{}', NULL, '', 'h1')""")
    table = hl.health_table(store, (), now=NOW).set_index("deployment")
    assert table.loc["blue", "drift"] and "rejected" in table.loc["blue", "reasons"]
    assert not table.loc["green", "drift"]


def test_series_for_one_endpoint_over_a_window(workspace):
    series = hl.series_for(Store(workspace / "w.duckdb"), "aml", "churn-aml", hours=1)
    assert set(series["deployment"]) == {"blue", "green"}
    assert {"latency p95 (ms)", "requests / min", "error rate (%)", "CPU (%)"} <= set(series["label"])
    assert series["time"].max() - series["time"].min() < timedelta(hours=1)


def test_databricks_prometheus_counters_become_rates_and_quantiles():
    from demo.databricks_stub import prometheus_text
    from prometheus_client.parser import text_string_to_metric_families
    import json

    rows = []
    for t, requests, errors in ((0, 100, 0), (120_000, 700, 6)):   # two exports, two minutes apart
        text = prometheus_text("churn-dbx", ["churn-v4"], requests=requests, errors=errors)
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                rows.append({"source": "dbx", "endpoint": "churn-dbx", "metric": s.name,
                             "labels": json.dumps(dict(sorted(s.labels.items()))), "sampled_at": t, "value": s.value})
    series = hl.databricks_series(pd.DataFrame(rows))
    got = {m: v for m, v in zip(series["metric"], series["value"])}
    assert got["requests_per_min"] == pytest.approx(300.0)
    assert got["error_rate_pct"] == pytest.approx(1.0)
    assert 0 < got["latency_p50_ms"] <= 50.0 and got["latency_p95_ms"] >= 50.0 or got["latency_p95_ms"] == 50.0
    assert set(series["deployment"]) == {"churn-v4"}


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
