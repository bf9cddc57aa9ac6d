"""Streaming full snapshots (issue 15 item 2): rows are staged on disk page by page, never all in memory,
and applied from the staging file in the store's one write transaction.

- a pass staged page by page writes exactly what the same rows handed over in memory write (values,
  row hashes, valid_from/valid_to), over a full, an incremental and another full pass;
- duplicate keys keep the last arrival with the warning; a run read twice keeps its last copy silently;
- a collector process killed after some pages were staged, or an error after staging, leaves the
  last good snapshot as it was and no staging folder behind; a killed process's folder is removed;
- staged rows are redacted like rows in memory.
"""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.conftest import (ENTITY_TABLES, client, delta_input, mlflow_source, new_mlflow_store, table_dump,
                            write_config)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


class ListStage:
    """What a collector stages, kept in memory instead: the rows commit_snapshot gets as EntityBatch
    lists, a run read twice replaced by its last copy (as the collector's dict by run id did)."""

    def __init__(self):
        self.rows = defaultdict(list)

    def add(self, table, rows, groups=None):
        self.rows[table] += list(zip(rows, groups or [None] * len(rows)))

    def discard(self, table):
        self.rows.pop(table, None)

    def batch(self, table, scope, replace_by=None):
        from store.entities import EntityBatch

        pairs = self.rows[table]
        if replace_by:
            last = {}
            for row, group in pairs:
                last[row[replace_by]] = max(group, last.get(row[replace_by], group))
            pairs = [(row, group) for row, group in pairs if group == last[row[replace_by]]]
        return EntityBatch([row for row, _ in pairs], scope)


class Source:
    """A small MLflow store that changes between passes: runs with Delta inputs and a registered model."""

    def __init__(self, root: Path, template: Path):
        self.root = root
        self.uri = new_mlflow_store(root / "mlflow", template)
        self.client = client(self.uri)
        self.exp = self.client.create_experiment("streaming", artifact_location=(root / "mlflow" / "a").as_uri())
        self.n = 0
        self.runs: list[str] = []

    def add_runs(self, n: int, finished: bool = True) -> None:
        now = int(time.time() * 1000)
        for _ in range(n):
            self.n += 1
            run = self.client.create_run(self.exp, start_time=now - 10_000 + self.n, run_name=f"run-{self.n}",
                                         tags={"k": "é" * self.n}).info.run_id
            self.client.log_inputs(run, datasets=[delta_input("main.t.features", self.n, "training", f"d{self.n}"),
                                                  delta_input("main.t.holdout", 0, "eval", f"h{self.n}")])
            if finished:
                self.client.set_terminated(run, "FINISHED", end_time=now + self.n)
            self.runs.append(run)

    def config(self, tmp: Path, name: str = "src"):
        from collectors.config import load_config

        return load_config(write_config(tmp / f"{name}.toml", [mlflow_source(name, self.uri)],
                                        store=tmp / f"{name}.duckdb"))


def dump(store_path: Path) -> dict[str, list[tuple]]:
    return {t: table_dump(store_path, t) for t in ENTITY_TABLES}


def in_memory_pass(store, source_config, full: bool):
    """The same collector, its rows handed over in memory (EntityBatch lists)."""
    from collectors.mlflow_source import MlflowSource
    from collectors.report import SourceReport
    from store.history import commit_snapshot

    previous = None if full else MlflowSource.previous_state(store, source_config.name)
    report = SourceReport(source_config.name)
    mode, batches, state = MlflowSource(source_config, report).collect(previous, full, ListStage())
    return commit_snapshot(store, source=source_config.name, kind="mlflow", platform="databricks", mode=mode,
                           started_at=NOW, finished_at=NOW, batches=batches, warnings=report.capped_warnings(),
                           state=state)


