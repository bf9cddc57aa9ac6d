"""Copy a whole store, history included, between backends (DuckDB file <-> DuckLake).

Both stores are attached to one in-memory DuckDB and every table is copied with one INSERT ...
SELECT inside a single transaction on the destination, so a failed copy leaves the destination
empty. The destination is migrated first and must hold no data: a copy never merges histories
(snapshot ids would collide). Ids carry over unchanged, so every `valid_from`/`valid_to` still
points at its snapshot; on a DuckDB file the sequences are moved past the copied ids.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from store.db import SCHEMA_VERSION, Store, StoreError
from store.migrations import ID_COLUMNS

_BOOKKEEPING = ("schema_migrations", "waymark_write_token")   # written by each store's own migrations


@dataclass(frozen=True)
class CopiedTable:
    name: str
    rows: int


# Table and column names are spliced into SQL below: only plain identifiers, as Waymark's own
# migrations create, are accepted from a store's catalog.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise StoreError(f"the store holds a table or column named {name!r}, which Waymark never creates")
    return name


def _tables(con: duckdb.DuckDBPyConnection, alias: str) -> list[str]:
    return [_identifier(r[0]) for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_schema = 'main' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name", [alias]).fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, alias: str, table: str) -> list[str]:
    return [_identifier(r[0]) for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? AND table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position", [alias, table]).fetchall()]


def copy_store(source: Store, destination: Store) -> list[CopiedTable]:
    if source.name == destination.name:
        raise StoreError("--from and --to are the same store")
    with source.reader():   # the source exists and is at this version's schema (else a clear StoreError)
        pass
    destination.migrate()
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        source.attach(con, "src", read_only=True)
        destination.attach(con, "dst", read_only=False)
        found = con.execute("SELECT max(version) FROM src.main.schema_migrations").fetchall()[0][0]
        if found != SCHEMA_VERSION:
            raise StoreError(f"{source.name} has schema version {found}, this Waymark needs {SCHEMA_VERSION}")
        tables = [t for t in _tables(con, "src") if t not in _BOOKKEEPING]
        missing = sorted(set(tables) - set(_tables(con, "dst")))
        if missing:
            raise StoreError(f"{destination.name} has no table(s) {missing}: not a store of the same schema")
        held = [t for t in tables if con.execute(f"SELECT count(*) FROM dst.main.{t}").fetchall()[0][0]]
        if held:
            raise StoreError(f"{destination.name} already holds data (in {', '.join(held)}): "
                             "copy only into a new, empty store")
        copied = []
        con.execute("BEGIN TRANSACTION")
        try:
            if "waymark_write_token" in _tables(con, "dst"):   # DuckLake: serialise with other writers
                con.execute("UPDATE dst.main.waymark_write_token SET n = n + 1")
            for table in tables:
                # Identifiers come from the source's own catalog; columns by name, in source order.
                columns = ", ".join(f'"{c}"' for c in _columns(con, "src", table))
                con.execute(f"INSERT INTO dst.main.{table} ({columns}) SELECT {columns} FROM src.main.{table}")
                copied.append(CopiedTable(table, con.execute(f"SELECT count(*) FROM dst.main.{table}").fetchall()[0][0]))
            _advance_sequences(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return copied
    except duckdb.Error as e:
        raise StoreError(f"copy from {source.name} to {destination.name} failed: {e}") from None
    finally:
        con.close()


def _advance_sequences(con: duckdb.DuckDBPyConnection) -> None:
    """A DuckDB file destination: move each id sequence past the copied ids (DuckDB has no setval)."""
    sequences = {r[0] for r in con.execute(
        "SELECT sequence_name FROM duckdb_sequences() WHERE database_name = 'dst'").fetchall()}
    for table, (column, sequence) in ID_COLUMNS.items():
        if sequence not in sequences:
            continue
        top = con.execute(f"SELECT coalesce(max({column}), 0) FROM dst.main.{table}").fetchall()[0][0]
        if top:
            con.execute(f"SELECT max(nextval('dst.main.{sequence}')) FROM range(?)", [top])
