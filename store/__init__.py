"""The DuckDB store: migrations, snapshot history, point-in-time queries."""
from store import ducklake  # noqa: F401  (registers the DuckLake backend: Store(spec) opens a DuckLakeStore)
from store.db import Store, StoreError, StoreMissing

__all__ = ["Store", "StoreError", "StoreMissing"]