@pytest.fixture()
def staged_pages(monkeypatch):
    """Every page each StageWriter stages: (table, rows in it)."""
    from store.staging import StageWriter

    pages: list[tuple[str, int]] = []
    real_add = StageWriter.add

    def add(self, table, rows, groups=None):
        if rows:
            pages.append((table, len(rows)))
        return real_add(self, table, rows, groups)

    monkeypatch.setattr(StageWriter, "add", add)
    return pages


def test_staged_pages_write_what_rows_in_memory_write_over_full_incremental_full(
        tmp_path, mlflow_template, monkeypatch, staged_pages):
    """Two runs per page, so runs arrive in several pages; the Python side never holds more than one."""
    from collectors import mlflow_source as source_module
    from collectors.runner import snapshot_source
    from store.db import Store

    monkeypatch.setattr(source_module, "RUN_PAGE_SIZE", 2)
    src = Source(tmp_path, mlflow_template)
    src.add_runs(5)
    src.add_runs(1, finished=False)
    staged_cfg, memory_cfg = src.config(tmp_path, "staged"), src.config(tmp_path, "memory")
    staged, memory = Store(staged_cfg.store_path), Store(memory_cfg.store_path)

    pages = []

    def both(full: bool):
        staged_pages.clear()
        outcome = snapshot_source(staged, staged_cfg.sources[0], full=full)
        assert outcome.ok, outcome.errors
        pages[:] = staged_pages
        reference = in_memory_pass(memory, memory_cfg.sources[0], full)
        assert outcome.counts == reference.counts
        # Same rows, same row hashes, same valid_from/valid_to (the first column, the source's name, differs).
        a = {t: [r[1:] for r in rows] for t, rows in dump(staged.path).items()}
        b = {t: [r[1:] for r in rows] for t, rows in dump(memory.path).items()}
        assert a == b
        return outcome

    first = both(full=True)
    assert first.counts["runs"]["added"] == 6 and first.counts["run_inputs"]["added"] == 12
    runs_pages = [n for table, n in pages if table == "runs"]
    assert runs_pages == [2, 2, 2], pages   # 6 runs, 2 per page: never more than a page in Python

    src.client.set_tag(src.runs[0], "k", "changed")
    src.client.delete_run(src.runs[1])
    src.client.set_terminated(src.runs[5], "FINISHED")
    src.add_runs(3)
    second = both(full=False)
    assert second.mode == "incremental" and second.counts["runs"]["added"] == 3
    src.client.set_tag(src.runs[2], "k", "seen by a full pass only")
    third = both(full=True)
    assert third.counts["runs"]["changed"] >= 1
    with staged.reader() as con:
        assert con.execute("SELECT count(*) FROM runs WHERE valid_to IS NOT NULL").fetchall()[0][0] >= 3


def test_workspace_full_pass_staged_equals_rows_in_memory(workspace, tmp_path, monkeypatch):
    """Unicode, a huge tag, a NaN metric, Delta inputs, LoggedModels, the registry and MLmodel origins."""
    from collectors import mlflow_source as source_module
    from collectors.config import load_config
    from collectors.runner import snapshot_source
    from store.db import Store

    monkeypatch.setattr(source_module, "RUN_PAGE_SIZE", 1)
    cfg = load_config(write_config(tmp_path / "g.toml", [mlflow_source("dbx", workspace.dbx_uri)]))
    staged, memory = Store(tmp_path / "staged.duckdb"), Store(tmp_path / "memory.duckdb")
    outcome = snapshot_source(staged, cfg.sources[0], full=True)
    assert outcome.ok, outcome.errors
    reference = in_memory_pass(memory, cfg.sources[0], full=True)
    assert outcome.counts == reference.counts and outcome.counts["model_origins"]["added"] >= 1
    assert dump(staged.path) == dump(memory.path)


