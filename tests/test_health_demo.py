"""The Endpoint health page on the real demo workspace: the churn model on Azure ML (blue v2 90 % /
green v3 10 %) next to the Databricks serving endpoints."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.test_pages import APP


def test_demo_endpoint_health(monkeypatch, demo_copy):
    monkeypatch.setenv("WAYMARK_CONFIG", str(demo_copy / "governance.toml"))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("pages/endpoint_health.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    aml = table[table["platform"] == "azureml"].set_index("deployment")
    assert aml.loc["blue", "traffic_pct"] == 90 and aml.loc["green", "traffic_pct"] == 10
    assert aml.loc["blue", "should_serve"] == "churn_model@Production → v2"
    # Blue is the tuned model (Fabric's Production, via the MLmodel origin); green the November retrain.
    assert not aml.loc["blue", "drift"] and aml.loc["green", "drift"]
    assert aml.loc["blue", "requests_per_min"] > aml.loc["green", "requests_per_min"] > 0
    assert "databricks" in set(table["platform"])
    assert "churn-aml · azureml (aml-churn)" in at.selectbox[0].options
    at.selectbox[0].select("churn-aml · azureml (aml-churn)").run()
    # The SLO metrics are charted at once; the others when a person picks them.
    pills = at.get("button_group")[-1]
    assert list(pills.value) == ["latency p95 (ms)", "requests / min", "error rate (%)"]
    assert len(at.get("vega_lite_chart")) == 3
    pills.set_value(list(pills.value) + ["CPU (%)"]).run()
    assert not at.exception, at.exception
    assert len(at.get("vega_lite_chart")) == 4


def test_demo_traffic_has_a_working_day_shape_with_noise():
    """Issue 13: daily seasonality with noise, not a sine wave — quiet nights, two working-day
    peaks, quieter weekends, and no two days alike."""
    from datetime import datetime, timedelta, timezone

    from demo.azure_fixtures import daily_load

    monday = datetime(2026, 11, 23, tzinfo=timezone.utc)
    day = [daily_load(monday + timedelta(minutes=10 * i), "blue") for i in range(144)]
    hourly = [sum(day[h * 6:(h + 1) * 6]) / 6 for h in range(24)]
    assert max(hourly[0:6]) < 0.3 * max(hourly[9:17])                     # night far below the working day
    assert hourly[10] > hourly[13] < hourly[15]                           # a lunch dip between two peaks
    saturday = [daily_load(monday + timedelta(days=5, minutes=10 * i), "blue") for i in range(144)]
    assert sum(saturday) < 0.6 * sum(day)
    tuesday = [daily_load(monday + timedelta(days=1, minutes=10 * i), "blue") for i in range(144)]
    assert tuesday != day                                                 # noise: days differ
