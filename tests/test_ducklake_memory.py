"""The DuckLake store's memory (issue 15): the Parquet row groups DuckLake buffers while it writes, and
the write transaction's cap, against the same real PostgreSQL catalog as tests/test_ducklake.py."""
from __future__ import annotations

import pytest

from tests.test_ducklake import lake, postgres  # noqa: F401  (fixtures)


def test_the_lake_writes_small_row_groups_and_an_older_lake_is_brought_to_them(lake):
    """DuckLake buffers a Parquet row group whole while writing: at its default (122,880 rows) a full
    pass of 100k runs peaked at 799 MB. Waymark keeps the staging files' row-group size on the lake,
    also on a lake that was created without it (by an older Waymark, or by hand)."""
    import duckdb
    from store import Store
    from store.ducklake import ALIAS, DuckLakeSpec, attach
    from store.staging import PARQUET_ROW_GROUP

    spec = DuckLakeSpec(*lake)
    store = Store(spec)
    store.migrate()
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        attach(con, spec, "older", read_only=False)
        con.execute("CALL older.set_option('parquet_row_group_size', 122880)")
    finally:
        con.close()

    def fill(con):
        con.execute("CREATE TABLE wide_rows (i BIGINT, pad VARCHAR)")
        con.execute("INSERT INTO wide_rows SELECT i, repeat('x', 200) FROM range(25000) t(i)")
    store.write(fill)

    with store.reader() as con:
        files = [r[0] for r in con.execute(f"SELECT data_file FROM ducklake_list_files('{ALIAS}', 'wide_rows')").fetchall()]
        groups = con.execute("SELECT row_group_id, max(row_group_num_rows) FROM parquet_metadata(?) "
                             "GROUP BY file_name, row_group_id", [files]).fetchall()
        held = dict(con.execute(f"SELECT option_name, value FROM {ALIAS}.options()").fetchall())
    assert held["parquet_row_group_size"] == str(PARQUET_ROW_GROUP)
    assert sum(rows for _, rows in groups) == 25000
    vector = 2048   # a row group is flushed at the first vector boundary past the size
    assert max(rows for _, rows in groups) <= PARQUET_ROW_GROUP + vector and len(groups) >= 3


@pytest.mark.parametrize("error", ["OutOfMemoryException", "TransactionException"])
def test_a_lake_write_is_capped_and_rerun_uncapped_when_it_cannot_fit(lake, monkeypatch, error):
    """As on the DuckDB file: the write transaction's memory is capped, and work that cannot fit the cap
    is re-run uncapped instead of failing the pass, also when the error comes wrapped (a failed commit).
    Here the work raises DuckDB's out-of-memory error itself; tests/test_streaming.py runs a real one
    on the DuckDB file."""
    import duckdb

    from store import Store, db
    from store.ducklake import DuckLakeSpec

    monkeypatch.setattr(db, "WRITE_MEMORY_LIMIT", "48MB")
    store = Store(DuckLakeSpec(*lake))
    store.migrate()
    limits = []

    def work(con):
        limits.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        if len(limits) == 1:
            raise getattr(duckdb, error)("Failed to commit: Out of Memory Error: (test) could not allocate")
        return "done"

    assert store.write(work) == "done"
    assert limits[0].replace(" ", "") in {"45.7MiB", "48.0MB"} and limits[1] != limits[0], limits
    with store.writer() as con:   # the next write is capped again
        assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == limits[0]