def test_duplicate_keys_keep_the_last_with_a_warning_and_a_run_read_twice_keeps_its_last_copy(tmp_path):
    from store.db import Store
    from store.entities import EntityBatch, Scope
    from store.history import commit_snapshot
    from store.staging import StagingArea

    with StagingArea(tmp_path) as area:
        w = area.writer("s")
        w.add("registered_models", [{"name": "m", "description": "first"}, {"name": "n", "description": "only"}])
        w.add("registered_models", [{"name": "m", "description": "last"}])
        # Run r1 read twice (paging drift): the second copy, with other inputs, replaces the first silently;
        # the same input twice within one copy is a duplicate key.
        w.add("runs", [{"run_id": "r1", "status": "RUNNING"}, {"run_id": "r2", "status": "FINISHED"}], [1, 2])
        w.add("run_inputs", [{"run_id": "r1", "input_key": "a"}, {"run_id": "r1", "input_key": "b"}], [1, 1])
        w.add("runs", [{"run_id": "r1", "status": "FINISHED"}], [3])
        w.add("run_inputs", [{"run_id": "r1", "input_key": "a", "dataset_name": "x"},
                             {"run_id": "r1", "input_key": "a", "dataset_name": "y"}], [3, 3])
        batches = {"registered_models": w.batch("registered_models", Scope.ALL),
                   "runs": w.batch("runs", Scope.ALL, replace_by="run_id"),
                   "run_inputs": w.batch("run_inputs", Scope.ALL, replace_by="run_id"),
                   # rows in memory take the same path, with the same warning
                   "model_aliases": EntityBatch([{"name": "m", "alias": "champion", "version": "1"},
                                                 {"name": "m", "alias": "champion", "version": "2"}], Scope.ALL)}
        w.close()
        warnings: list[str] = []
        store = Store(tmp_path / "w.duckdb")
        result = commit_snapshot(store, source="s", kind="mlflow", platform="databricks", mode="full",
                                 started_at=NOW, finished_at=NOW, batches=batches, warnings=warnings, state={})
    assert warnings == ["registered_models: 1 duplicate key(s) from the source; kept the last",
                        "run_inputs: 1 duplicate key(s) from the source; kept the last",
                        "model_aliases: 1 duplicate key(s) from the source; kept the last"]
    assert {t: c["seen"] for t, c in result.counts.items()} == {
        "registered_models": 2, "runs": 2, "run_inputs": 1, "model_aliases": 1}
    with store.reader() as con:
        assert con.execute("SELECT name, description FROM registered_models ORDER BY name").fetchall() == [
            ("m", "last"), ("n", "only")]
        assert con.execute("SELECT run_id, status FROM runs ORDER BY run_id").fetchall() == [
            ("r1", "FINISHED"), ("r2", "FINISHED")]
        assert con.execute("SELECT run_id, input_key, dataset_name FROM run_inputs").fetchall() == [("r1", "a", "y")]
        assert con.execute("SELECT version FROM model_aliases").fetchall() == [("2",)]
        snap = con.execute("SELECT warnings FROM snapshots").fetchall()[0][0]
    assert "kept the last" in snap


