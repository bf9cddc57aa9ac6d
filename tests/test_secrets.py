"""Credentials never reach the store: a server that echoes the token or Basic credential it was sent
gets neither into `snapshots.errors`/`warnings` nor into a reported outcome, for every kind of client."""
from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import mlflow_source, write_config
from tests.fault_servers import EchoServer

TOKEN = "wmk-T0k3n-only-sent-in-a-header-4f9a2c"
PASSWORD = "s3cr3t-Pa55-only-sent-as-basic"


def stored_text(store_path) -> str:
    from store.db import Store

    with Store(store_path).reader() as con:
        rows = con.execute("SELECT coalesce(errors::VARCHAR, '') || coalesce(warnings::VARCHAR, '') "
                           "FROM snapshots").fetchall()
    return " ".join(r[0] for r in rows)


def collect(tmp_path, sources):
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    config = load_config(write_config(tmp_path / "g.toml", sources))
    return {o.source: o for o in snapshot_all(config)}, config.store_path


def assert_nowhere(secrets, outcomes, store_path):
    text = stored_text(store_path)
    reported = json.dumps([o.to_json() for o in outcomes.values()], default=str)
    for secret in secrets:
        assert secret not in text, text
        assert secret not in reported, reported


@pytest.fixture()
def no_retries(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def test_mlflow_bearer_token_echoed_by_the_server_is_redacted(tmp_path, monkeypatch, no_retries):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
    with EchoServer(401) as server:
        outcomes, store_path = collect(tmp_path, [mlflow_source("echo", server.url)])
    [o] = outcomes.values()
    assert not o.ok and any("not accepted" in e for e in o.errors), o.errors   # the error itself is kept
    assert "[redacted]" in stored_text(store_path)
    assert_nowhere([TOKEN, base64.b64encode(TOKEN.encode()).decode()], outcomes, store_path)


def test_mlflow_basic_credential_echoed_raw_and_decoded_is_redacted(tmp_path, monkeypatch, no_retries):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    with EchoServer(403) as server:
        outcomes, store_path = collect(tmp_path, [mlflow_source("echo", server.url)])
    [o] = outcomes.values()
    assert not o.ok and any("not accepted" in e for e in o.errors), o.errors
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert_nowhere([PASSWORD, basic, basic.rstrip("=")], outcomes, store_path)


def test_databricks_token_echoed_by_the_workspace_is_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    with EchoServer(401) as server:
        outcomes, store_path = collect(tmp_path, [{
            "name": "dbx-uc", "kind": "databricks", "platform": "databricks", "host": server.url,
            "auth_type": "pat", "retry_timeout_seconds": 5}])
    [o] = outcomes.values()
    text = stored_text(store_path) + " ".join(o.errors + o.warnings)
    assert "not accepted" in text, text                                  # the server's message is kept ...
    assert_nowhere([TOKEN], outcomes, store_path)                       # ... its echo of the token is not


def test_azure_bearer_token_from_a_credential_is_redacted(tmp_path, monkeypatch):
    from azure.core.credentials import AccessToken

    class SecretCredential:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(TOKEN, 4_102_444_800)

    monkeypatch.setattr("collectors.search_source.credential_for", lambda urls: SecretCredential())
    with EchoServer(403) as server:
        outcomes, store_path = collect(tmp_path, [{"name": "search", "kind": "azuresearch", "platform": "azureml",
                                                   "search_endpoint": server.url}])
    [o] = outcomes.values()
    assert not o.ok and any("not accepted" in e for e in o.errors), o.errors
    assert_nowhere([TOKEN], outcomes, store_path)


def test_redact_covers_sent_values_and_their_encodings(monkeypatch):
    from collectors.report import redact, register_secret

    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "dose-cl13nt-s3cret")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-long")
    register_secret("entra-access-token-value")
    for secret in ("dose-cl13nt-s3cret", "hunter2-long", base64.b64encode(b"bob:hunter2-long").decode(),
                   "entra-access-token-value", base64.b64encode(b"entra-access-token-value").decode(),
                   "dose%2Dcl13nt%2Ds3cret".replace("%2D", "-")):
        assert secret not in redact(f"server said: {secret}!"), secret
    assert redact("run abc finished") == "run abc finished"
