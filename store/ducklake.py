"""The shared store: DuckLake, with its catalog in PostgreSQL and its data as Parquet files in a
folder or object storage (ADLS, S3, GCS).

Same tables, same SQL, same history model as the DuckDB file; what differs:
- Connections: one in-memory DuckDB per process and mode holds the lake attached (attaching costs
  about a second); each reader or writer gets its own cursor on it, so Streamlit's threads each
  have theirs. Every new transaction sees the lake's latest committed snapshot.
- Writers are optimistic: DuckLake detects a conflicting concurrent commit at COMMIT. Every Waymark
  write transaction first bumps the one row of `waymark_write_token`, so any two concurrent writes
  conflict and the loser is re-run from the start (`Store.write`). That makes writes serialisable:
  snapshot ids (max + 1, DuckLake has no sequences) never repeat, and a loser never closes rows
  from a stale view. A writer killed before COMMIT leaves nothing in the catalog (PostgreSQL rolls
  its transaction back); Parquet files it wrote are orphans that DuckLake's maintenance removes.
- Extensions come from the pinned `duckdb-extension-*` wheels and are LOADed from their files:
  DuckDB cannot download extensions on these machines, and nothing is written to ~/.duckdb.
- The catalog's password never appears in Waymark's config: libpq reads PGPASSWORD or ~/.pgpass.
"""
from __future__ import annotations

import contextlib
import importlib.resources
import logging
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import duckdb

from store import db
from store.migrations import MIGRATIONS, ducklake_statements
from store.staging import FOLDER_PREFIX, PARQUET_ROW_GROUP

T = TypeVar("T")
log = logging.getLogger(__name__)
PREFIX = "ducklake:"
ALIAS = "lake"
_TOKEN_TABLE = "waymark_write_token"
# Kept on the lake (DuckLake's `set_option`, persisted in its catalog, so every writer on every machine
# uses them). DuckLake buffers each Parquet row group whole while it writes: at its default of 122,880
# rows a full pass of 100k runs took the writing process to 799 MB; at the staging files' row-group
# size, 300k wide rows took +160 MB instead of +1,350 MB (bench/README.md).
LAKE_OPTIONS = {"parquet_row_group_size": str(PARQUET_ROW_GROUP)}


class SpecError(ValueError):
    """A DuckLake store spec or [store] table that cannot be used; the message names the field."""


@dataclass(frozen=True)
class DuckLakeSpec:
    """Where a DuckLake store lives: a PostgreSQL catalog (libpq connection string, no password)
    and the folder or object-store URL of its Parquet files (None: the one the lake recorded)."""
    catalog: str
    data_path: str | None = None

    def __post_init__(self) -> None:
        check_catalog(self.catalog)

    def __str__(self) -> str:
        """`ducklake:<catalog>[ data_path=<path>]`, the form `parse` reads back (CLI, app cache keys)."""
        if self.data_path is None:
            return PREFIX + self.catalog
        path = self.data_path
        if re.search(r"[\s'\\]", path):
            path = "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return f"{PREFIX}{self.catalog} data_path={path}"

    @staticmethod
    def parse(text: str) -> "DuckLakeSpec":
        if not text.startswith(PREFIX):
            raise SpecError(f"a DuckLake store spec starts with {PREFIX!r}: {text!r}")
        rest = text[len(PREFIX):].strip()
        data_path = None
        m = re.search(r"(?:^|\s)data_path=('(?:[^'\\]|\\.)*'|\S+)\s*$", rest)
        if m:
            raw = m.group(1)
            data_path = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith("'") else raw
            rest = rest[:m.start()].strip()
        if rest.startswith("postgres:"):   # DuckDB's own spelling, `ducklake:postgres:<conninfo>`
            rest = rest[len("postgres:"):]
        if not rest:
            raise SpecError(f"{text!r}: no catalog (a PostgreSQL connection string) after {PREFIX!r}")
        return DuckLakeSpec(rest, data_path)


