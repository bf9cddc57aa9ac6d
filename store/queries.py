"""Read-side queries: point in time ("as of T") for every entity, snapshot history, overview figures.

"As of T" = for each source, its latest good snapshot that finished at or before T; an entity row
is visible at snapshot S by the one rule in `store.visibility`.
Every function takes a Store and returns plain pandas frames / dicts; pages never see SQL.
"""
from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd

from store.db import Store
from store.entities import ENTITIES
from store.visibility import ALIAS_HISTORY, VISIBLE, pins_frame, visible_select

AsOf = datetime | int | None   # a time, a snapshot id, or None for "now"


class SnapshotNotFound(LookupError):
    """An as-of snapshot id that the store never recorded (never silently read as "latest")."""


@dataclass(frozen=True)
class SnapshotPoint:
    """The snapshot chosen per source for a point in time."""
    source: str
    snapshot_id: int
    finished_at: datetime
    platform: str


def resolve_as_of(store: Store, as_of: AsOf = None) -> dict[str, SnapshotPoint]:
    """Latest good snapshot per source at or before `as_of` (a time, or a snapshot id)."""
    if isinstance(as_of, numbers.Integral):
        # A snapshot id pins its own source at that id and every other source at or before it.
        # (Integral, not int: ids taken from a query result are numpy integers.)
        as_of = int(as_of)
        known = store.query("SELECT status, source FROM snapshots WHERE snapshot_id = ?", [as_of])
        if known.empty:
            last = store.query("SELECT max(snapshot_id) AS last FROM snapshots")["last"].iloc[0]
            raise SnapshotNotFound(f"snapshot {as_of} does not exist in {store.path} ("
                                   + ("no snapshot yet" if pd.isna(last) else f"the latest is {int(last)}") + ")")
        frame = store.query(
            """SELECT source, max(snapshot_id) AS snapshot_id, arg_max(finished_at, snapshot_id) AS finished_at,
                      any_value(platform) AS platform
               FROM snapshots WHERE status = 'ok' AND snapshot_id <= ? GROUP BY source""", [as_of])
    else:
        when = as_of or datetime.now(timezone.utc)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        frame = store.query(
            """SELECT source, max(snapshot_id) AS snapshot_id, arg_max(finished_at, snapshot_id) AS finished_at,
                      any_value(platform) AS platform
               FROM snapshots WHERE status = 'ok' AND finished_at <= ? GROUP BY source""", [when])
    return {r.source: SnapshotPoint(r.source, int(r.snapshot_id), r.finished_at.to_pydatetime(), r.platform)
            for r in frame.itertuples()}


def _wanted_columns(table: str, columns: list[str] | None) -> list[str]:
    """The columns to read from one entity (`source` always first); unknown names are refused."""
    entity = ENTITIES[table]
    wanted = list(entity.columns) if columns is None else ["source"] + [c for c in columns if c != "source"]
    unknown = set(wanted) - set(entity.columns)
    if unknown:
        raise ValueError(f"{table} has no column(s) {sorted(unknown)}")
    return wanted


def entity_as_of(store: Store, table: str, as_of: AsOf = None,
                 points: dict[str, SnapshotPoint] | None = None,
                 columns: list[str] | None = None) -> pd.DataFrame:
    """All rows of one entity as they were at `as_of`, with the source's platform attached.

    `columns` limits what is read (big JSON columns cost most). JSON columns come back parsed
    (dict/list). Identifiers come from the ENTITIES whitelist.
    """
    wanted = _wanted_columns(table, columns)
    points = resolve_as_of(store, as_of) if points is None else points
    if not points:
        return pd.DataFrame(columns=wanted + ["platform", "valid_from"])
    return _pinned_rows(store, table, wanted, points, "t.valid_from", VISIBLE)


def _pinned_rows(store: Store, table: str, wanted: list[str], points: dict[str, SnapshotPoint], extra: str,
                 where: str) -> pd.DataFrame:
    """`wanted` columns of `table` (plus the platform and `extra`), each row joined to the snapshot
    its source is pinned at and kept where `where` holds; JSON columns come back parsed."""
    select = ", ".join(f"t.{c}" for c in wanted)
    sql = f"SELECT {select}, p.platform, {extra} FROM {table} t JOIN pins p ON t.source = p.source WHERE {where}"
    with store.reader() as con:
        con.register("pins", pins_frame(points.values()))
        frame = con.execute(sql).df()
    for col in ENTITIES[table].json_columns:
        if col in frame:
            frame[col] = frame[col].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return frame


def metric_samples(store: Store, points: dict[str, SnapshotPoint], window: timedelta) -> pd.DataFrame:
    """Endpoint metric samples visible at `points` within `window` before each endpoint's latest
    sample (the history can be long; pages only ever show the recent end)."""
    if not points:
        return pd.DataFrame(columns=["source", "endpoint", "metric", "labels", "sampled_at", "value"])
    visible = visible_select("endpoint_metrics", "t.source, t.endpoint, t.metric, t.labels, t.sampled_at, t.value")
    with store.reader() as con:
        con.register("pins", pins_frame(points.values()))
        return con.execute(
            f"""WITH visible AS ({visible})
               SELECT v.* FROM visible v
               WHERE v.sampled_at >= (SELECT max(w.sampled_at) FROM visible w
                                      WHERE w.source = v.source AND w.endpoint = v.endpoint) - ?""",
            [int(window.total_seconds() * 1000)]).df()


