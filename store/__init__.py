"""The DuckDB store: migrations, snapshot history, point-in-time queries."""
from store.db import Store, StoreError, StoreMissing

__all__ = ["Store", "StoreError", "StoreMissing"]
