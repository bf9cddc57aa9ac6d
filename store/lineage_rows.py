"""The rows the lineage graph is built from, read at one point in time (one query per entity).

Only the columns the graph needs are read, and the few JSON values it uses (convention params,
migration tags) are extracted in SQL, so 100k runs load without parsing every params/tags blob.
Alias history is read in full (every time), because a trace as of T must know whether the alias
moved after T. All SQL is parameterised; identifiers are fixed in this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from store.db import Store
from store.queries import AsOf, SnapshotPoint, resolve_as_of
from store.visibility import ALIAS_HISTORY, pins_frame, visible_select


@dataclass
class LineageRows:
    """Everything the builder reads. Frames later collectors fill (tables, endpoints…) join here."""
    points: dict[str, SnapshotPoint]
    source_platforms: dict[str, str]            # every source the store has ever seen → platform
    experiments: pd.DataFrame
    runs: pd.DataFrame                          # + `conv_param_<i>`: the value of version_params[i];
                                                # `git_tag_<i>` / `git_param_<i>`: git_sha_tags[i] / git_sha_params[i]
    run_inputs: pd.DataFrame
    logged_models: pd.DataFrame
    model_versions: pd.DataFrame                # + `conv_tag_<i>`: the value of migration_tags[i]
    model_aliases: pd.DataFrame
    model_origins: pd.DataFrame
    alias_history: pd.DataFrame                 # all times: source,name,alias,version,valid_from,valid_to,seen_from,seen_until
    source_kinds: dict[str, str] = field(default_factory=dict)   # source → collector kind (mlflow, databricks…)
    version_params: tuple[str, ...] = ()
    migration_tags: tuple[str, ...] = ()
    git_sha_tags: tuple[str, ...] = ()
    git_sha_params: tuple[str, ...] = ()
    # Platform tables (migrations 4 and 5), as of the same points; None when not read (older rows,
    # hand-made rows in tests): the builder treats None and empty alike.
    serving_endpoints: pd.DataFrame | None = None
    served_entities: pd.DataFrame | None = None
    aml_endpoints: pd.DataFrame | None = None
    aml_deployments: pd.DataFrame | None = None
    uc_tables: pd.DataFrame | None = None
    table_lineage: pd.DataFrame | None = None
    features: pd.DataFrame | None = None
    feature_lineage: pd.DataFrame | None = None
    model_version_dependencies: pd.DataFrame | None = None
    vector_indexes: pd.DataFrame | None = None
    job_runs: pd.DataFrame | None = None
    fabric_shortcuts: pd.DataFrame | None = None
    # All times: source, endpoint, first_seen (snapshot id), current (bool) — for pickers.
    endpoint_history: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def snapshot_key(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted((s, p.snapshot_id) for s, p in self.points.items()))


_COLUMNS = {
    "experiments": "t.experiment_id, t.name",
    "runs": ("t.run_id, t.experiment_id, t.run_name, t.status, t.lifecycle_stage, t.start_time, "
             "t.git_sha, t.git_sha_from, t.job_run_id"),
    "run_inputs": ("t.run_id, t.input_key, t.dataset_name, t.digest, t.source_type, t.context, "
                   "t.table_name, t.table_version, t.version_known, t.path"),
    "logged_models": "t.model_id, t.experiment_id, t.name, t.source_run_id",
    "model_versions": ("t.name, t.version, t.run_id, t.source_uri, t.model_id, t.status, t.stage, "
                       "t.creation_time"),
    "model_aliases": "t.name, t.alias, t.version",
    "model_origins": ("t.name, t.version, t.read_status, t.origin_run_id, t.origin_model_uuid, "
                      "t.origin_model_id, t.detail"),
    # -- platform tables (JSON columns read as text; the builder parses the few it needs) --
    "serving_endpoints": ("t.name, t.ready, t.config_update, t.config_version, t.pending_config_version, "
                          "t.endpoint_url, t.task, t.read_status"),
    "served_entities": ("t.endpoint, t.config, t.served_entity_name, t.entity_name, t.entity_version, "
                        "t.traffic_pct, t.deployment_state, t.external"),
    "aml_endpoints": ("t.endpoint, t.provisioning_state, t.scoring_uri, CAST(t.traffic AS VARCHAR) AS traffic, "
                      "CAST(t.mirror_traffic AS VARCHAR) AS mirror_traffic"),
    "aml_deployments": ("t.endpoint, t.deployment, t.provisioning_state, t.model_ref, t.model_ref_format, "
                        "t.model_name, t.model_version, t.model_registry"),
    "uc_tables": "t.full_name, t.table_type, t.storage_location, t.read_status",
    "table_lineage": ("t.upstream, t.downstream, t.upstream_kind, t.lineage_timestamp, "
                      "CAST(t.job_ids AS VARCHAR) AS job_ids, CAST(t.notebook_ids AS VARCHAR) AS notebook_ids, "
                      "CAST(t.pipeline_ids AS VARCHAR) AS pipeline_ids, t.depth"),
    "features": "t.full_name, t.name, t.source_table",
    "feature_lineage": "t.feature, t.target_kind, t.target_name, t.target_version, t.source_table",
    "model_version_dependencies": "t.name, t.version, t.dependency_type, t.dependency_name",
    "vector_indexes": ("t.name, t.endpoint_name, t.index_type, t.source_table, "
                       "CAST(t.embedding_model_endpoints AS VARCHAR) AS embedding_model_endpoints, t.ready"),
    "job_runs": ("t.job_run_id, t.job_id, t.run_page_url, t.git_url, t.git_branch, t.git_commit, "
                 "t.git_used_commit, t.read_status"),
    "fabric_shortcuts": "t.item_id, t.path, t.name, t.target_type, t.target_location, t.onelake_path",
}


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def points_for(store: Store, as_of: AsOf | dict[str, SnapshotPoint] = None) -> dict[str, SnapshotPoint]:
    return as_of if isinstance(as_of, dict) else resolve_as_of(store, as_of)


def load_lineage_rows(store: Store, as_of: AsOf | dict[str, SnapshotPoint] = None, *,
                      version_params: tuple[str, ...] = (), migration_tags: tuple[str, ...] = (),
                      git_sha_tags: tuple[str, ...] = (), git_sha_params: tuple[str, ...] = ()) -> LineageRows:
    """The lineage rows as of `as_of` (a time, a snapshot id, None for now, or resolved points)."""
    points = points_for(store, as_of)
    frames: dict[str, pd.DataFrame] = {}
    with store.reader() as con:
        con.register("pins", pins_frame(points.values()))
        for table, columns in _COLUMNS.items():
            extra_cols, params = "", []
            if table == "runs":
                for column, blob, names in (("conv_param", "params", version_params),
                                            ("git_tag", "tags", git_sha_tags), ("git_param", "params", git_sha_params)):
                    for i, name in enumerate(names):
                        extra_cols += f", json_extract_string(t.{blob}, ?) AS {column}_{i}"
                        params.append(_json_path(name))
            if table == "model_versions":
                for i, _name in enumerate(migration_tags):
                    extra_cols += f", json_extract_string(t.tags, ?) AS conv_tag_{i}"
                params = [_json_path(n) for n in migration_tags]
            sql = visible_select(table, f"t.source, {columns}{extra_cols}, t.valid_from, p.sid AS snapshot_id")
            frames[table] = con.execute(sql, params).df()
        con.unregister("pins")
        history = con.execute(ALIAS_HISTORY + " ORDER BY a.source, a.name, a.alias, a.valid_from").df()
        # Every endpoint ever seen (Databricks serving, Azure ML online), for the audit page's picker.
        endpoint_history = con.execute("""
            SELECT source, endpoint, min(valid_from) AS first_seen, bool_or(valid_to IS NULL) AS current
            FROM (SELECT source, name AS endpoint, valid_from, valid_to FROM serving_endpoints
                  UNION ALL SELECT source, endpoint, valid_from, valid_to FROM aml_endpoints)
            GROUP BY source, endpoint ORDER BY source, endpoint""").df()
        described = con.execute("SELECT source, any_value(platform), any_value(kind) FROM snapshots "
                                "GROUP BY source").fetchall()
    platforms = {source: platform for source, platform, _ in described}
    kinds = {source: kind for source, _, kind in described}
    return LineageRows(points=points, source_platforms=platforms, source_kinds=kinds, alias_history=history,
                       endpoint_history=endpoint_history,
                       version_params=tuple(version_params), migration_tags=tuple(migration_tags),
                       git_sha_tags=tuple(git_sha_tags), git_sha_params=tuple(git_sha_params), **frames)


def snapshot_times(store: Store) -> dict[int, datetime]:
    """snapshot id → finished_at, for showing when each piece of evidence was collected."""
    frame = store.query("SELECT snapshot_id, finished_at FROM snapshots WHERE status = 'ok'")
    return {int(r.snapshot_id): r.finished_at.to_pydatetime() for r in frame.itertuples()}


def snapshot_ids(store: Store) -> set[int]:
    frame = store.query("SELECT snapshot_id FROM snapshots")
    return {int(v) for v in frame["snapshot_id"]}