def test_collector_process_killed_after_staging_pages_leaves_the_last_snapshot(tmp_path, mlflow_template,
                                                                                monkeypatch):
    """The remote-source path (its own process, staging the file itself), on a sqlite store so no server
    is needed: killed once it has staged 3 pages (one run per page), the pass fails, the store keeps its
    last good snapshot unchanged, and the staging folder is gone. The next pass succeeds."""
    from collectors import runner
    from collectors.runner import snapshot_source
    from store.db import Store
    from store.staging import FOLDER_PREFIX

    staging_root = tmp_path / "tmp"
    staging_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging_root))
    monkeypatch.setattr(runner, "runs_in_own_process", lambda source: True)
    monkeypatch.setenv("WAYMARK_RUN_PAGE_SIZE", "1")   # read by the spawned process at import
    src = Source(tmp_path, mlflow_template)
    src.add_runs(3)
    cfg = src.config(tmp_path)
    store = Store(cfg.store_path)
    first = snapshot_source(store, cfg.sources[0])
    assert first.ok, first.errors
    before = dump(store.path)
    src.add_runs(4)
    marker = tmp_path / "staged"
    monkeypatch.setenv("WAYMARK_TEST_STALL_AFTER_PAGES", f"3:{marker}")
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(snapshot_source(store, cfg.sources[0], full=True)))
    worker.start()
    deadline = time.monotonic() + 120
    while not marker.exists() and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.05)
    assert marker.exists(), outcome
    [folder] = staging_root.glob(FOLDER_PREFIX + "*")
    assert (folder / "stage.duckdb").exists()
    [proc] = [p for p in multiprocessing.active_children() if p.name == "waymark-src"]
    proc.kill()
    worker.join(60)
    [failed] = outcome
    assert not failed.ok and "without a result" in " ".join(failed.errors), failed.errors
    assert dump(store.path) == before
    assert [r[0] for r in table_dump(store.path, "snapshots")] and \
        sorted(r[5] for r in table_dump(store.path, "snapshots")) == ["failed", "ok"]
    assert not list(staging_root.glob(FOLDER_PREFIX + "*"))
    monkeypatch.delenv("WAYMARK_TEST_STALL_AFTER_PAGES")
    again = snapshot_source(store, cfg.sources[0], full=True)
    assert again.ok and again.counts["runs"]["added"] == 4, (again.errors, again.counts)


def test_error_after_staging_rolls_back_and_keeps_the_last_snapshot(tmp_path, mlflow_template, monkeypatch):
    """The commit fails after runs were already applied inside the transaction: nothing of it remains."""
    from collectors.runner import snapshot_source
    from store import history
    from store.db import Store
    from store.staging import FOLDER_PREFIX

    staging_root = tmp_path / "tmp"
    staging_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging_root))
    src = Source(tmp_path, mlflow_template)
    src.add_runs(2)
    cfg = src.config(tmp_path)
    store = Store(cfg.store_path)
    assert snapshot_source(store, cfg.sources[0]).ok
    before = dump(store.path)
    src.add_runs(2)
    src.client.set_tag(src.runs[0], "k", "changed")
    real_apply = history._apply

    def failing_apply(con, entity, *args):
        if entity.table == "run_inputs":
            raise RuntimeError("disk went away")
        return real_apply(con, entity, *args)

    monkeypatch.setattr(history, "_apply", failing_apply)
    failed = snapshot_source(store, cfg.sources[0], full=True)
    assert not failed.ok and "disk went away" in " ".join(failed.errors)
    assert dump(store.path) == before
    assert not list(staging_root.glob(FOLDER_PREFIX + "*"))


def test_a_killed_process_staging_folder_is_removed_by_the_next_pass(tmp_path):
    from store.staging import FOLDER_PREFIX, StagingArea

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / f"{FOLDER_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{FOLDER_PREFIX}{os.getppid()}-def"   # a process that is still running
    for folder in (stale, live):
        folder.mkdir()
        (folder / "stage.duckdb").write_bytes(b"partial")
    with StagingArea(tmp_path) as area:
        assert area.dir.exists() and area.dir.name.startswith(f"{FOLDER_PREFIX}{os.getpid()}-")
    assert not stale.exists() and live.exists() and not area.dir.exists()


def test_staged_details_are_redacted(tmp_path):
    from collectors.report import register_secret
    from collectors.runner import _redact_row
    from store.db import Store
    from store.entities import Scope
    from store.history import commit_snapshot
    from store.staging import StagingArea

    secret = "stg-S3cr3t-token-9b1e77"
    register_secret(secret)
    store = Store(tmp_path / "w.duckdb")
    with StagingArea(tmp_path) as area:
        w = area.writer("s", _redact_row)
        w.add("model_origins", [{"name": "m", "version": "1", "read_status": "unreadable",
                                 "detail": f"403 for Bearer {secret}"}])
        batches = {"model_origins": w.batch("model_origins", Scope.ALL)}
        w.close()
        commit_snapshot(store, source="s", kind="mlflow", platform="databricks", mode="full", started_at=NOW,
                        finished_at=NOW, batches=batches, warnings=[], state={})
    [(detail,)] = store.query("SELECT detail FROM model_origins").itertuples(index=False)
    assert secret not in detail and "403" in detail


