"""DuckDB allows one writing process per file (DESIGN.md, store principles): readers must keep
working while a collector writes, and a killed collector must leave the file consistent.

The writer is a real `python -m collectors snapshot` subprocess, run by tests/holding_writer.py, which
keeps its write transaction open after it has written every row (WAYMARK_TEST_HOLD_WRITE_SECONDS)
and writes the marker file once it is holding (WAYMARK_TEST_HOLD_MARKER).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import duckdb
import pytest

from tests.conftest import (ENTITY_TABLES, REPO, cli_env, client, delta_input, mlflow_source, new_mlflow_store,
                            start_holding_cli, table_dump, wait_for_file, write_config)

STATE_SQL = """SELECT (SELECT count(*) FROM snapshots),
                      (SELECT count(*) FROM runs WHERE valid_to IS NULL),
                      (SELECT count(*) FROM run_inputs WHERE valid_to IS NULL)"""


class Source:
    """A small MLflow store plus a Waymark store with one good snapshot of it."""

    def __init__(self, root, template):
        from collectors.config import load_config
        from collectors.runner import snapshot_all
        from store.db import Store

        self.uri = new_mlflow_store(root / "mlflow", template)
        self.client = client(self.uri)
        self.exp = self.client.create_experiment("concurrency", artifact_location=(root / "mlflow" / "artifacts").as_uri())
        self.n = 0
        self.add_runs(3)
        self.config_path = write_config(root / "governance.toml", [mlflow_source("src", self.uri)])
        self.config = load_config(self.config_path)
        [first] = snapshot_all(self.config)
        assert first.ok, first.errors
        self.first = first
        self.store = Store(self.config.store_path)

    def add_runs(self, n: int) -> None:
        now = int(time.time() * 1000)
        for _ in range(n):
            self.n += 1
            run = self.client.create_run(self.exp, start_time=now + self.n, run_name=f"run-{self.n}").info.run_id
            self.client.log_inputs(run, datasets=[delta_input("main.t.features", self.n, "training", f"d{self.n}")])
            self.client.set_terminated(run, "FINISHED", end_time=now + 1000 + self.n)

    def state(self) -> tuple[int, int, int]:
        with self.store.reader() as con:
            return tuple(con.execute(STATE_SQL).fetchall()[0])

    def dump(self) -> dict[str, list[tuple]]:
        return {t: table_dump(self.store.path, t) for t in ENTITY_TABLES + ("snapshots", "schema_migrations")}


def holding_writer(src: Source, tmp_path, seconds: float) -> tuple[subprocess.Popen, object]:
    marker = tmp_path / "holding"
    proc = start_holding_cli("snapshot", "--config", src.config_path,
                     env={"WAYMARK_TEST_HOLD_WRITE_SECONDS": str(seconds), "WAYMARK_TEST_HOLD_MARKER": str(marker)})
    return proc, marker


def assert_locked_by_writer(path) -> None:
    """Proof the test is not vacuous: while the writer holds, a plain read-only open is refused."""
    with pytest.raises(duckdb.Error, match="(?i)lock"):
        duckdb.connect(str(path), read_only=True).close()


def test_readers_wait_for_the_writer_and_see_old_or_new_state_never_partial(tmp_path, mlflow_template):
    src = Source(tmp_path, mlflow_template)
    old = src.state()
    src.add_runs(3)
    new = (old[0] + 1, old[1] + 3, old[2] + 3)

    seen, errors, stop = [], [], threading.Event()

    def read_continuously():   # a dashboard refreshing while the collector writes
        while not stop.is_set():
            try:
                seen.append(src.state())
            except Exception as e:  # noqa: BLE001 - any error is a failure of the contract
                errors.append(repr(e))
            time.sleep(0.05)

    reader = threading.Thread(target=read_continuously, daemon=True)
    reader.start()
    proc, marker = holding_writer(src, tmp_path, seconds=3)
    try:
        wait_for_file(marker, proc)
        assert_locked_by_writer(src.store.path)
        # A read that starts while the write transaction is open waits for it, then sees all of it.
        assert src.state() == new
        out, err = proc.communicate(timeout=120)
    finally:
        stop.set()
        reader.join(timeout=60)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert errors == []
    assert set(seen) <= {old, new} and old in seen and new in seen
    # Once new, never old again.
    assert seen[seen.index(new):] == [new] * (len(seen) - seen.index(new))


def test_killed_writer_leaves_the_store_consistent(tmp_path, mlflow_template):
    from collectors.runner import snapshot_all

    src = Source(tmp_path, mlflow_template)
    before, old = src.dump(), src.state()
    src.add_runs(2)
    proc, marker = holding_writer(src, tmp_path, seconds=300)
    wait_for_file(marker, proc)
    assert_locked_by_writer(src.store.path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    # Read-only: the last good snapshot and its rows are intact; nothing of the killed pass exists.
    assert src.dump() == before
    assert src.state() == old
    from store.queries import resolve_as_of
    assert resolve_as_of(src.store)["src"].snapshot_id == src.first.snapshot_id
    # Read-write opens too, and the next pass works and sees the new runs.
    src.store.migrate()
    [again] = snapshot_all(src.config)
    assert again.ok and again.snapshot_id > src.first.snapshot_id
    assert src.state() == (old[0] + 1, old[1] + 2, old[2] + 2)


CRASH_AFTER_COMMIT = """
import os, sys, duckdb
real_connect = duckdb.connect

