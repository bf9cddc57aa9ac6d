"""Small display helpers shared by pages and loaders."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

GAP = "—"  # how a missing value (no git SHA, NaN metric) is shown


def age(when: object, now: datetime | None = None) -> str:
    # pd.NaT is a datetime instance too: test for missing first (a source with no full pass yet).
    if when is None or pd.isna(when):
        return "never"
    now = now or datetime.now(timezone.utc)
    ts = pd.Timestamp(when)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    seconds = (pd.Timestamp(now) - ts).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def short_sha(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        return GAP
    return value[:10]


def clip(value: object, limit: int = 120) -> str:
    """Huge tag values are cut for tables; the full value stays in the store and in exports."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return GAP
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
