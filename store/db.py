"""DuckDB access: short-lived connections, retry on the file lock, migrations on write.

DuckDB lets one process write a file at a time, and a writer locks readers of other processes out.
So collectors stage what they read on disk first (store/staging.py) and hold the write lock only for one short
transaction per snapshot; readers open a read-only connection per query and retry while a write
is in progress. A writer killed mid-transaction leaves nothing behind: DuckDB discards the
uncommitted transaction when the file is next opened.

`Store(path)` is the one entry point for both backends: a file path opens this DuckDB file (the
default), a `DuckLakeSpec` or a `ducklake:` string the shared DuckLake store (store/ducklake.py).
Writers go through `Store.write`, which re-runs the work on a concurrent conflict (DuckLake), and
take ids from `Store.next_id` (DuckLake has no sequences).
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from store.migrations import ID_COLUMNS, MIGRATIONS

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = MIGRATIONS[-1][0]
READ_RETRY_SECONDS = float(os.environ.get("WAYMARK_READ_RETRY_SECONDS", "60"))
WRITE_RETRY_SECONDS = float(os.environ.get("WAYMARK_WRITE_RETRY_SECONDS", "120"))
# The write transaction's working memory (DuckDB's default is 80% of RAM): applying a full pass of 100k
# runs took the committing process to 539 MB without a limit, 355 MB with this one (bench/README.md).
# Above it DuckDB spills to `<store>.tmp` next to the file.
WRITE_MEMORY_LIMIT = os.environ.get("WAYMARK_WRITE_MEMORY_LIMIT", "128MB")
STORE_ROW_GROUP = 10_240   # rows per row group written to the DuckDB file (see Store._connect_for_write)
WRITE_ALIAS = "waymark_store"


class StoreError(RuntimeError):
    pass


class StoreMissing(StoreError):
    """No store file yet: nothing has been collected."""


class WriteConflict(StoreError):
    """A concurrent writer committed a conflicting change first (DuckLake); `Store.write` retries."""


def sql_literal(text: str) -> str:
    """A SQL string literal, for the statements that take no bound parameters (ATTACH, LOAD, SECRET)."""
    return "'" + text.replace("'", "''") + "'"


def connect_attached(path: Path, alias: str, *, row_group: int, config: dict) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the DuckDB file at `path` attached as `alias` and in USE, its new
    row groups `row_group` rows: ROW_GROUP_SIZE is an ATTACH option, not a setting of `connect`."""
    con = duckdb.connect(config=config)
    try:
        con.execute(f"ATTACH {sql_literal(str(path))} AS {alias} (ROW_GROUP_SIZE {int(row_group)})")
        con.execute(f"USE {alias}")
    except BaseException:
        con.close()
        raise
    return con


def _is_lock_conflict(exc: BaseException) -> bool:
    """Another process holds the file ("lock"), or this process has it open in the other mode
    (DuckDB refuses mixing read-only and read-write connections in one process: "different
    configuration", or "file handle conflict" when the other one attached it). Both pass once the
    short write transaction ends."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and any(
        marker in text for marker in ("lock", "conflicting", "different configuration",
                                      "file handle conflict"))   # the writer ATTACHes: see _connect_for_write


def is_lock_conflict(exc: BaseException) -> bool:
    """For the app frame, which shows a lock held past the readers' retry budget as "busy"."""
    return _is_lock_conflict(exc)


def _retrying(seconds: float) -> Retrying:
    return Retrying(
        retry=retry_if_exception(_is_lock_conflict),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_delay(seconds),
        reraise=True,
    )


# Backends other than the DuckDB file: (accepts(path), Store subclass). store/ducklake.py registers
# itself (store/__init__.py imports it), so this module never imports its own subclass.
_BACKENDS: list[tuple[Callable[[Any], bool], type[Store]]] = []


def register_backend(accepts: Callable[[Any], bool], backend: type[Store]) -> None:
    _BACKENDS.append((accepts, backend))


def is_out_of_memory(exc: BaseException) -> bool:
    """DuckDB's out-of-memory error, also when it comes wrapped in another one (a failed commit)."""
    return isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, duckdb.Error) and "out of memory" in str(exc).lower())