def check_catalog(catalog: str, field: str = "catalog") -> None:
    """Refuse a connection string that carries a password: it would end up in files and logs."""
    if not isinstance(catalog, str) or not catalog.strip():
        raise SpecError(f"field {field!r} must be a PostgreSQL connection string")
    text = catalog.strip()
    if re.match(r"^postgres(ql)?://", text):
        parts = urlsplit(text)
        if parts.password is not None or "password" in parse_qs(parts.query):
            raise SpecError(f"field {field!r} must not contain a password: libpq reads it from "
                            "PGPASSWORD or ~/.pgpass (PGPASSFILE)")
    elif re.search(r"(?:^|\s)password\s*=", text, re.IGNORECASE):
        raise SpecError(f"field {field!r} must not contain a password: libpq reads it from "
                        "PGPASSWORD or ~/.pgpass (PGPASSFILE)")


def is_spec(location: object) -> bool:
    return isinstance(location, DuckLakeSpec) or (isinstance(location, str) and location.startswith(PREFIX))


# -- extensions and attaching ----------------------------------------------------------------------
_EXTENSIONS = {   # extension -> the wheel that ships it (pinned in requirements.txt)
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "ducklake": "duckdb_extension_ducklake",
    "azure": "duckdb_extension_azure",
    "httpfs": "duckdb_extension_httpfs",
}


