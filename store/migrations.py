"""Ordered, recorded schema migrations. Append only: never edit a migration that has shipped.

History model: every entity table is versioned per snapshot (slowly-changing, type 2). A row is
valid from the snapshot that first saw it (`valid_from`) until the snapshot that saw it change or
disappear (`valid_to`, NULL while current). Snapshot ids grow monotonically across all sources,
so "as of snapshot S" is `valid_from <= S AND (valid_to IS NULL OR valid_to > S)`.
A failed pass writes only its `snapshots` row, never entity rows.
"""
from __future__ import annotations

import re

# Columns every versioned entity table has; `row_hash` lets a snapshot skip unchanged rows.
_VERSIONED = "valid_from BIGINT NOT NULL, valid_to BIGINT, row_hash VARCHAR NOT NULL"

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "snapshots and MLflow entities", [
        "CREATE SEQUENCE snapshot_id_seq START 1",
        """CREATE TABLE snapshots (
            snapshot_id BIGINT PRIMARY KEY DEFAULT nextval('snapshot_id_seq'),
            source VARCHAR NOT NULL, kind VARCHAR NOT NULL, platform VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,              -- full | incremental
            status VARCHAR NOT NULL,            -- ok | failed
            started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ NOT NULL,
            counts JSON,                        -- {entity: {seen, added, changed, removed}}
            warnings JSON, errors JSON,         -- capped lists of strings
            state JSON                          -- collector state for the next incremental pass
        )""",
        "CREATE INDEX snapshots_source_idx ON snapshots(source, status, finished_at)",
        f"""CREATE TABLE experiments (
            source VARCHAR NOT NULL, experiment_id VARCHAR NOT NULL,
            name VARCHAR, lifecycle_stage VARCHAR, artifact_location VARCHAR,
            creation_time BIGINT, last_update_time BIGINT, tags JSON, {_VERSIONED})""",
        f"""CREATE TABLE runs (
            source VARCHAR NOT NULL, run_id VARCHAR NOT NULL, experiment_id VARCHAR,
            run_name VARCHAR, status VARCHAR, lifecycle_stage VARCHAR, user_id VARCHAR,
            start_time BIGINT, end_time BIGINT, artifact_uri VARCHAR,
            params JSON, metrics JSON, tags JSON,
            git_sha VARCHAR, git_sha_from VARCHAR, source_name VARCHAR, source_type VARCHAR,
            parent_run_id VARCHAR, job_run_id VARCHAR, output_model_ids JSON, {_VERSIONED})""",
        f"""CREATE TABLE run_inputs (
            source VARCHAR NOT NULL, run_id VARCHAR NOT NULL, input_key VARCHAR NOT NULL,
            dataset_name VARCHAR, digest VARCHAR, source_type VARCHAR, context VARCHAR,
            table_name VARCHAR, table_version BIGINT, version_known BOOLEAN,
            path VARCHAR, source_json VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE logged_models (
            source VARCHAR NOT NULL, model_id VARCHAR NOT NULL, experiment_id VARCHAR,
            name VARCHAR, source_run_id VARCHAR, artifact_location VARCHAR, status VARCHAR,
            model_type VARCHAR, creation_time BIGINT, tags JSON, params JSON, metrics JSON, {_VERSIONED})""",
        f"""CREATE TABLE registered_models (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, description VARCHAR,
            creation_time BIGINT, last_updated_time BIGINT, tags JSON, {_VERSIONED})""",
        f"""CREATE TABLE model_versions (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
            run_id VARCHAR, source_uri VARCHAR, model_id VARCHAR, status VARCHAR, stage VARCHAR,
            user_id VARCHAR, description VARCHAR, creation_time BIGINT, last_updated_time BIGINT,
            tags JSON, aliases JSON, {_VERSIONED})""",
        f"""CREATE TABLE model_aliases (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, alias VARCHAR NOT NULL,
            version VARCHAR NOT NULL, {_VERSIONED})""",
        f"""CREATE TABLE model_origins (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
            read_status VARCHAR NOT NULL,       -- ok | missing | unreadable
            origin_run_id VARCHAR, origin_model_uuid VARCHAR, origin_model_id VARCHAR,
            artifact_path VARCHAR, created_utc VARCHAR, flavors JSON, detail VARCHAR, {_VERSIONED})""",
    ] + [
        f"CREATE INDEX {t}_current_idx ON {t}(source, valid_to)"
        for t in ("experiments", "runs", "run_inputs", "logged_models", "registered_models",
                  "model_versions", "model_aliases", "model_origins")
    ]),
    (2, "checklist: manual status history", [
        # Append-only: one row per edit on the Checklist page; the latest row per asset is current.
        # asset_key is a workload's asset key ("experiment:<source>:<id>") or "step:<id>".
        "CREATE SEQUENCE checklist_entry_seq START 1",
        """CREATE TABLE checklist_status_log (
            entry_id BIGINT PRIMARY KEY DEFAULT nextval('checklist_entry_seq'),
            asset_key VARCHAR NOT NULL,
            status VARCHAR,                     -- not_started | in_progress | blocked | done | stays; NULL = from evidence
            owner VARCHAR, due DATE, notes VARCHAR,
            kind_override VARCHAR,              -- a decision-matrix kind replacing the rule's; NULL = rule
            who VARCHAR NOT NULL, who_verified BOOLEAN NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL)""",
        "CREATE INDEX checklist_status_log_key_idx ON checklist_status_log(asset_key, entry_id)",
    ]),
    (3, "gates: hash-chained review log", [
        # Append-only review log (gates/reviews.py). entry_hash = sha256 over the canonical JSON of
        # every other column (prev_hash included), so editing or deleting an entry breaks the chain;
        # gate_review_head holds the count and head hash, so a truncated tail is detected too.
        """CREATE TABLE gate_review_log (
            entry_id BIGINT PRIMARY KEY,          -- 1, 2, 3… with no holes
            recorded_at VARCHAR NOT NULL,         -- UTC ISO time, exactly as hashed
            kind VARCHAR NOT NULL,                -- review | writeback_attempt | writeback_result
            source VARCHAR NOT NULL, platform VARCHAR NOT NULL, model_name VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            decision VARCHAR NOT NULL,            -- approve | reject | request_changes | attempted | succeeded | failed
            reviewer VARCHAR NOT NULL, reviewer_verified BOOLEAN NOT NULL, identity_source VARCHAR NOT NULL,
            note VARCHAR NOT NULL,
            gate_status VARCHAR,                  -- PASS | FAIL as the reviewer saw it
            gate_result VARCHAR,                  -- canonical JSON of the gate result
            snapshot_ids VARCHAR NOT NULL,        -- canonical JSON {source: snapshot_id} the result was read at
            ref_entry BIGINT,                     -- write-back entries: the approval they act on
            prev_hash VARCHAR NOT NULL, entry_hash VARCHAR NOT NULL)""",
        "CREATE INDEX gate_review_log_model_idx ON gate_review_log(model_name, version)",
        """CREATE TABLE gate_review_head (
            id INTEGER PRIMARY KEY, entries BIGINT NOT NULL, head_hash VARCHAR NOT NULL)""",
    ]),
    (4, "databricks: Unity Catalog, lineage, features, serving, vector search, job runs", [
        # UC registered models/versions/aliases go into registered_models/model_versions/model_aliases
        # (source = the databricks source); these tables hold what only Databricks knows.
        f"""CREATE TABLE uc_models (
            source VARCHAR NOT NULL, full_name VARCHAR NOT NULL, catalog_name VARCHAR, schema_name VARCHAR,
            owner VARCHAR, storage_location VARCHAR, created_by VARCHAR, updated_by VARCHAR,
            read_status VARCHAR, detail VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE uc_model_versions (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
            run_workspace_id BIGINT, storage_location VARCHAR, created_by VARCHAR, updated_by VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE model_version_dependencies (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, version VARCHAR NOT NULL,
            dependency_type VARCHAR NOT NULL,   -- table | function | connection | credential
            dependency_name VARCHAR NOT NULL, {_VERSIONED})""",
        f"""CREATE TABLE uc_tables (
            source VARCHAR NOT NULL, full_name VARCHAR NOT NULL, catalog_name VARCHAR, schema_name VARCHAR,
            table_type VARCHAR, data_source_format VARCHAR, storage_location VARCHAR, owner VARCHAR,
            table_id VARCHAR, created_at BIGINT, updated_at BIGINT, comment VARCHAR,
            reasons JSON,                       -- why collected: run_input, model_dependency, feature_source, ...
            read_status VARCHAR, detail VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE table_lineage (
            source VARCHAR NOT NULL, upstream VARCHAR NOT NULL, downstream VARCHAR NOT NULL,
            upstream_kind VARCHAR,              -- table | file
            upstream_table_type VARCHAR, lineage_timestamp VARCHAR,
            job_ids JSON, notebook_ids JSON, pipeline_ids JSON, depth INTEGER, {_VERSIONED})""",
        f"""CREATE TABLE features (
            source VARCHAR NOT NULL, full_name VARCHAR NOT NULL, catalog_name VARCHAR, schema_name VARCHAR,
            name VARCHAR, source_table VARCHAR, entity_columns JSON, timeseries_column VARCHAR, inputs JSON,
            function JSON, time_window JSON, description VARCHAR, created_by VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE feature_lineage (
            source VARCHAR NOT NULL, feature VARCHAR NOT NULL,
            target_kind VARCHAR NOT NULL,       -- model | feature_spec | online_feature
            target_name VARCHAR NOT NULL, target_version VARCHAR NOT NULL,   -- '' when not a model
            source_table VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE serving_endpoints (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, endpoint_id VARCHAR,
            ready VARCHAR, config_update VARCHAR, config_version BIGINT, pending_config_version BIGINT,
            creator VARCHAR, creation_timestamp BIGINT, last_updated_timestamp BIGINT, task VARCHAR,
            tags JSON, inference_table JSON, endpoint_url VARCHAR,
            read_status VARCHAR, detail VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE served_entities (
            source VARCHAR NOT NULL, endpoint VARCHAR NOT NULL,
            config VARCHAR NOT NULL,            -- active | pending (an update in progress)
            served_entity_name VARCHAR NOT NULL, entity_name VARCHAR, entity_version VARCHAR,
            workload_size VARCHAR, workload_type VARCHAR, scale_to_zero_enabled BOOLEAN,
            deployment_state VARCHAR, deployment_state_message VARCHAR,
            traffic_pct DOUBLE,                 -- NULL: the config has no traffic routes
            external BOOLEAN, {_VERSIONED})""",
        # Append-only samples: keys include sampled_at, so every pass adds rows and none is closed.
        f"""CREATE TABLE endpoint_metrics (
            source VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, metric VARCHAR NOT NULL,
            labels VARCHAR NOT NULL,            -- canonical JSON of the Prometheus labels
            sampled_at BIGINT NOT NULL,         -- epoch ms
            value DOUBLE, {_VERSIONED})""",
        f"""CREATE TABLE vector_search_endpoints (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, endpoint_id VARCHAR, endpoint_type VARCHAR,
            endpoint_status VARCHAR, num_indexes BIGINT, creator VARCHAR, creation_timestamp BIGINT,
            last_updated_timestamp BIGINT, {_VERSIONED})""",
        f"""CREATE TABLE vector_indexes (
            source VARCHAR NOT NULL, name VARCHAR NOT NULL, endpoint_name VARCHAR, index_type VARCHAR,
            primary_key VARCHAR, source_table VARCHAR, embedding_source_columns JSON,
            embedding_model_endpoints JSON, pipeline_id VARCHAR, ready BOOLEAN, indexed_row_count BIGINT,
            status_message VARCHAR, creator VARCHAR, read_status VARCHAR, detail VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE job_runs (
            source VARCHAR NOT NULL, job_run_id VARCHAR NOT NULL, job_id BIGINT, run_name VARCHAR,
            life_cycle_state VARCHAR, result_state VARCHAR, state_message VARCHAR,
            start_time BIGINT, end_time BIGINT, creator_user_name VARCHAR, run_page_url VARCHAR,
            git_url VARCHAR, git_provider VARCHAR, git_branch VARCHAR, git_tag VARCHAR, git_commit VARCHAR,
            git_used_commit VARCHAR, read_status VARCHAR, detail VARCHAR, {_VERSIONED})""",
    ] + [
        f"CREATE INDEX {t}_current_idx ON {t}(source, valid_to)"
        for t in ("uc_models", "uc_model_versions", "model_version_dependencies", "uc_tables", "table_lineage",
                  "features", "feature_lineage", "serving_endpoints", "served_entities", "endpoint_metrics",
                  "vector_search_endpoints", "vector_indexes", "job_runs")
    ]),
    (5, "azure: Azure ML endpoints/deployments, Fabric items/tables/shortcuts, AI Search indexes", [
        # Azure ML workspace models go into registered_models/model_versions (source = the azureml
        # source); endpoint health samples go into endpoint_metrics (labels {"deployment": …}).
        f"""CREATE TABLE aml_endpoints (
            source VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, resource_id VARCHAR, location VARCHAR,
            kind VARCHAR, auth_mode VARCHAR, provisioning_state VARCHAR, scoring_uri VARCHAR,
            traffic JSON, mirror_traffic JSON,  -- deployment -> percent
            public_network_access VARCHAR, tags JSON, created_at VARCHAR, modified_at VARCHAR, {_VERSIONED})""",
        f"""CREATE TABLE aml_deployments (
            source VARCHAR NOT NULL, endpoint VARCHAR NOT NULL, deployment VARCHAR NOT NULL,
            resource_id VARCHAR, provisioning_state VARCHAR, compute_type VARCHAR, instance_type VARCHAR,
            instance_count BIGINT, scale_type VARCHAR,
            model_ref VARCHAR,                  -- raw: ARM id | azureml://registries/… | azureml:name:version
            model_ref_format VARCHAR,           -- workspace | workspace_uri | registry | short | unparsed
            model_name VARCHAR, model_version VARCHAR, model_registry VARCHAR,
            environment_id VARCHAR, app_insights_enabled BOOLEAN, tags JSON, {_VERSIONED})""",
        f"""CREATE TABLE fabric_items (
            source VARCHAR NOT NULL, item_id VARCHAR NOT NULL, workspace_id VARCHAR,
            item_type VARCHAR,                  -- MLModel | MLExperiment | Lakehouse
            display_name VARCHAR, description VARCHAR, folder_id VARCHAR,
            mlflow_experiment_id VARCHAR,       -- MLExperiment properties.mlFlowExperimentId
            schema_enabled BOOLEAN,             -- Lakehouse with properties.defaultSchema
            properties JSON, tags JSON,
            listed_via VARCHAR,                 -- typed (mlModels, …) | items (the SP-friendly fallback)
            {_VERSIONED})""",
        f"""CREATE TABLE fabric_tables (
            source VARCHAR NOT NULL, lakehouse_id VARCHAR NOT NULL, schema_name VARCHAR NOT NULL,
            table_name VARCHAR NOT NULL, table_type VARCHAR, format VARCHAR, location VARCHAR,
            listed_via VARCHAR,                 -- tables_api | onelake_table_api (schema-enabled lakehouses)
            {_VERSIONED})""",
        f"""CREATE TABLE fabric_shortcuts (
            source VARCHAR NOT NULL, item_id VARCHAR NOT NULL, path VARCHAR NOT NULL, name VARCHAR NOT NULL,
            target_type VARCHAR,                -- OneLake | AdlsGen2 | AmazonS3 | …
            target_location VARCHAR,            -- normalised abfss:// / https:// URL of the target, when known
            onelake_path VARCHAR,               -- abfss:// path of the shortcut itself in OneLake
            target JSON, {_VERSIONED})""",
        f"""CREATE TABLE search_indexes (
            source VARCHAR NOT NULL, index_name VARCHAR NOT NULL, key_field VARCHAR,
            fields JSON, vector_fields JSON,    -- list of name, dimensions, profile, algorithm, algorithm_kind, metric
            document_count BIGINT, storage_size BIGINT, vector_index_size BIGINT,
            indexers JSON,                      -- list of name, data_source, data_source_type, container, status
            read_status VARCHAR, detail VARCHAR, {_VERSIONED})""",
    ] + [
        f"CREATE INDEX {t}_current_idx ON {t}(source, valid_to)"
        for t in ("aml_endpoints", "aml_deployments", "fabric_items", "fabric_tables", "fabric_shortcuts",
                  "search_indexes")
    ]),
    (6, "snapshots: why a pass was full", [
        # NULL for an incremental pass; requested (--full) | scheduled (full_every_hours elapsed) |
        # no_previous_state (first pass, or a kind without incremental passes). Older full passes: unknown.
        "ALTER TABLE snapshots ADD COLUMN full_reason VARCHAR",
        "UPDATE snapshots SET full_reason = 'unknown' WHERE mode = 'full'",
    ]),
]