class Store:
    def __new__(cls, path: Any = None):
        if cls is Store:
            for accepts, backend in _BACKENDS:
                if accepts(path):
                    return super().__new__(backend)
        return super().__new__(cls)

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path)   # for messages: a file path or a DuckLake spec

    def exists(self) -> bool:
        return self.path.exists()

    def stamp(self) -> int:
        """Changes whenever a snapshot is committed (the file is checkpointed on every write); 0: none."""
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    # -- reading ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection, retried while a collector holds the write lock."""
        if not self.path.exists():
            raise StoreMissing(f"no store at {self.path}: run `python -m collectors snapshot` first")
        con = None
        for attempt in _retrying(READ_RETRY_SECONDS):
            with attempt:
                con = duckdb.connect(str(self.path), read_only=True)
        assert con is not None
        try:
            self._check_schema(con)
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] | dict[str, Any] | None = None) -> pd.DataFrame:
        with self.reader() as con:
            return con.execute(sql, params or []).df()

    def _check_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            found = con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0]
        except duckdb.CatalogException:
            raise StoreError(f"{self.name} is not a Waymark store (no schema_migrations table)") from None
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"{self.name} has schema version {found}, this version of Waymark needs {SCHEMA_VERSION}: "
                "run `python -m collectors snapshot` once to migrate it")

    # -- writing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, capped: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """One read-write transaction; committed on success, rolled back on any exception.
        `capped`: DuckDB's working memory is held to WRITE_MEMORY_LIMIT (else its default, 80% of RAM)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = None
        for attempt in _retrying(WRITE_RETRY_SECONDS):
            with attempt:
                con = self._connect_for_write()
        assert con is not None
        try:
            if capped:
                con.execute(f"SET memory_limit = {sql_literal(WRITE_MEMORY_LIMIT)}")
            self._migrate(con)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            # Fold the WAL into the file now, so read-only readers never depend on replaying it.
            con.execute("CHECKPOINT")
        finally:
            con.close()

    def _connect_for_write(self) -> duckdb.DuckDBPyConnection:
        """The file attached with small row groups: rows inserted in a transaction are held in memory a
        row group at a time per thread, and at DuckDB's 122,880 rows that was +200 MB over the write cap
        at 100k-500k staged runs (bench/stage_memory.py). Spills go where DuckDB puts a file's own."""
        return connect_attached(self.path, WRITE_ALIAS, row_group=STORE_ROW_GROUP,
                                config={"temp_directory": str(self.path) + ".tmp"})

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work(con)` in one write transaction and return its result. The file's single writer
        never conflicts (the lock is waited for on connect); DuckLake re-runs `work` on a conflict.

        Under the memory cap first; a transaction that cannot fit it is re-run without the cap rather
        than failing: rows inserted in one transaction stay in memory until a row group (STORE_ROW_GROUP
        rows) is full, so a pass of very wide rows (big params or tags) can need more than any fixed cap."""
        try:
            with self.writer() as con:
                return work(con)
        except duckdb.Error as e:
            if not is_out_of_memory(e):
                raise
            log.warning("a write to %s did not fit in %s: re-running it uncapped", self.name, WRITE_MEMORY_LIMIT)
            with self.writer(capped=False) as con:
                return work(con)

    def next_id(self, con: duckdb.DuckDBPyConnection, table: str) -> int:
        """The id of the next row of `table` (see migrations.ID_COLUMNS), inside a write transaction."""
        _column, sequence = ID_COLUMNS[table]
        return int(con.execute(f"SELECT nextval('{sequence}')").fetchall()[0][0])

    def attach(self, con: duckdb.DuckDBPyConnection, alias: str, *, read_only: bool) -> None:
        """Attach this store to another connection as `alias` (`python -m store copy`)."""
        if read_only and not self.path.exists():
            raise StoreMissing(f"no store at {self.path}")
        con.execute(f"ATTACH {sql_literal(str(self.path))} AS {alias}" + (" (READ_ONLY)" if read_only else ""))

    def migrate(self) -> None:
        with self.writer():
            pass

    def migrate_if_needed(self) -> bool:
        """Bring an existing store written by an older Waymark up to date; True if it migrated.

        The check is read-only; the write lock is taken only when a migration is due.
        """
        if not self.path.exists():
            return False
        for attempt in _retrying(READ_RETRY_SECONDS):
            with attempt:
                con = duckdb.connect(str(self.path), read_only=True)
        try:
            found = con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0]
        except duckdb.CatalogException:
            found = None
        finally:
            con.close()
        if found is not None and found >= SCHEMA_VERSION:
            return False
        self.migrate()
        return True

    @staticmethod
    def _migrate(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)""")
        applied = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, statements in MIGRATIONS:
            if version in applied:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                for statement in statements:
                    con.execute(statement)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise


