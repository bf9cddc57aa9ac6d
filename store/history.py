"""Writing snapshots: one transaction per collection pass, history kept per row (see migrations).

A collector hands over, per entity, the rows it saw plus the *scope* those rows are complete for:
- `Scope.ALL`: the rows are everything the source has; current rows not among them were removed.
- `Scope.partitions(column, values)`: complete within those partitions (e.g. the inputs of the
  runs that were re-read); current rows of other partitions are left alone.
- `Scope.NONE`: an upsert; nothing is closed (incremental passes).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from store.db import Store, sql_literal


@dataclass(frozen=True)
class Entity:
    table: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    json_columns: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return ("source",) + self.keys + self.values


ENTITIES: dict[str, Entity] = {e.table: e for e in (
    Entity("experiments", ("experiment_id",),
           ("name", "lifecycle_stage", "artifact_location", "creation_time", "last_update_time", "tags"),
           ("tags",)),
    Entity("runs", ("run_id",),
           ("experiment_id", "run_name", "status", "lifecycle_stage", "user_id", "start_time", "end_time",
            "artifact_uri", "params", "metrics", "tags", "git_sha", "git_sha_from", "source_name",
            "source_type", "parent_run_id", "job_run_id", "output_model_ids"),
           ("params", "metrics", "tags", "output_model_ids")),
    Entity("run_inputs", ("run_id", "input_key"),
           ("dataset_name", "digest", "source_type", "context", "table_name", "table_version",
            "version_known", "path", "source_json")),
    Entity("logged_models", ("model_id",),
           ("experiment_id", "name", "source_run_id", "artifact_location", "status", "model_type",
            "creation_time", "tags", "params", "metrics"),
           ("tags", "params", "metrics")),
    Entity("registered_models", ("name",),
           ("description", "creation_time", "last_updated_time", "tags"), ("tags",)),
    Entity("model_versions", ("name", "version"),
           ("run_id", "source_uri", "model_id", "status", "stage", "user_id", "description",
            "creation_time", "last_updated_time", "tags", "aliases"),
           ("tags", "aliases")),
    Entity("model_aliases", ("name", "alias"), ("version",)),
    Entity("model_origins", ("name", "version"),
           ("read_status", "origin_run_id", "origin_model_uuid", "origin_model_id", "artifact_path",
            "created_utc", "flavors", "detail"),
           ("flavors",)),
    # Databricks source (collectors/databricks_source.py, migration 4).
    Entity("uc_models", ("full_name",),
           ("catalog_name", "schema_name", "owner", "storage_location", "created_by", "updated_by",
            "read_status", "detail")),
    Entity("uc_model_versions", ("name", "version"),
           ("run_workspace_id", "storage_location", "created_by", "updated_by")),
    Entity("model_version_dependencies", ("name", "version", "dependency_type", "dependency_name"), ()),
    Entity("uc_tables", ("full_name",),
           ("catalog_name", "schema_name", "table_type", "data_source_format", "storage_location", "owner",
            "table_id", "created_at", "updated_at", "comment", "reasons", "read_status", "detail"),
           ("reasons",)),
    Entity("table_lineage", ("upstream", "downstream"),
           ("upstream_kind", "upstream_table_type", "lineage_timestamp", "job_ids", "notebook_ids",
            "pipeline_ids", "depth"),
           ("job_ids", "notebook_ids", "pipeline_ids")),
    Entity("features", ("full_name",),
           ("catalog_name", "schema_name", "name", "source_table", "entity_columns", "timeseries_column",
            "inputs", "function", "time_window", "description", "created_by"),
           ("entity_columns", "inputs", "function", "time_window")),
    Entity("feature_lineage", ("feature", "target_kind", "target_name", "target_version"), ("source_table",)),
    Entity("serving_endpoints", ("name",),
           ("endpoint_id", "ready", "config_update", "config_version", "pending_config_version", "creator",
            "creation_timestamp", "last_updated_timestamp", "task", "tags", "inference_table", "endpoint_url",
            "read_status", "detail"),
           ("tags", "inference_table")),
    Entity("served_entities", ("endpoint", "config", "served_entity_name"),
           ("entity_name", "entity_version", "workload_size", "workload_type", "scale_to_zero_enabled",
            "deployment_state", "deployment_state_message", "traffic_pct", "external")),
    Entity("endpoint_metrics", ("endpoint", "metric", "labels", "sampled_at"), ("value",)),
    Entity("vector_search_endpoints", ("name",),
           ("endpoint_id", "endpoint_type", "endpoint_status", "num_indexes", "creator", "creation_timestamp",
            "last_updated_timestamp")),
    Entity("vector_indexes", ("name",),
           ("endpoint_name", "index_type", "primary_key", "source_table", "embedding_source_columns",
            "embedding_model_endpoints", "pipeline_id", "ready", "indexed_row_count", "status_message",
            "creator", "read_status", "detail"),
           ("embedding_source_columns", "embedding_model_endpoints")),
    Entity("job_runs", ("job_run_id",),
           ("job_id", "run_name", "life_cycle_state", "result_state", "state_message", "start_time", "end_time",
            "creator_user_name", "run_page_url", "git_url", "git_provider", "git_branch", "git_tag",
            "git_commit", "git_used_commit", "read_status", "detail")),
    # Azure ML, Fabric and AI Search sources (collectors/azureml_source.py, fabric_source.py,
    # search_source.py; migration 5).
    Entity("aml_endpoints", ("endpoint",),
           ("resource_id", "location", "kind", "auth_mode", "provisioning_state", "scoring_uri", "traffic",
            "mirror_traffic", "public_network_access", "tags", "created_at", "modified_at"),
           ("traffic", "mirror_traffic", "tags")),
    Entity("aml_deployments", ("endpoint", "deployment"),
           ("resource_id", "provisioning_state", "compute_type", "instance_type", "instance_count", "scale_type",
            "model_ref", "model_ref_format", "model_name", "model_version", "model_registry", "environment_id",
            "app_insights_enabled", "tags"),
           ("tags",)),
    Entity("fabric_items", ("item_id",),
           ("workspace_id", "item_type", "display_name", "description", "folder_id", "mlflow_experiment_id",
            "schema_enabled", "properties", "tags", "listed_via"),
           ("properties", "tags")),
    Entity("fabric_tables", ("lakehouse_id", "schema_name", "table_name"),
           ("table_type", "format", "location", "listed_via")),
    Entity("fabric_shortcuts", ("item_id", "path", "name"),
           ("target_type", "target_location", "onelake_path", "target"), ("target",)),
    Entity("search_indexes", ("index_name",),
           ("key_field", "fields", "vector_fields", "document_count", "storage_size", "vector_index_size",
            "indexers", "read_status", "detail"),
           ("fields", "vector_fields", "indexers")),
)}


@dataclass(frozen=True)
class Scope:
    mode: str  # all | partitions | none
    column: str | None = None
    values: tuple[Any, ...] = ()

    @staticmethod
    def partitions(column: str, values: Any) -> "Scope":
        return Scope("partitions", column, tuple(values))


Scope.ALL = Scope("all")  # type: ignore[attr-defined]
Scope.NONE = Scope("none")  # type: ignore[attr-defined]


@dataclass
class EntityBatch:
    """Rows handed over in memory (sources whose rows are few: Databricks, Azure)."""
    rows: list[dict[str, Any]]
    scope: Scope


@dataclass(frozen=True)
class StagedBatch:
    """Rows of `table` staged page by page in a staging file (store/staging.py), never all in memory.
    `replace_by`: a later group of rows with the same value of this column replaces the earlier one."""
    path: str
    table: str
    scope: Scope
    replace_by: str | None = None


@dataclass
class SnapshotResult:
    snapshot_id: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


def json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON; they are stored as null (a gap) rather than crashing."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def frame_of(entity: Entity, source: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the store's form: the entity's columns, JSON columns dumped, and `row_hash`."""
    records = []
    for row in rows:
        rec: dict[str, Any] = {"source": source}
        for col in entity.keys + entity.values:
            v = row.get(col)
            if col in entity.json_columns:
                v = None if v is None else json.dumps(json_safe(v), sort_keys=True, ensure_ascii=False)
            rec[col] = v
        payload = json.dumps([rec[c] for c in entity.values], default=str, ensure_ascii=False)
        rec["row_hash"] = hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()
        records.append(rec)
    frame = pd.DataFrame.from_records(records, columns=list(entity.columns) + ["row_hash"])
    # Object dtype keeps ints exact and None as NULL when DuckDB scans the frame.
    return frame.astype(object).where(frame.notna(), None)


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
    from store import staging   # it builds on this module's entities

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
