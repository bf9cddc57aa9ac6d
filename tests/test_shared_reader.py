"""ui/shared_reader: one connection for a loader's burst of reads, the same answers as the store."""
from __future__ import annotations

import contextlib

import pytest


class CountingStore:
    """A real Store whose reader() entries are counted (each one opens a DuckDB connection)."""

    def __init__(self, store):
        self.store, self.opened = store, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    @contextlib.contextmanager
    def reader(self):
        self.opened += 1
        with self.store.reader() as con:
            yield con

    def query(self, sql, params=None):
        with self.reader() as con:
            return con.execute(sql, params or []).df()


@pytest.fixture()
def demo_store(demo_dir):
    from collectors.config import load_config
    from store import Store

    config = load_config(demo_dir / "governance.toml")
    return Store(config.store_path), config


def test_the_health_table_reads_through_one_connection_and_answers_the_same(demo_store):
    from health.status import health_table
    from ui.shared_reader import SharedReader

    store, config = demo_store
    plain = CountingStore(store)
    expected = health_table(plain, config.slos)
    assert plain.opened > 5                      # what each read used to cost: a connection apiece
    counted = CountingStore(store)
    with SharedReader(counted).open() as shared:
        got = health_table(shared, config.slos)
    assert counted.opened == 1
    cols = [c for c in expected.columns if c != "last_data"]
    assert got[cols].astype(str).equals(expected[cols].astype(str)) and len(got) == len(expected) > 0


def test_after_the_burst_it_reads_like_the_store(demo_store):
    from store import queries as q
    from ui.shared_reader import SharedReader

    store, _ = demo_store
    counted = CountingStore(store)
    shared = SharedReader(counted)
    with shared.open():
        inside = q.entity_as_of(shared, "model_versions")    # the snapshot points and the rows: one connection
    assert counted.opened == 1
    after = q.entity_as_of(shared, "model_versions")      # the shared one is closed: reads open their own
    assert counted.opened > 1 and len(inside) == len(after) > 0
    assert shared.path == store.path
