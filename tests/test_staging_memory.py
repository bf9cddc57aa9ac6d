"""The staging file's own row groups stay small (issue 15 item 2): each checkpoint of the staging file
rewrites its last, partly filled row group in memory, so DuckDB's default of 122,880 rows made the
collecting process's peak grow with the pass (+115 MB at 120k staged runs), a row group of 10,240
rows keeps it under 10 MB (bench/README.md)."""
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
