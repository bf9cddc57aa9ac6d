"""Staging of one pass's rows on disk, so a full snapshot never holds the workspace in memory.

A collector hands its rows over page by page (`StageWriter.add`); each page is turned into the
store's row form (JSON columns dumped, `row_hash`) and appended to a table of a DuckDB file in a
temporary folder of its own (`StagingArea`), with an arrival number `_seq` and a group `_group`.
`commit_snapshot` then finishes the staged tables (`finish`: superseded groups and duplicate keys
dropped, keeping the last arrival, each then written as Parquet next to the file) and applies
them to the store from those files inside the store's one write transaction (store/history.py).

Why a file and not staging tables in the store: the store's write lock (DuckDB file) or its write
token (DuckLake) would then be held for the whole pass, and DuckLake would write every staged row
as Parquet. The staging file is per pass and per process: a killed pass leaves only a folder
named after its process, which the next `StagingArea` removes once that process is gone.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from store.db import connect_attached, sql_literal
from store.entities import ENTITIES, Scope, StagedBatch, frame_of

FOLDER_PREFIX = "waymark-stage-"
FILE_NAME = "stage.duckdb"
# The staging database's own cap; above it DuckDB spills to the folder's `spill/` (dedupe of a huge table).
# Not lower: at 32 MB DuckDB's checkpoint of a few thousand staged runs failed (it cannot spill there).
MEMORY_LIMIT = os.environ.get("WAYMARK_STAGE_MEMORY_LIMIT", "64MB")
STAGING_COLUMNS = ("_seq", "_group")
# Parquet row groups are buffered whole while written: 10k runs (~15 MB) fit the limit above; DuckDB's
# default (122,880 rows) ran out of it at 100k runs.
PARQUET_ROW_GROUP = 10_000
PARQUET_ROW_GROUP_BYTES = "8MB"   # …and fewer rows when they are wide (big params or tags)
# Rows turned into one frame and appended at a time (a run with 20 params and 10 metrics is ~3 KB staged).
SLICE_ROWS = 1_000
# Rows per row group of the staging file itself. A checkpoint (each reopen, below) rewrites the table's
# last, partly filled row group in memory: at DuckDB's 122,880 rows that cost up to +115 MB of RSS as
# 10k-run slices filled it (a peak that came back with every group, and met the other transient peaks
# more often the longer a pass ran); at 10,240 rows, under 10 MB.
STAGE_ROW_GROUP = 10_240
REOPEN_EVERY_SLICES = 10


@functools.cache
def store_column_types() -> dict[str, dict[str, str]]:
    """Each entity table's column types, from the migrations themselves (one in-memory DuckDB per
    process): staged columns take the store's types, so a page is cast when it is staged."""
    from store.db import Store

    con = duckdb.connect()
    try:
        Store._migrate(con)
        types: dict[str, dict[str, str]] = {}
        for table, column, data_type in con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns").fetchall():
            types.setdefault(table, {})[column] = data_type
        return types
    finally:
        con.close()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(root: Path) -> None:
    """Remove staging folders left by processes that are gone (killed mid-pass)."""
    with contextlib.suppress(OSError):
        for folder in root.glob(FOLDER_PREFIX + "*"):
            pid = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)


class StagingArea:
    """A temporary folder holding one pass's staging file; removed on close."""

    def __init__(self, root: str | Path | None = None):
        root = Path(root or tempfile.gettempdir())
        remove_stale(root)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=root))
        self.path = self.dir / FILE_NAME

    def writer(self, source: str, row_filter: Callable[[dict[str, Any]], None] | None = None) -> "StageWriter":
        return StageWriter(self.path, source, row_filter)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "StagingArea":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    spill = path.parent / "spill"
    spill.mkdir(exist_ok=True)
    return connect_attached(path, "stage", row_group=STAGE_ROW_GROUP,
                            config={"memory_limit": MEMORY_LIMIT, "threads": 1, "temp_directory": str(spill),
                                    "preserve_insertion_order": False})