class CrashBeforeCheckpoint:
    '''A connection that dies like a killed process right after COMMIT, before the CHECKPOINT.'''
    def __init__(self, con):
        self._con = con
    def execute(self, sql, *args, **kwargs):
        if sql.strip().upper() == "CHECKPOINT":
            os._exit(0)
        return self._con.execute(sql, *args, **kwargs)
    def __getattr__(self, name):
        return getattr(self._con, name)

duckdb.connect = lambda *a, **k: CrashBeforeCheckpoint(real_connect(*a, **k))
from collectors.config import load_config
from collectors.runner import snapshot_all
snapshot_all(load_config(sys.argv[1]))
os._exit(3)   # not reached: the commit's checkpoint exits first
"""


def test_committed_snapshot_left_in_the_wal_is_readable_read_only(tmp_path, mlflow_template):
    from collectors.runner import snapshot_all

    src = Source(tmp_path, mlflow_template)
    old = src.state()
    src.add_runs(2)
    proc = subprocess.run([sys.executable, "-c", CRASH_AFTER_COMMIT, str(src.config_path)], cwd=REPO,
                          env=cli_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    wal = src.store.path.with_name(src.store.path.name + ".wal")
    assert wal.exists() and wal.stat().st_size > 0       # the commit lives only in the WAL
    # Read-only connections replay it: the committed snapshot is there, complete.
    assert src.state() == (old[0] + 1, old[1] + 2, old[2] + 2)
    assert wal.exists()                                  # a read-only open does not fold it in
    from store.queries import snapshots
    assert snapshots(src.store)["status"].tolist() == ["ok", "ok"]
    # The next writer folds it into the file.
    [again] = snapshot_all(src.config)
    assert again.ok and src.state() == (old[0] + 2, old[1] + 2, old[2] + 2)
    assert not wal.exists()


@pytest.mark.parametrize("holder", ["writer", "reader"])
def test_in_process_reader_and_writer_wait_for_each_other(holder, tmp_path, monkeypatch):
    """One process (the dashboard's "snapshot now" next to page reads): DuckDB refuses a read-only
    connection while a read-write one is open in the same process, and the reverse. Both must wait."""
    import store.db as db
    from store.db import Store

    store = Store(tmp_path / "w.duckdb")
    store.migrate()
    conflicts, errors, results = threading.Event(), [], []
    real = db._is_lock_conflict

    def spy(exc):
        conflicts.set()
        return real(exc)

    monkeypatch.setattr(db, "_is_lock_conflict", spy)
    insert = """INSERT INTO snapshots (source, kind, platform, mode, status, started_at, finished_at)
                VALUES ('s', 'mlflow', 'fabric', 'full', 'ok', now(), now())"""
    holding, release = threading.Event(), threading.Event()

    def hold():
        ctx = store.writer() if holder == "writer" else store.reader()
        with ctx as con:
            if holder == "writer":
                con.execute(insert)
            holding.set()
            release.wait(60)

    def other():
        try:
            if holder == "writer":
                results.append(store.query("SELECT count(*) AS n FROM snapshots")["n"].iloc[0])
            else:
                with store.writer() as con:
                    con.execute(insert)
                results.append("written")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            conflicts.set()

    t1 = threading.Thread(target=hold)
    t1.start()
    assert holding.wait(60)
    t2 = threading.Thread(target=other)
    t2.start()
    assert conflicts.wait(60)          # the other side has met the held connection ...
    release.set()                      # ... and gets through once it is closed
    t1.join(60)
    t2.join(60)
    assert errors == []
    assert results == ([1] if holder == "writer" else ["written"])
