"""As-of visibility, written once: which version of an entity row a reader sees at a snapshot.

Every entity table keeps each version of a row with `valid_from` (the snapshot that first saw it)
and `valid_to` (the snapshot that saw it change or go; NULL while current). A source is *pinned*
at one of its snapshots (`sid`); the row version visible there is the one with
`valid_from <= sid AND (valid_to IS NULL OR valid_to > sid)`.

Readers join an entity table `t` to a pins relation `p(source, sid, ...)`: registered from
`pins_frame(points)`, or `LATEST_GOOD_PINS` for "each source at its latest good snapshot".
`visible_mask` is the same rule for frames already in memory (the checklist's burn-up replays
every point in time from one read of the history).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

# The rule, for SQL over an entity aliased `t` joined to pins aliased `p`.
VISIBLE = "t.valid_from <= p.sid AND (t.valid_to IS NULL OR t.valid_to > p.sid)"
# Every source at its latest good snapshot: what the pages show as "now".
LATEST_GOOD_PINS = "SELECT source, max(snapshot_id) AS sid FROM snapshots WHERE status = 'ok' GROUP BY source"
# Every alias assignment ever recorded, with the times of the snapshots that first and last saw it.
ALIAS_HISTORY = """SELECT a.source, a.name, a.alias, a.version, a.valid_from, a.valid_to,
       s1.finished_at AS seen_from, s2.finished_at AS seen_until
FROM model_aliases a
JOIN snapshots s1 ON s1.snapshot_id = a.valid_from
LEFT JOIN snapshots s2 ON s2.snapshot_id = a.valid_to"""


def pins_frame(points: Iterable[Any]) -> pd.DataFrame:
    """Pins from snapshot points (anything with `source`, `snapshot_id` and `platform`), to register
    as the relation `pins` next to a query that uses `VISIBLE`."""
    points = list(points)
    return pd.DataFrame({"source": [p.source for p in points],
                         "sid": [int(p.snapshot_id) for p in points],
                         "platform": [p.platform for p in points]})


def visible_select(table: str, select: str, where: str = "") -> str:
    """`SELECT <select> FROM <table> t JOIN pins p …` restricted to the visible row versions.
    `table` and `select` must come from the ENTITIES whitelist or fixed text, never from input."""
    return (f"SELECT {select} FROM {table} t JOIN pins p ON t.source = p.source WHERE {VISIBLE}"
            + (f" AND ({where})" if where else ""))


def visible_mask(frame: pd.DataFrame, sid: pd.Series | int) -> pd.Series:
    """`VISIBLE` for a frame holding `valid_from`/`valid_to` beside the pinned `sid`."""
    valid_to = frame["valid_to"]
    return (frame["valid_from"] <= sid) & (valid_to.isna() | (valid_to > sid))