def test_a_pass_far_above_the_memory_limits_spills_or_is_rerun_uncapped_never_fails(tmp_path, monkeypatch):
    """DuckDB's working memory is capped on the staging file and on the store's write transaction, so a
    pass does not grow the process with the workspace. Above the cap the staging file spills; the write
    transaction keeps its inserted rows in memory until a row group is full, so one that cannot fit
    its cap is re-run uncapped, never failed. Two full passes of ~90 MB of wide runs each (the second
    changes half of them), handed over in one batch (as a Databricks schema's tables are)."""
    import duckdb

    from store import db, staging
    from store.db import Store
    from store.entities import EntityBatch, Scope
    from store.history import commit_snapshot

    monkeypatch.setattr(staging, "MEMORY_LIMIT", "64MB")
    store = Store(tmp_path / "w.duckdb")
    uncapped = []
    real_writer = Store.writer

    def writer(self, capped=True):
        uncapped.append(not capped)
        return real_writer(self, capped)

    monkeypatch.setattr(Store, "writer", writer)

    def runs(generation: int) -> list[dict]:
        return [{"run_id": f"r{i:06d}", "experiment_id": "1", "run_name": f"run {i}", "status": "FINISHED",
                 "lifecycle_stage": "active", "start_time": i, "end_time": i + 1,
                 "params": {f"p{k}": f"{generation if i % 2 else 0}-{i}-{k}-" + "v" * 150 for k in range(20)},
                 "metrics": {f"m{k}": float(i + k) for k in range(10)}, "tags": {"t": "x" * 200}}
                for i in range(25_000)]

    def two_passes(write_cap: str) -> tuple[int, int]:
        monkeypatch.setattr(db, "WRITE_MEMORY_LIMIT", write_cap)
        for f in tmp_path.glob("w.duckdb*"):
            f.unlink()
        uncapped.clear()
        for generation, when in ((1, NOW), (2, NOW.replace(hour=13))):
            result = commit_snapshot(store, source="big", kind="mlflow", platform="databricks", mode="full",
                                     started_at=when, finished_at=when,
                                     batches={"runs": EntityBatch(runs(generation), Scope.ALL)}, warnings=[], state={})
            assert result.counts["runs"]["seen"] == 25_000
        counts = store.query("SELECT count(*) AS n, count(*) FILTER (WHERE valid_to IS NULL) AS current FROM runs")
        return int(counts["n"][0]), int(counts["current"][0])

    # A cap the inserts fit: every write stays capped.
    assert two_passes("1GB") == (25_000 + 12_500, 25_000)
    assert uncapped and not any(uncapped)
    # A cap they cannot fit (a row group of these rows is ~20 MB): the same rows land, the transaction
    # having been re-run uncapped.
    assert two_passes("8MB") == (25_000 + 12_500, 25_000)
    assert any(uncapped)
    monkeypatch.setattr(db, "WRITE_MEMORY_LIMIT", "64MB")
    with real_writer(store) as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit != duckdb.connect().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert limit.replace(" ", "") in {"61.0MiB", "64.0MB", "61.0MB"}, limit


def _registry(src: Source, models: int = 3, versions: int = 3) -> None:
    for m in range(models):
        name = f"streamed-{m}"
        src.client.create_registered_model(name)
        for k in range(versions):
            src.client.create_model_version(name, f"{src.root}/mlflow/a/missing-{m}-{k}", run_id=src.runs[k])
        src.client.set_registered_model_alias(name, "champion", str(versions))