@dataclass
class StageWriter:
    """Appends pages of rows to a staging file (thread-safe: the MLflow registry is read on a side thread).

    `row_filter` sees every row before it is staged (the runner redacts `detail` there)."""
    path: Path
    source: str
    row_filter: Callable[[dict[str, Any]], None] | None = None
    pages: Counter = field(default_factory=Counter)   # table -> pages staged (tests: rows arrive page by page)
    rows: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._con = _connect(self.path)
        self._lock = threading.Lock()
        self._seq = 0
        self._slices = 0
        self._tables: set[str] = set()

    def _reopen(self) -> None:
        """Close and reopen the staging file: an open DuckDB instance keeps what was appended in memory
        well beyond its memory limit (measured: 235–460 MB of process RSS over 120k staged runs under a
        64 MB limit), closing checkpoints it to the file and gives it back (170 MB, the floor without
        DuckDB)."""
        self._con.close()
        self._con = _connect(self.path)

    def _ensure(self, table: str) -> None:
        if table in self._tables:
            return
        entity = ENTITIES[table]
        types = store_column_types()[table]
        cols = ", ".join(f"{c} {types[c]}" for c in entity.columns + ("row_hash",))
        self._con.execute(f"DROP TABLE IF EXISTS {table}")
        self._con.execute(f"CREATE TABLE {table} ({cols}, _seq BIGINT NOT NULL, _group BIGINT NOT NULL)")
        self._tables.add(table)

    def add(self, table: str, rows: list[dict[str, Any]], groups: list[int] | None = None) -> None:
        """Stage one page of `table`'s rows. `groups` (one per row) tie rows that are replaced together
        (a run and its inputs); by default every row is its own group."""
        entity = ENTITIES[table]   # identifiers in SQL below come from ENTITIES only
        if self.row_filter:
            for row in rows:
                self.row_filter(row)
        with self._lock:
            self._ensure(table)
            if not rows:
                return
            # In slices: a batch handed over whole (a Databricks schema's tables) must fit the memory limit too.
            for start in range(0, len(rows), SLICE_ROWS):
                part = rows[start:start + SLICE_ROWS]
                frame = frame_of(entity, self.source, part)
                first = self._seq
                self._seq += len(part)
                frame["_seq"] = range(first, first + len(part))
                frame["_group"] = groups[start:start + SLICE_ROWS] if groups is not None else frame["_seq"]
                self._con.register("page", frame)
                try:
                    self._con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM page")
                finally:
                    self._con.unregister("page")
                self._slices += 1
                if self._slices % REOPEN_EVERY_SLICES == 0:
                    self._reopen()
            self.pages[table] += 1
            self.rows[table] += len(rows)
        _test_stall_after_pages(sum(self.pages.values()))

    def discard(self, table: str) -> None:
        """Forget what was staged for `table` (a listing that failed half-way)."""
        with self._lock:
            ENTITIES[table]
            self._con.execute(f"DROP TABLE IF EXISTS {table}")
            self._tables.discard(table)
            self.pages.pop(table, None)
            self.rows.pop(table, None)

    def batch(self, table: str, scope: Scope, replace_by: str | None = None) -> StagedBatch:
        """What `commit_snapshot` takes for a staged table. With `replace_by`, a later group with the same
        value of that column replaces the earlier one wholesale (a run read twice keeps its last rows)."""
        with self._lock:
            self._ensure(table)
        assert replace_by is None or replace_by in ENTITIES[table].columns
        return StagedBatch(str(self.path), table, scope, replace_by)

    def close(self) -> None:
        with self._lock:
            self._con.close()


@dataclass(frozen=True)
class Finished:
    """A staged table ready to apply: its Parquet file, its partition scope's, and its row count."""
    rows: str
    scope_values: str
    seen: int


def finish(path: str | Path, batches: dict[str, StagedBatch], warnings: list[str]) -> dict[str, Finished]:
    """Make each staged table hold exactly what is to be applied: groups superseded by a later one
    dropped silently, then duplicate keys dropped keeping the last arrival (with a warning, as for
    rows handed over in memory). Each table is then written as Parquet next to the staging file, with
    its partition scope's values: the store's write transaction reads those files, so nothing is
    attached to the store's connection (a DuckLake writer's is shared and its commits are retried)."""
    path = Path(path)
    con = _connect(path)
    try:
        done = {}
        for table, batch in batches.items():
            entity = ENTITIES[table]
            if batch.replace_by:
                col = batch.replace_by
                con.execute(f"""DELETE FROM {table} AS s USING (SELECT {col} AS v, max(_group) AS g FROM {table}
                                GROUP BY {col}) AS last
                                WHERE s.{col} IS NOT DISTINCT FROM last.v AND s._group < last.g""")
            keys = ", ".join(entity.keys)
            dupes = con.execute(f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {table} "
                                f"GROUP BY {keys} HAVING count(*) > 1)").fetchall()[0][0]
            if dupes:
                warnings.append(f"{table}: {int(dupes)} duplicate key(s) from the source; kept the last")
                match = " AND ".join(f"s.{k} IS NOT DISTINCT FROM last.{k}" for k in entity.keys)
                con.execute(f"""DELETE FROM {table} AS s USING (SELECT {keys}, max(_seq) AS m FROM {table}
                                GROUP BY {keys}) AS last WHERE {match} AND s._seq < last.m""")
            seen = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            types = store_column_types()[table]
            column = batch.scope.column if batch.scope.mode == "partitions" else entity.keys[0]
            assert column in entity.columns
            values = list(batch.scope.values) if batch.scope.mode == "partitions" else []
            con.execute(f"CREATE OR REPLACE TABLE _scope_{table} (v {types[column]})")
            if values:
                con.register("scope_values", pd.DataFrame({"v": values}, dtype=object))
                try:
                    con.execute(f"INSERT INTO _scope_{table} SELECT v FROM scope_values")
                finally:
                    con.unregister("scope_values")
            rows_file = path.parent / f"{table}.parquet"
            scope_file = path.parent / f"_scope_{table}.parquet"
            cols = ", ".join(entity.columns + ("row_hash",))
            con.execute(f"COPY (SELECT {cols} FROM {table}) TO {sql_literal(str(rows_file))} "
                        f"(FORMAT parquet, ROW_GROUP_SIZE {PARQUET_ROW_GROUP}, ROW_GROUP_SIZE_BYTES '{PARQUET_ROW_GROUP_BYTES}')")
            con.execute(f"COPY _scope_{table} TO {sql_literal(str(scope_file))} (FORMAT parquet)")
            done[table] = Finished(str(rows_file), str(scope_file), seen)
        return done
    finally:
        con.close()


def _test_stall_after_pages(pages: int) -> None:
    """Fault-injection hook for tests/test_streaming.py: WAYMARK_TEST_STALL_AFTER_PAGES="N:marker" makes a
    collector that has staged N pages write the marker file and wait (to be killed mid-pass)."""
    spec = os.environ.get("WAYMARK_TEST_STALL_AFTER_PAGES")
    if spec:
        n, marker = spec.split(":", 1)
        if pages == int(n):
            Path(marker).write_text(str(pages))
            time.sleep(120)
