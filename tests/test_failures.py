"""A failing source: recorded as a failed snapshot with a clear error, the others still commit,
exit code 1, and its last good snapshot stays the current one."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ENTITY_TABLES, mlflow_source, run_cli, table_dump, write_config

UNREACHABLE = "http://127.0.0.1:9"
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@pytest.fixture()
def fast_fail(monkeypatch):
    for k, v in FAST_FAIL.items():
        monkeypatch.setenv(k, v)


def test_unreachable_source_fails_alone_and_keeps_its_last_good_snapshot(workspace, tmp_path):
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store
    from store.queries import entity_as_of, resolve_as_of, source_health

    good_cfg = write_config(tmp_path / "good.toml", workspace.sources(), store=tmp_path / "w.duckdb")
    outcomes = {o.source: o for o in snapshot_all(load_config(good_cfg))}
    assert all(o.ok for o in outcomes.values())
    store = Store(tmp_path / "w.duckdb")
    fab_before = {t: table_dump(store.path, t, "fab") for t in ENTITY_TABLES}
    aliases_before = entity_as_of(store, "model_aliases")

    broken = [workspace.sources()[0], mlflow_source("fab", UNREACHABLE, "fabric")]
    bad_cfg = write_config(tmp_path / "bad.toml", broken, store=tmp_path / "w.duckdb")
    proc = run_cli("snapshot", "--config", bad_cfg, "--json", env=FAST_FAIL)
    assert proc.returncode == 1, proc.stderr
    out = {s["source"]: s for s in json.loads(proc.stdout)["sources"]}
    assert out["dbx"]["ok"] is True and out["dbx"]["mode"] == "incremental"
    fab = out["fab"]
    assert fab["ok"] is False and fab["snapshot_id"] is not None
    assert any("127.0.0.1:9" in e and "MlflowException" in e for e in fab["errors"]), fab["errors"]

    with store.reader() as con:
        status = dict(con.execute("SELECT snapshot_id, status FROM snapshots WHERE source = 'fab'").fetchall())
        errors = json.loads(con.execute("SELECT errors FROM snapshots WHERE snapshot_id = ?",
                                        [fab["snapshot_id"]]).fetchall()[0][0])
    assert status == {outcomes["fab"].snapshot_id: "ok", fab["snapshot_id"]: "failed"}
    assert errors == fab["errors"] and "Connection refused" in errors[0]
    # The failed pass wrote no entity row; the last good snapshot is still "now" for fab.
    assert {t: table_dump(store.path, t, "fab") for t in ENTITY_TABLES} == fab_before
    points = resolve_as_of(store)
    assert points["fab"].snapshot_id == outcomes["fab"].snapshot_id
    assert points["dbx"].snapshot_id == out["dbx"]["snapshot_id"]
    pd_eq = entity_as_of(store, "model_aliases").sort_values(["source", "name", "alias"]).reset_index(drop=True)
    assert pd_eq.equals(aliases_before.sort_values(["source", "name", "alias"]).reset_index(drop=True))
    health = source_health(store).set_index("source")
    assert health.loc["fab", "last_status"] == "failed" and health.loc["fab", "failures_since_good"] == 1
    assert health.loc["fab", "last_good_id"] == outcomes["fab"].snapshot_id


def test_sqlite_store_in_a_missing_directory_is_an_error_not_a_new_store(tmp_path):
    """MLflow would silently create the directory and an empty store (and every run would look removed)."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    missing = tmp_path / "no" / "such" / "dir"
    cfg = write_config(tmp_path / "g.toml", [mlflow_source("ghost", f"sqlite:///{missing}/mlflow.db")])
    [o] = snapshot_all(load_config(cfg))
    assert not o.ok and o.snapshot_id is not None
    assert any(str(missing) in e and "no MLflow store" in e for e in o.errors), o.errors
    assert not (tmp_path / "no").exists()


def test_secrets_in_errors_are_redacted_before_the_store(tmp_path, fast_fail):
    """A token in a tracking URI's path is echoed by MLflow's HTTP error; it must not reach the store.
    (`user:password@` and `?token=` URIs are refused at config load: tests/test_config.py.)"""
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store

    dapi = "dapi0123456789abcdef0123456789abcdef-2"
    cfg = write_config(tmp_path / "g.toml", [mlflow_source("pat", f"{UNREACHABLE}/{dapi}")])
    outcomes = {o.source: o for o in snapshot_all(load_config(cfg))}
    assert not outcomes["pat"].ok
    with Store(load_config(cfg).store_path).reader() as con:
        stored = " ".join(r[0] for r in con.execute("SELECT errors FROM snapshots").fetchall())
    assert "127.0.0.1:9" in stored and "[redacted]" in stored      # the error itself is kept ...
    secret = "0123456789abcdef0123456789abcdef"                      # ... its secrets are not
    assert secret not in stored
    assert all(secret not in e for o in outcomes.values() for e in o.errors)


@pytest.mark.parametrize("text, secret", [
    ("401: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl rejected",
     "eyJhbGciOiJIUzI1NiJ9"),
    ("header Authorization=Bearer abc.DEF-123_x~y+z/== sent", "abc.DEF-123_x~y+z/=="),
    ("invalid token dapi0123456789abcdef0123456789abcdef for host", "dapi0123456789abcdef0123456789abcdef"),
    ("GET https://h/x?sig=S1GN4TURE&se=2030 failed", "S1GN4TURE"),
    ("MLFLOW_TRACKING_TOKEN=t0ps3cr3t rejected", "t0ps3cr3t"),
    ('body {"client_secret": "cl13nt-s3cr3t", "x": 1}', "cl13nt-s3cr3t"),
    ("Authorization: Basic YWxpY2U6czNjcmV0", "YWxpY2U6czNjcmV0"),
    ("https://alice:pa55w0rd@adb-1.azuredatabricks.net/api", "pa55w0rd"),
])
def test_redact_removes_secret_shapes(text, secret):
    from collectors.report import SourceReport, redact

    assert secret not in redact(text) and "[redacted]" in redact(text)
    report = SourceReport("s")
    report.fail(text)
    report.warn(text)
    assert all(secret not in m for m in report.capped_failures() + report.capped_warnings())


def test_redact_keeps_ordinary_text():
    from collectors.report import redact

    text = "run 0123abcd: basic authentication failed for sqlite:////tmp/x/mlflow.db (HTTP 403)"
    assert redact(text) == text


def test_model_names_with_both_quote_kinds_are_collected(tmp_path, mlflow_template):
    """A name like a'b"c made every pass of its source fail (no escape exists in MLflow's filter grammar)."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store
    from store.queries import entity_as_of
    from tests.conftest import client, new_mlflow_store

    uri = new_mlflow_store(tmp_path / "reg", mlflow_template)
    c = client(uri)
    names = {'a\'b"c': 2, "aXbYc": 1, "it's": 1, 'say "hi"': 1, 'p%q\'r"s_t\\u': 1}   # aXbYc: what LIKE also matches
    for name, count in names.items():
        c.create_registered_model(name)
        for _ in range(count):
            c.create_model_version(name, source=str(tmp_path / "reg" / "artifacts"))
    cfg = write_config(tmp_path / "g.toml", [mlflow_source("reg", uri, read_model_origins=False)])
    config = load_config(cfg)
    [o] = snapshot_all(config)
    assert o.ok, o.errors
    versions = entity_as_of(Store(config.store_path), "model_versions")
    assert versions.groupby("name").size().to_dict() == names
