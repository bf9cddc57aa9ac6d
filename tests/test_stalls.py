"""A hung or unreachable server fails its own source within the configured time limits, and does not
hold up the other sources: they are collected in parallel and commit as soon as they are done."""
from __future__ import annotations

import pytest

from tests.conftest import client, mlflow_source, new_mlflow_store, write_config
from tests.fault_servers import HangServer, closed_port_url

HTTP_TIMEOUT, RETRY_TIMEOUT = 2, 3
# Starting the source's own process and importing MLflow takes seconds on a busy machine: generous.
SLACK_SECONDS = 60


@pytest.fixture()
def healthy_uri(tmp_path, mlflow_template) -> str:
    uri = new_mlflow_store(tmp_path / "ok", mlflow_template)
    c = client(uri)
    exp = c.create_experiment("fine", artifact_location=(tmp_path / "ok" / "artifacts").as_uri())
    c.set_terminated(c.create_run(exp).info.run_id)
    return uri


def snapshot(tmp_path, sources):
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store

    config = load_config(write_config(tmp_path / "g.toml", sources))
    outcomes = {o.source: o for o in snapshot_all(config)}
    with Store(config.store_path).reader() as con:
        rows = con.execute("SELECT source, snapshot_id, status, finished_at FROM snapshots").fetchall()
    return outcomes, {r[0]: r[1:] for r in rows}


def assert_stalled_source_failed_alone(outcomes, rows, words):
    stalled, ok = outcomes["stalled"], outcomes["healthy"]
    assert ok.ok and ok.counts["runs"]["added"] == 1, ok.errors
    assert not stalled.ok and any(w in " ".join(stalled.errors) for w in words), stalled.errors
    assert stalled.seconds < HTTP_TIMEOUT + RETRY_TIMEOUT + SLACK_SECONDS, stalled.seconds
    # Listed first, yet committed last: the healthy source did not wait for it.
    assert rows["stalled"][1] == "failed" and rows["healthy"][1] == "ok"
    assert rows["healthy"][0] < rows["stalled"][0] and rows["healthy"][2] <= rows["stalled"][2]


def test_hanging_mlflow_server_fails_within_its_limits_and_does_not_hold_up_others(tmp_path, healthy_uri):
    with HangServer() as server:
        outcomes, rows = snapshot(tmp_path, [
            mlflow_source("stalled", server.url, http_timeout_seconds=HTTP_TIMEOUT, retry_timeout_seconds=RETRY_TIMEOUT),
            mlflow_source("healthy", healthy_uri)])
        assert server.accepted   # the request did reach the server, which never answered
    assert_stalled_source_failed_alone(outcomes, rows, ["timed out", "timeout", "Timeout"])


def test_closed_port_fails_within_its_limits_and_does_not_hold_up_others(tmp_path, healthy_uri):
    outcomes, rows = snapshot(tmp_path, [
        mlflow_source("stalled", closed_port_url(), http_timeout_seconds=HTTP_TIMEOUT,
                      retry_timeout_seconds=RETRY_TIMEOUT),
        mlflow_source("healthy", healthy_uri)])
    assert_stalled_source_failed_alone(outcomes, rows, ["Connection refused", "Max retries exceeded"])


def test_hanging_azure_service_fails_within_its_limits(tmp_path, healthy_uri):
    with HangServer() as server:
        outcomes, rows = snapshot(tmp_path, [
            {"name": "stalled", "kind": "azuresearch", "platform": "azureml", "search_endpoint": server.url,
             "http_timeout_seconds": HTTP_TIMEOUT, "retry_timeout_seconds": RETRY_TIMEOUT},
            mlflow_source("healthy", healthy_uri)])
    assert_stalled_source_failed_alone(outcomes, rows, ["Timeout"])


def test_mlflow_http_settings_per_source():
    from collectors.config import parse_config
    from collectors.runner import mlflow_http_env, mlflow_retries

    def source(**extra):
        return parse_config({"sources": [mlflow_source("s", "https://mlflow.example.com", **extra)]}).sources[0]

    default = mlflow_http_env(source(), environ={})
    assert default["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30" and default["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    configured = mlflow_http_env(source(http_timeout_seconds=5, retry_timeout_seconds=1),
                                 environ={"MLFLOW_HTTP_REQUEST_TIMEOUT": "120", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7"})
    assert configured["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5" and configured["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    # Without config keys, what the operator set in the environment is kept.
    env = mlflow_http_env(source(), environ={"MLFLOW_HTTP_REQUEST_TIMEOUT": "7", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"})
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7" and "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in env
    for timeout, retry in [(30, 90), (1, 600), (600, 3600), (2, 3)]:
        n = mlflow_retries(timeout, retry)
        assert n == 0 or n * (timeout + 0.5) + (2 ** n - 2) <= retry


def test_a_collector_process_never_runs_the_apps_script(tmp_path, monkeypatch):
    """Streamlit runs a page with `sys.modules["__main__"]` set to its script; a spawned collector
    process re-runs the parent's main script unless told otherwise. "Snapshot now" on a remote
    MLflow source must not execute app.py (or any page) again in the collector's process."""
    import sys
    import types

    marker = tmp_path / "script-ran"
    script = tmp_path / "app_like.py"
    script.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n", encoding="utf-8")
    streamlit_main = types.ModuleType("__main__")
    streamlit_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", streamlit_main)
    outcomes, _ = snapshot(tmp_path, [mlflow_source("stalled", closed_port_url(), http_timeout_seconds=HTTP_TIMEOUT,
                                                    retry_timeout_seconds=RETRY_TIMEOUT)])
    assert not marker.exists()
    # The source failed for its own reason, reported from inside its process.
    assert any(w in " ".join(outcomes["stalled"].errors) for w in ["Connection refused", "Max retries exceeded"]), \
        outcomes["stalled"].errors
    assert sys.modules["__main__"] is streamlit_main