# Tables whose id a sequence gives on the DuckDB file: (id column, sequence). Writers take the next
# id through `Store.next_id`, because DuckLake has no sequences.
ID_COLUMNS: dict[str, tuple[str, str]] = {
    "snapshots": ("snapshot_id", "snapshot_id_seq"),
    "checklist_status_log": ("entry_id", "checklist_entry_seq"),
}

_DUCKLAKE_DROPPED = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?(INDEX|SEQUENCE)\b", re.IGNORECASE)
_DUCKLAKE_PRIMARY_KEY = re.compile(r"\s+PRIMARY\s+KEY\b", re.IGNORECASE)
_DUCKLAKE_DEFAULT_SEQ = re.compile(r"\s+DEFAULT\s+nextval\('[A-Za-z_][A-Za-z0-9_]*'\)", re.IGNORECASE)


def ducklake_statements(statements: list[str]) -> list[str]:
    """The same migration for DuckLake, which has no indexes, sequences or key constraints: those
    statements are left out and those clauses removed (ids come from `Store.next_id`; DuckLake
    prunes by file statistics instead of indexes). A key column stays NOT NULL, so columns, types
    and nullability are the same on both backends."""
    return [_DUCKLAKE_DEFAULT_SEQ.sub("", _DUCKLAKE_PRIMARY_KEY.sub(" NOT NULL", s))
            for s in statements if not _DUCKLAKE_DROPPED.match(s)]
