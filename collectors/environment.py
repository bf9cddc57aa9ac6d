"""The process environment, changed for a while: what a client reads from env vars (MLflow's retry
budget, Databricks unified auth) set for one block and put back as it was afterwards."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


@contextlib.contextmanager
def temporary_env(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in `os.environ` for the block; afterwards each variable is restored, or removed
    if it was not set before."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
