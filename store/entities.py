"""What the store records, per entity: its table, key and value columns, and how a pass's rows
become a frame with a row hash (`frame_of`). Collectors hand rows over as an `EntityBatch` (rows in
memory) or a `StagedBatch` (rows staged on disk), each with the `Scope` they are complete for:
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
from typing import Any

import pandas as pd


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


def json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON; they are stored as null (a gap) rather than crashing."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class UnknownColumn(ValueError):
    """A collector handed over a row with a field its entity does not store (a typo or a renamed
    column would otherwise be dropped without a word)."""


def frame_of(entity: Entity, source: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows in the store's form: the entity's columns, JSON columns dumped, and `row_hash`.
    Raises UnknownColumn for a row with a key that is not a column of the entity."""
    allowed = frozenset(entity.columns)
    records = []
    for row in rows:
        if not allowed.issuperset(row):
            unknown = sorted(str(k) for k in row if k not in allowed)
            raise UnknownColumn(f"{entity.table} (source {source}): row field(s) {', '.join(map(repr, unknown))} "
                                f"are not columns of {entity.table}; its columns are {', '.join(entity.columns)}")
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
