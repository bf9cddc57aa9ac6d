"""Ordered, recorded migrations: an older store is brought up to date, once, without losing data."""
import duckdb
import pytest

from store.db import SCHEMA_VERSION, Store, StoreError
from store.migrations import MIGRATIONS


def _store_at_version_1(path):
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL)")
    version, name, statements = MIGRATIONS[0]
    for statement in statements:
        con.execute(statement)
    con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    con.execute("INSERT INTO snapshots (source, kind, platform, mode, status, started_at, finished_at) "
                "VALUES ('s', 'mlflow', 'fabric', 'full', 'ok', now(), now())")
    con.close()


def test_migrations_are_numbered_in_order():
    numbers = [m[0] for m in MIGRATIONS]
    assert numbers == list(range(1, len(MIGRATIONS) + 1))


def test_old_store_is_migrated_once_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    _store_at_version_1(path)
    store = Store(path)
    if SCHEMA_VERSION > 1:
        with pytest.raises(StoreError, match="schema version 1"):
            store.query("SELECT 1")
    assert store.migrate_if_needed() is (SCHEMA_VERSION > 1)
    assert store.migrate_if_needed() is False
    applied = store.query("SELECT version FROM schema_migrations ORDER BY version")["version"].tolist()
    assert applied == list(range(1, SCHEMA_VERSION + 1))
    assert store.query("SELECT count(*) AS n FROM snapshots")["n"].item() == 1


def test_missing_store_is_not_created_by_a_reader(tmp_path):
    store = Store(tmp_path / "none.duckdb")
    assert store.migrate_if_needed() is False
    assert not (tmp_path / "none.duckdb").exists()
