"""Ordered, recorded schema migrations. Append only: never edit a migration that has shipped.

History model: every entity table is versioned per snapshot (slowly-changing, type 2). A row is
valid from the snapshot that first saw it (`valid_from`) until the snapshot that saw it change or
disappear (`valid_to`, NULL while current). Snapshot ids grow monotonically across all sources,
so "as of snapshot S" is `valid_from <= S AND (valid_to IS NULL OR valid_to > S)`.
A failed pass writes only its `snapshots` row, never entity rows.
"""
from __future__ import annotations

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
]