def rejected_versions(store: Store) -> set[tuple[str, str, str]]:
    """(source, model, version) whose latest review decision is a rejection."""
    try:
        frame = store.query("""SELECT source, model_name, version, arg_max(decision, entry_id) AS decision
                               FROM gate_review_log WHERE kind = 'review'
                               GROUP BY source, model_name, version""")
    except duckdb.CatalogException as e:   # an older store without the review log: nothing rejected
        if "gate_review_log" not in str(e):
            raise
        return set()
    return {(r.source, r.model_name, r.version) for r in frame.itertuples() if r.decision == "reject"}


def snapshots(store: Store, source: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Snapshot history, newest first, with counts/warnings/errors parsed."""
    sql = """SELECT snapshot_id, source, kind, platform, mode, status, started_at, finished_at,
                    counts, warnings, errors
             FROM snapshots WHERE (? IS NULL OR source = ?) ORDER BY snapshot_id DESC LIMIT ?"""
    frame = store.query(sql, [source, source, limit])
    for col in ("counts", "warnings", "errors"):
        frame[col] = frame[col].map(lambda v: json.loads(v) if isinstance(v, str) else ({} if col == "counts" else []))
    frame["seconds"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    return frame


def source_health(store: Store) -> pd.DataFrame:
    """Per source: last good snapshot and its time, last attempt and its status, failures since."""
    return store.query("""
        WITH good AS (
            SELECT source, max(snapshot_id) AS last_good_id FROM snapshots WHERE status = 'ok' GROUP BY source),
        latest AS (
            SELECT source, arg_max(status, snapshot_id) AS last_status, max(finished_at) AS last_attempt_at,
                   arg_max(errors, snapshot_id) AS last_errors, count(*) AS attempts,
                   any_value(platform) AS platform, any_value(kind) AS kind
            FROM snapshots GROUP BY source)
        SELECT l.source, l.platform, l.kind, l.last_status, l.last_attempt_at, l.attempts,
               g.last_good_id, s.finished_at AS last_good_at, s.mode AS last_good_mode,
               (SELECT count(*) FROM snapshots f WHERE f.source = l.source AND f.status = 'failed'
                  AND f.snapshot_id > coalesce(g.last_good_id, 0)) AS failures_since_good,
               l.last_errors
        FROM latest l LEFT JOIN good g USING (source) LEFT JOIN snapshots s ON s.snapshot_id = g.last_good_id
        ORDER BY l.source""")


def entity_counts(store: Store, as_of: AsOf = None) -> pd.DataFrame:
    """Rows per source and entity at a point in time (counted in DuckDB, nothing loaded)."""
    points = resolve_as_of(store, as_of)
    frames = []
    if points:
        with store.reader() as con:
            con.register("pins", pins_frame(points.values()))
            for table in ENTITIES:
                frames.append(con.execute(
                    visible_select(table, "t.source, ? AS entity, count(*) AS count") + " GROUP BY t.source",
                    [table]).df())
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=["source", "entity", "count"])
    return pd.concat(frames, ignore_index=True)


def alias_history(store: Store, source: str | None = None) -> pd.DataFrame:
    """Every alias assignment with the snapshot times it was first and last seen."""
    return store.query(ALIAS_HISTORY + " WHERE (? IS NULL OR a.source = ?) ORDER BY a.source, a.name, a.alias, "
                       "a.valid_from", [source, source])


def entity_history(store: Store, table: str, as_of: AsOf = None,
                   points: dict[str, SnapshotPoint] | None = None,
                   columns: list[str] | None = None) -> pd.DataFrame:
    """Every row of one entity that was visible at any snapshot up to `as_of` (per source, up to
    its pinned snapshot), with `valid_from`/`valid_to`: what was ever true, not only what is."""
    wanted = _wanted_columns(table, columns)
    points = resolve_as_of(store, as_of) if points is None else points
    if not points:
        return pd.DataFrame(columns=wanted + ["platform", "valid_from", "valid_to"])
    return _pinned_rows(store, table, wanted, points, "t.valid_from, t.valid_to", "t.valid_from <= p.sid")


def last_full_passes(store: Store, source: str | None = None) -> pd.DataFrame:
    """Per source: when its last good full pass finished, and why it was full. An incremental pass
    cannot see tags changed on finished runs or restored runs; a full one does."""
    return store.query("""
        SELECT source, max(finished_at) AS last_full_at, arg_max(full_reason, finished_at) AS full_reason,
               arg_max(snapshot_id, finished_at) AS snapshot_id
        FROM snapshots WHERE status = 'ok' AND mode = 'full' AND (? IS NULL OR source = ?)
        GROUP BY source ORDER BY source""", [source, source])
