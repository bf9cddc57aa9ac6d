"""Row groups stay small where DuckDB holds one whole in memory (issue 15 item 2):
- each checkpoint of the staging file rewrites its last, partly filled row group: at DuckDB's 122,880
  rows the collecting process's peak grew with the pass (+115 MB at 120k staged runs), at 10,240 rows
  it stays under 10 MB;
- the store's write transaction holds inserted rows a row group at a time (bench/stage_memory.py)."""
from __future__ import annotations

import math

import duckdb


def test_staged_rows_are_kept_in_small_row_groups_across_reopens(tmp_path):
    from store.staging import REOPEN_EVERY_SLICES, SLICE_ROWS, STAGE_ROW_GROUP, StagingArea

    n = 3 * STAGE_ROW_GROUP + 17
    assert n > REOPEN_EVERY_SLICES * SLICE_ROWS   # the writer closes and reopens the file on the way
    rows = [{"name": f"m{i}", "version": str(i), "run_id": f"r{i}", "tags": {"k": "é" * (i % 7)}} for i in range(n)]
    with StagingArea(tmp_path) as area:
        writer = area.writer("src")
        for start in range(0, n, SLICE_ROWS):
            writer.add("model_versions", rows[start:start + SLICE_ROWS])
        writer.close()
        con = duckdb.connect(str(area.path), read_only=True)
        try:
            staged = con.execute("SELECT count(*), count(DISTINCT version) FROM model_versions").fetchall()
            groups = con.execute("SELECT row_group_id, max(\"count\") FROM pragma_storage_info('model_versions') "
                                 "WHERE column_name = 'version' GROUP BY row_group_id").fetchall()
        finally:
            con.close()
    assert staged == [(n, n)]
    assert max(rows_in_group for _, rows_in_group in groups) <= STAGE_ROW_GROUP, groups
    assert len(groups) == math.ceil(n / STAGE_ROW_GROUP), groups


def test_the_store_file_is_written_in_small_row_groups(tmp_path):
    """The store's write transaction holds inserted rows a row group at a time: at 122,880 rows that was
    +200 MB above the write cap for 100k staged runs (bench/stage_memory.py), at 10,240 rows +147 MB."""
    from datetime import datetime, timezone

    from store.db import STORE_ROW_GROUP, Store
    from store.entities import EntityBatch, Scope
    from store.history import commit_snapshot

    n = 2 * STORE_ROW_GROUP + 5
    store = Store(tmp_path / "waymark.duckdb")
    store.migrate_if_needed()
    rows = [{"name": f"m{i}", "version": str(i), "run_id": f"r{i}", "tags": {}} for i in range(n)]
    now = datetime.now(timezone.utc)
    result = commit_snapshot(store, source="src", kind="mlflow", platform="databricks", mode="full", started_at=now,
                             finished_at=now, batches={"model_versions": EntityBatch(rows, Scope.ALL)},
                             warnings=[], state={})
    assert result.counts["model_versions"]["added"] == n
    with store.reader() as con:
        groups = con.execute("SELECT row_group_id, max(\"count\") FROM pragma_storage_info('model_versions') "
                             "WHERE column_name = 'version' GROUP BY row_group_id").fetchall()
    assert max(rows_in_group for _, rows_in_group in groups) <= STORE_ROW_GROUP, groups
    assert len(groups) == math.ceil(n / STORE_ROW_GROUP), groups
    assert not (tmp_path / "waymark.duckdb.tmp").exists() or not any((tmp_path / "waymark.duckdb.tmp").iterdir())