def extension_file(name: str) -> Path:
    package = _EXTENSIONS[name]
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise db.StoreError(f"the DuckLake store needs the {package.replace('_', '-')} package "
                            f"(pinned in requirements.txt)") from None
    path = Path(str(root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"))
    if not path.exists():
        raise db.StoreError(f"{path} is missing: {package.replace('_', '-')} must match duckdb {duckdb.__version__}")
    return path


def _storage_extensions(data_path: str | None) -> list[str]:
    scheme = (data_path or "").split("://", 1)[0].lower() if "://" in (data_path or "") else ""
    if scheme in ("az", "azure", "abfss", "abfs"):
        return ["azure"]
    if scheme in ("s3", "s3a", "s3n", "gs", "gcs", "r2", "http", "https", "hf"):
        return ["httpfs"]
    return []


def _azure_account(data_path: str) -> str | None:
    m = re.match(r"^abfss://[^@/]+@([^./]+)\.dfs\.", data_path)
    return m.group(1) if m else None


def attach(con: duckdb.DuckDBPyConnection, spec: DuckLakeSpec, alias: str, *, read_only: bool) -> None:
    """Load the extensions from their wheels and ATTACH the lake as `alias`."""
    needed = ["postgres_scanner", "ducklake"] + _storage_extensions(spec.data_path)
    loaded = {r[0] for r in con.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    for name in needed:
        if name not in loaded:
            con.execute(f"LOAD {db.sql_literal(str(extension_file(name)))}")
    if "azure" in needed and spec.data_path:
        # ADLS: the same identities as the collectors' DefaultAzureCredential (env, managed identity, CLI).
        account = _azure_account(spec.data_path)
        secret = f"waymark_{alias}_azure"
        con.execute(f"CREATE OR REPLACE SECRET {secret} (TYPE azure, PROVIDER credential_chain"
                    + (f", ACCOUNT_NAME {db.sql_literal(account)}" if account else "") + ")")
    options = []
    if spec.data_path:
        options.append(f"DATA_PATH {db.sql_literal(spec.data_path)}")
    if read_only:
        options.append("READ_ONLY")
    statement = (f"ATTACH {db.sql_literal(PREFIX + 'postgres:' + spec.catalog)} AS {alias}"
                 + (f" ({', '.join(options)})" if options else ""))
    # Two processes attaching a brand-new lake both try to create DuckLake's catalog tables; the
    # loser sees "already exists" from PostgreSQL. The lake exists then, so attaching again succeeds.
    for attempt in range(_CREATE_RACE_ATTEMPTS):
        try:
            con.execute(statement)
            return
        except duckdb.Error as e:
            if attempt == _CREATE_RACE_ATTEMPTS - 1 or not _is_creation_race(e):
                raise
            time.sleep(0.2 * (attempt + 1))


_CREATE_RACE_ATTEMPTS = 5


def _is_creation_race(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "already exists" in text or "duplicate key" in text


def _is_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and "conflict" in text


def _is_uninitialised(exc: BaseException) -> bool:
    """A read-only ATTACH of a catalog where no lake was ever created."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and "does not exist" in text and "creating a new ducklake" in text


class DuckLakeStore(db.Store):
    """A Waymark store in DuckLake (see the module docstring)."""

    _databases: dict[tuple[DuckLakeSpec, bool], duckdb.DuckDBPyConnection] = {}
    _lock = threading.Lock()

    def __init__(self, path: DuckLakeSpec | str):   # `path`: the name Store() gives its one argument
        self.spec = path if isinstance(path, DuckLakeSpec) else DuckLakeSpec.parse(str(path))
        self.name = str(self.spec)
        self.path = None   # type: ignore[assignment]   # no file: callers use `name`

    # -- connections -----------------------------------------------------------------------------
    def _database(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        key = (self.spec, read_only)
        with self._lock:
            con = self._databases.get(key)
            if con is None:
                # In memory, DuckDB would spill to `.tmp` in the working directory. A folder of this
                # process's own instead (two processes must not share one), named like a staging
                # folder so the next pass removes it if this process is killed (staging.remove_stale).
                spill = Path(tempfile.gettempdir()) / f"{FOLDER_PREFIX}{os.getpid()}-lake-spill"
                con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                             "autoload_known_extensions": False,
                                             "temp_directory": str(spill)})
                try:
                    attach(con, self.spec, ALIAS, read_only=read_only)
                except BaseException as e:
                    con.close()
                    if read_only and _is_uninitialised(e):
                        raise db.StoreMissing(f"no Waymark store in the DuckLake catalog {self.spec.catalog!r}: "
                                              "run `python -m collectors snapshot` first") from None
                    if isinstance(e, duckdb.Error):
                        raise db.StoreError(f"cannot attach the DuckLake store {self.name}: {e}") from None
                    raise
                self._databases[key] = con
            return con

    def _forget(self, read_only: bool) -> None:
        with self._lock:
            con = self._databases.pop((self.spec, read_only), None)
        if con is not None:
            with contextlib.suppress(duckdb.Error):
                con.close()

    @contextlib.contextmanager
    def _cursor(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self._database(read_only).cursor()
        try:
            cur.execute(f"USE {ALIAS}")
            yield cur
        except (duckdb.IOException, duckdb.ConnectionException):
            self._forget(read_only)   # the catalog went away: reconnect on the next call
            raise
        finally:
            cur.close()

    @classmethod
    def close_all(cls) -> None:
        """Detach every cached lake (tests; a process that is about to fork)."""
        with cls._lock:
            cons = list(cls._databases.values())
            cls._databases.clear()
        for con in cons:
            with contextlib.suppress(duckdb.Error):
                con.close()

    def exists(self) -> bool:
        try:
            return self._current_schema() is not None
        except db.StoreMissing:
            return False

    def stamp(self) -> int:
        """The lake's latest snapshot id: changes on every commit by any machine."""
        try:
            with self._cursor(read_only=True) as cur:
                return int(cur.execute(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchall()[0][0])
        except db.StoreMissing:
            return 0

    # -- reading ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._cursor(read_only=True) as cur:
            self._check_schema(cur)
            yield cur

    def _current_schema(self) -> int | None:
        with self._cursor(read_only=True) as cur:
            if not _has_table(cur, "schema_migrations"):
                return None
            return cur.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0]

    def _check_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        if not _has_table(con, "schema_migrations"):
            raise db.StoreMissing(f"the DuckLake store {self.name} has no Waymark tables yet: "
                                  "run `python -m collectors snapshot` first")
        super()._check_schema(con)

    # -- writing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, capped: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """One write transaction. A concurrent conflicting commit raises `WriteConflict` at the end:
        use `Store.write`, which re-runs the work, unless the caller retries itself. `capped`: DuckDB's
        working memory is held to `store.db.WRITE_MEMORY_LIMIT`, beyond which it spills to disk (a
        full pass of 100k runs took the committing process to 523 MB without it)."""
        self._migrate_retrying()
        with self._cursor(read_only=False) as cur:
            cur.execute(f"SET memory_limit = {db.sql_literal(db.WRITE_MEMORY_LIMIT)}" if capped else "RESET memory_limit")
            cur.execute("BEGIN TRANSACTION")
            try:
                _take_token(cur)
                yield cur
                cur.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                if _is_conflict(e):
                    raise db.WriteConflict(str(e)) from e
                raise

    def attach(self, con: duckdb.DuckDBPyConnection, alias: str, *, read_only: bool) -> None:
        try:
            attach(con, self.spec, alias, read_only=read_only)
        except duckdb.Error as e:
            if read_only and _is_uninitialised(e):
                raise db.StoreMissing(f"no Waymark store in the DuckLake catalog {self.spec.catalog!r}") from None
            raise

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run `work` in one write transaction, re-run from the start when a concurrent commit
        conflicts with it (DuckLake's optimistic concurrency), for up to WRITE_RETRY_SECONDS."""
        deadline = time.monotonic() + db.WRITE_RETRY_SECONDS
        wait = 0.05
        capped = True
        while True:
            try:
                with self.writer(capped) as con:
                    return work(con)
            except db.WriteConflict:
                if time.monotonic() > deadline:
                    raise
                log.warning("write conflict with a concurrent writer on %s: retrying", self.name)
                time.sleep(random.uniform(0, wait))
                wait = min(wait * 2, 2.0)
            except duckdb.Error as e:
                if not capped or not db.is_out_of_memory(e):
                    raise
                log.warning("a write to %s did not fit in %s: re-running it uncapped", self.name, db.WRITE_MEMORY_LIMIT)
                capped = False   # as for the DuckDB file (Store.write): re-run uncapped rather than fail

    def next_id(self, con: duckdb.DuckDBPyConnection, table: str) -> int:
        # Safe without a sequence: every write transaction holds the token, so writes are serialised.
        column, _sequence = db.ID_COLUMNS[table]
        return int(con.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchall()[0][0])

    def migrate_if_needed(self) -> bool:
        found = self._current_schema() if self._initialised() else None
        if found is not None and found >= db.SCHEMA_VERSION:
            return False
        self.migrate()
        return True

    def migrate(self) -> None:
        self._migrate_retrying()

    def _initialised(self) -> bool:
        try:
            self._database(read_only=True)
            return True
        except db.StoreMissing:
            return False

    def _migrate_retrying(self) -> None:
        """Create the bookkeeping tables and apply pending migrations; two processes starting at
        once conflict on the same CREATE, and the loser re-checks what is applied and goes on."""
        deadline = time.monotonic() + db.WRITE_RETRY_SECONDS
        while True:
            try:
                self._migrate_once()
                return
            except duckdb.Error as e:
                if not _is_conflict(e) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.05, 0.5))

    def _migrate_once(self) -> None:
        with self._cursor(read_only=False) as cur:
            if _has_table(cur, "schema_migrations") and _has_table(cur, _TOKEN_TABLE):
                applied = {r[0] for r in cur.execute("SELECT version FROM schema_migrations").fetchall()}
                if applied >= {v for v, _, _ in MIGRATIONS} and not _options_to_set(cur):
                    return
            cur.execute("BEGIN TRANSACTION")
            try:
                for name, value in _options_to_set(cur).items():
                    cur.execute(f"CALL {ALIAS}.set_option(?, ?)", [name, value])
                cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)""")
                cur.execute(f"CREATE TABLE IF NOT EXISTS {_TOKEN_TABLE} (id INTEGER NOT NULL, n BIGINT NOT NULL)")
                cur.execute(f"INSERT INTO {_TOKEN_TABLE} SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM {_TOKEN_TABLE})")
                cur.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("ROLLBACK")
                raise
            for version, name, statements in MIGRATIONS:
                cur.execute("BEGIN TRANSACTION")
                try:
                    _take_token(cur)
                    # Read inside the transaction: a concurrent migrator that won is seen here or
                    # conflicts with this one at COMMIT.
                    if cur.execute("SELECT count(*) FROM schema_migrations WHERE version = ?",
                                   [version]).fetchall()[0][0]:
                        cur.execute("ROLLBACK")
                        continue
                    for statement in ducklake_statements(statements):
                        cur.execute(statement)
                    cur.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
                    cur.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(duckdb.Error):
                        cur.execute("ROLLBACK")
                    raise


def _options_to_set(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The LAKE_OPTIONS this lake does not hold yet (a lake created by an older Waymark, or by hand)."""
    held = dict(con.execute(f"SELECT option_name, value FROM {ALIAS}.options() WHERE scope = 'GLOBAL'").fetchall())
    return {name: value for name, value in LAKE_OPTIONS.items() if held.get(name) != value}


def _take_token(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"UPDATE {_TOKEN_TABLE} SET n = n + 1")


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' "
        "AND table_name = ?", [ALIAS, table]).fetchall()[0][0])


db.register_backend(is_spec, DuckLakeStore)
