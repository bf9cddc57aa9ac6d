"""`python -m collectors ARGS` whose write transactions are held open after their last row, before
COMMIT: the writer of the concurrency tests. The store has no hook for this; the hold wraps
`Store.writer` (and `DuckLakeStore.writer`) in this process only.

WAYMARK_TEST_HOLD_WRITE_SECONDS: the longest hold; WAYMARK_TEST_HOLD_MARKER: a file written once
holding; WAYMARK_TEST_HOLD_UNTIL: a file whose appearance ends the hold early (so two writers can
be made to overlap)."""
from __future__ import annotations

import contextlib
import os
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def hold() -> None:
    seconds = float(os.environ["WAYMARK_TEST_HOLD_WRITE_SECONDS"])
    if marker := os.environ.get("WAYMARK_TEST_HOLD_MARKER"):
        Path(marker).write_text("holding")
    until = os.environ.get("WAYMARK_TEST_HOLD_UNTIL")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and Path(until).exists()):
        time.sleep(0.05)


def held(writer):
    @contextlib.contextmanager
    def holding_writer(self, *args, **kwargs):
        with writer(self, *args, **kwargs) as con:
            yield con
            hold()          # the body wrote every row; the wrapped writer commits when this returns
    return holding_writer


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from store.db import Store
    from store.ducklake import DuckLakeStore

    Store.writer = held(Store.writer)
    DuckLakeStore.writer = held(DuckLakeStore.writer)
    sys.argv[0] = "collectors"
    runpy.run_module("collectors", run_name="__main__", alter_sys=True)