def test_model_versions_are_staged_as_their_pages_arrive_not_after_the_whole_listing(
        tmp_path, mlflow_template, monkeypatch, staged_pages):
    """Versions were all listed (held as entities) before the first one was staged: 50k at 500k runs."""
    from collectors import mlflow_registry as registry_module
    from collectors import mlflow_source as source_module
    from collectors.runner import snapshot_source
    from store.db import Store

    monkeypatch.setattr(registry_module, "VERSION_PAGE_SIZE", 2)
    monkeypatch.setattr(registry_module, "REGISTRY_PAGE_ROWS", 2)
    src = Source(tmp_path, mlflow_template)
    src.add_runs(3)
    _registry(src)
    listed_before_staged = []
    real_call, real_add = source_module.MlflowSource._call, source_module.StageWriter.add
    calls = {"search_model_versions": 0}

    def call(self, fn, *args, **kwargs):
        if getattr(fn, "__name__", "") == "search_model_versions":
            calls["search_model_versions"] += 1
        return real_call(self, fn, *args, **kwargs)

    def add(self, table, rows, groups=None):
        if table == "model_versions" and rows:
            listed_before_staged.append(calls["search_model_versions"])
        return real_add(self, table, rows, groups)

    monkeypatch.setattr(source_module.MlflowSource, "_call", call)
    monkeypatch.setattr(source_module.StageWriter, "add", add)
    cfg = src.config(tmp_path)
    outcome = snapshot_source(Store(cfg.store_path), cfg.sources[0], full=True)
    assert outcome.ok, outcome.errors
    assert outcome.counts["model_versions"]["added"] == 9 and outcome.counts["model_origins"]["added"] == 9
    assert calls["search_model_versions"] == 5   # 9 versions, 2 a page
    assert listed_before_staged[0] == 1, listed_before_staged   # staged after the first page, not the fifth
    memory_cfg = src.config(tmp_path, "memory")
    in_memory_pass(Store(memory_cfg.store_path), memory_cfg.sources[0], full=True)
    assert ({t: [r[1:] for r in rows] for t, rows in dump(cfg.store_path).items()}
            == {t: [r[1:] for r in rows] for t, rows in dump(memory_cfg.store_path).items()})


def test_a_version_listing_that_fails_half_way_is_listed_again_per_model_without_duplicates(
        tmp_path, mlflow_template, monkeypatch):
    from mlflow import MlflowClient

    from collectors import mlflow_registry as registry_module
    from collectors.runner import snapshot_source
    from store.db import Store

    monkeypatch.setattr(registry_module, "VERSION_PAGE_SIZE", 2)
    monkeypatch.setattr(registry_module, "REGISTRY_PAGE_ROWS", 2)
    src = Source(tmp_path, mlflow_template)
    src.add_runs(3)
    _registry(src)
    real_search = MlflowClient.search_model_versions

    def search(self, filter_string=None, *args, page_token=None, **kwargs):
        if filter_string is None and page_token is not None and "two pages" not in seen:
            seen.add("two pages")
            raise RuntimeError("gateway timeout on the second page")
        return real_search(self, filter_string, *args, page_token=page_token, **kwargs)

    seen: set[str] = set()
    monkeypatch.setattr(MlflowClient, "search_model_versions", search)
    cfg = src.config(tmp_path)
    outcome = snapshot_source(Store(cfg.store_path), cfg.sources[0], full=True)
    assert outcome.ok, outcome.errors
    assert any("listing them per model" in w for w in outcome.warnings), outcome.warnings
    assert outcome.counts["model_versions"]["added"] == 9 and outcome.counts["model_origins"]["added"] == 9
    rows = table_dump(cfg.store_path, "model_versions")
    assert len(rows) == 9
    with Store(cfg.store_path).reader() as con:
        assert con.execute("SELECT count(DISTINCT (name, version)), count(*) FROM model_origins").fetchall() == [(9, 9)]
        assert con.execute("SELECT name, version FROM model_versions WHERE list_contains(CAST(aliases AS VARCHAR[]), 'champion')"
                           " ORDER BY name").fetchall() == [(f"streamed-{m}", "3") for m in range(3)]
