"""Manual status, owner, due date, notes and kind overrides, kept with history (who, when).

Append-only (`checklist_status_log`, store migration 2): each save on the Checklist page writes
one row holding the item's whole manual state; the newest row per item is current, older rows are
its history. An item is a workload (its asset key) or a checklist step (`step:<id>`). "Who" is
the identity gates/identity.py resolves (the same person under the same name as in the review
log), with whether it was verified by an OIDC sign-in.

The write is one tiny transaction through `Store.writer()`. Within one process DuckDB refuses a
read-write connection while a read-only one to the same file is open (and the other way round),
so the write is retried briefly while another session of the app is reading.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import pandas as pd
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from gates.identity import Identity, normalise
from store import Store, StoreMissing

STATUSES = ("not_started", "in_progress", "blocked", "done", "stays")
COMPLETE = ("done", "stays")
STATUS_LABELS = {"not_started": "not started", "in_progress": "in progress", "blocked": "blocked",
                 "done": "done", "stays": "stays (decided not to move)"}
MANUAL_COLUMNS = ["asset_key", "status", "owner", "due", "notes", "kind_override", "who", "who_verified", "recorded_at"]
_SELECT_LOG = "SELECT entry_id, " + ", ".join(MANUAL_COLUMNS) + " FROM checklist_status_log ORDER BY entry_id"
WRITE_RETRY_SECONDS = 20.0


class ManualStatusError(ValueError):
    pass


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _same_process_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("different configuration" in text or "lock" in text
                                              or "conflicting" in text)


def record_manual_status(store: Store, asset_key: str, *, status: str | None, owner: str | None,
                         due: date | None, notes: str | None, kind_override: str | None, who: Identity,
                         known_kinds: tuple[str, ...] | list[str] = (), at: datetime | None = None) -> int:
    """Append one entry (the item's whole manual state) and return its id."""
    if not asset_key or not asset_key.strip():
        raise ManualStatusError("an entry needs the key of the workload or step it is about")
    if status is not None and status not in STATUSES:
        raise ManualStatusError(f"unknown status {status!r} (expected one of {', '.join(STATUSES)})")
    if kind_override is not None and known_kinds and kind_override not in known_kinds:
        raise ManualStatusError(f"unknown workload kind {kind_override!r} (not in the decision matrix)")
    if not normalise(who.name):
        raise ManualStatusError("an entry needs the name of who made it (nothing visible in the name given)")
    row = [asset_key, status, _clean(owner), due, _clean(notes), kind_override, normalise(who.name), who.verified,
           at or datetime.now(timezone.utc)]
    for attempt in Retrying(retry=retry_if_exception(_same_process_conflict),
                            wait=wait_random_exponential(multiplier=0.05, max=0.5),
                            stop=stop_after_delay(WRITE_RETRY_SECONDS), reraise=True):
        with attempt:
            def write(con) -> int:   # explicit id: DuckLake has neither sequences nor RETURNING
                entry_id = store.next_id(con, "checklist_status_log")
                con.execute(
                    """INSERT INTO checklist_status_log
                           (entry_id, asset_key, status, owner, due, notes, kind_override, who, who_verified,
                            recorded_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", [entry_id] + row)
                return entry_id

            return store.write(write)
    raise AssertionError("unreachable")


def manual_log(store: Store) -> pd.DataFrame:
    """Every entry, oldest first (the burn-up replays it; the page shows an item's part of it)."""
    try:
        return store.query(_SELECT_LOG)
    except StoreMissing:
        return pd.DataFrame(columns=["entry_id"] + MANUAL_COLUMNS)


def current_manual(log: pd.DataFrame, until: datetime | None = None) -> pd.DataFrame:
    """The newest entry per item (as of `until` when given), indexed by asset key."""
    frame = log
    if until is not None and not frame.empty:
        frame = frame[frame["recorded_at"] <= pd.Timestamp(until)]
    if frame.empty:
        return pd.DataFrame(columns=MANUAL_COLUMNS).set_index("asset_key")
    return frame.sort_values("entry_id").groupby("asset_key").tail(1).set_index("asset_key")


def item_history(log: pd.DataFrame, asset_key: str) -> pd.DataFrame:
    """One item's entries, newest first, with "who" labelled (unverified) where it is."""
    frame = log[log["asset_key"] == asset_key].sort_values("entry_id", ascending=False).copy()
    frame["who"] = [w if v else f"{w} (unverified)" for w, v in zip(frame["who"], frame["who_verified"])]
    return frame[["recorded_at", "who", "status", "owner", "due", "notes", "kind_override"]].reset_index(drop=True)
