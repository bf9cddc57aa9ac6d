"""One read-only connection for one burst of reads.

A page's loader reads a dozen entities, and each `Store.reader()` opens a new DuckDB connection
(20–50 ms each on the demo store, most of a cold page load). `SharedReader(store)` stands in for
the store: inside `with reader.open():` every read goes through one connection; outside it, it
reads like the store itself (so an object built during the burst may keep it for later reads).
The connection is held only for the burst: a review written from this process needs no reader
open on the same file.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import duckdb
import pandas as pd

from store import Store


class SharedReader:
    def __init__(self, store: Store):
        self._store = store
        self._con: duckdb.DuckDBPyConnection | None = None

    def __getattr__(self, name: str) -> Any:     # path, name, stamp(), exists()… as the store has them
        return getattr(self._store, name)

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is None:
            with self._store.reader() as con:
                yield con
        else:
            yield self._con

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] | dict[str, Any] | None = None) -> pd.DataFrame:
        with self.reader() as con:
            return con.execute(sql, params or []).df()

    @contextlib.contextmanager
    def open(self) -> Iterator["SharedReader"]:
        """Share one connection until the block ends (not re-entrant; one thread)."""
        with self._store.reader() as con:
            self._con = con
            try:
                yield self
            finally:
                self._con = None
