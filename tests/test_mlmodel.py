"""One parse of MLmodel files for every registry kind (collectors.mlmodel)."""
import pytest

from collectors.mlmodel import origin_row


def test_an_mlmodel_names_its_origin():
    text = ("artifact_path: model\nflavors:\n  sklearn: {}\n  python_function: {}\nmodel_uuid: u-1\n"
            "model_id: m-1\nrun_id: r-1\nutc_time_created: '2026-11-01 10:00:00.000000'\n")
    row = origin_row("churn", "3", text)
    assert row == {"name": "churn", "version": "3", "read_status": "ok", "origin_run_id": "r-1",
                   "origin_model_uuid": "u-1", "origin_model_id": "m-1", "artifact_path": "model",
                   "created_utc": "2026-11-01 10:00:00.000000", "flavors": ["python_function", "sklearn"]}


@pytest.mark.parametrize("text, detail", [(": : [", "not YAML"), ("- a\n- b\n", "not a mapping")])
def test_a_broken_mlmodel_is_an_unreadable_gap(text, detail):
    row = origin_row("churn", "3", text)
    assert row["read_status"] == "unreadable" and detail in row["detail"]


def test_odd_flavors_are_no_flavors_not_a_crash():
    row = origin_row("churn", "3", "run_id: r-1\nflavors: [sklearn]\n")
    assert row["read_status"] == "ok" and row["flavors"] == [] and row["origin_run_id"] == "r-1"
