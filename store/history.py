"""Writing snapshots: one transaction per collection pass, history kept per row (see migrations).
What a pass hands over (entities, batches, scopes) is described in `store.entities`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from store.db import Store, sql_literal
from store import staging
from store.entities import ENTITIES, Entity, EntityBatch, Scope, StagedBatch


@dataclass
class SnapshotResult:
    snapshot_id: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def commit_snapshot(store: Store, *, source: str, kind: str, platform: str, mode: str,
                    started_at: datetime, finished_at: datetime | None,
                    batches: dict[str, EntityBatch | StagedBatch], warnings: list[str], state: dict[str, Any],
                    full_reason: str | None = None) -> SnapshotResult:
    """Write one good snapshot atomically: the snapshot row and every entity change, or nothing.
    `full_reason` says why a full pass was full (None for an incremental one).

    Every batch goes through a staging file: rows handed over in memory are staged here first, so
    both kinds take one path. The finished staged tables are read as Parquet inside the one write
    transaction and the diff is applied set-based from them; a pass killed before COMMIT leaves the
    store as it was."""
    finished_at = finished_at or datetime.now(timezone.utc)
    in_memory = {t: b for t, b in batches.items() if isinstance(b, EntityBatch)}
    area = staging.StagingArea() if in_memory else None
    try:
        staged: dict[str, StagedBatch] = {}
        if area is not None:
            writer = area.writer(source)
            try:
                for table, batch in in_memory.items():
                    writer.add(table, batch.rows)
                    staged[table] = writer.batch(table, batch.scope)
            finally:
                writer.close()
        for table, batch in batches.items():
            if isinstance(batch, StagedBatch):
                assert batch.table == table, (table, batch.table)
                staged[table] = batch
        order = list(batches)
        files: dict[str, dict[str, StagedBatch]] = {}
        for table in order:
            files.setdefault(staged[table].path, {})[table] = staged[table]
        ready: dict[str, staging.Finished] = {}
        for path, group in files.items():
            ready.update(staging.finish(path, group, warnings))

        def write(con) -> SnapshotResult:   # re-run from the start if a concurrent commit conflicts
            snapshot_id = store.next_id(con, "snapshots")
            con.execute(
                """INSERT INTO snapshots (snapshot_id, source, kind, platform, mode, status, started_at, finished_at,
                                         state, full_reason)
                   VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, ?, ?)""",
                [snapshot_id, source, kind, platform, mode, started_at, finished_at, json.dumps(state),
                 (full_reason or "no_previous_state") if mode == "full" else None])
            counts = {}
            for table in order:
                counts[table] = _apply(con, ENTITIES[table], source, snapshot_id, ready[table], staged[table].scope)
            con.execute("UPDATE snapshots SET counts = ?, warnings = ? WHERE snapshot_id = ?",
                        [json.dumps(counts), json.dumps(warnings), snapshot_id])
            return SnapshotResult(snapshot_id, counts)

        return store.write(write)
    finally:
        if area is not None:
            area.close()


def record_failed_snapshot(store: Store, *, source: str, kind: str, platform: str, mode: str,
                           started_at: datetime, errors: list[str], warnings: list[str]) -> int:
    def write(con) -> int:
        snapshot_id = store.next_id(con, "snapshots")
        con.execute(
            """INSERT INTO snapshots (snapshot_id, source, kind, platform, mode, status, started_at, finished_at,
                                     errors, warnings)
               VALUES (?, ?, ?, ?, ?, 'failed', ?, ?, ?, ?)""",
            [snapshot_id, source, kind, platform, mode, started_at, datetime.now(timezone.utc),
             json.dumps(errors), json.dumps(warnings)])
        return snapshot_id

    return store.write(write)


def _apply(con, entity: Entity, source: str, snapshot_id: int, staged: Any, scope: Scope) -> dict[str, int]:
    """Close changed/removed current rows, insert new versions, from the staged Parquet file
    (`staging.Finished`). Identifiers come from ENTITIES only."""
    table = entity.table
    assert table in ENTITIES and (scope.column is None or scope.column in entity.columns)
    incoming = f"read_parquet({sql_literal(staged.rows)})"
    scope_values = f"read_parquet({sql_literal(staged.scope_values)})"
    seen = staged.seen
    key_match = " AND ".join(f"i.{k} = t.{k}" for k in entity.keys)
    current = "t.source = ? AND t.valid_to IS NULL"
    changed_sql = (f"UPDATE {table} AS t SET valid_to = ? WHERE {current} AND EXISTS "
                   f"(SELECT 1 FROM {incoming} i WHERE {key_match} AND i.row_hash <> t.row_hash)")
    changed = con.execute(changed_sql, [snapshot_id, source]).fetchall()[0][0]
    removed = 0
    if scope.mode != "none":
        removed_sql = (f"UPDATE {table} AS t SET valid_to = ? WHERE {current} AND NOT EXISTS "
                       f"(SELECT 1 FROM {incoming} i WHERE {key_match})")
        if scope.mode == "partitions":
            if scope.values:
                removed_sql += f" AND t.{scope.column} IN (SELECT v FROM {scope_values})"
            else:
                removed_sql = ""
        if removed_sql:
            removed = con.execute(removed_sql, [snapshot_id, source]).fetchall()[0][0]
    cols = entity.columns + ("row_hash",)
    insert_sql = (f"INSERT INTO {table} ({', '.join(cols)}, valid_from, valid_to) "
                  f"SELECT {', '.join('i.' + c for c in cols)}, ?, NULL "
                  f"FROM {incoming} i WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {current} AND {key_match})")
    inserted = con.execute(insert_sql, [snapshot_id, source]).fetchall()[0][0]
    return {"seen": seen, "added": inserted - changed, "changed": changed, "removed": removed}
