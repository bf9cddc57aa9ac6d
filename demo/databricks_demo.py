"""The demo's Databricks workspace side: a stub workspace (demo/databricks_stub.py) whose Unity
Catalog model versions point at the real runs of the demo's Databricks MLflow store.

It holds a UC model registered from the same training runs, served by an endpoint with a 90/10
traffic split and by one caught mid-update, UC table lineage, features with feature → model
lineage, a vector index and the job runs (with git source) behind the runs.

The fixture is a JSON file next to the demo config (`databricks/stub-workspace.json`); the demo
config's `databricks` source has no host, so unified auth reads DATABRICKS_HOST / DATABRICKS_TOKEN
from the environment. Whoever snapshots the demo (the builder, the app's "Snapshot now") starts
the stub on a free port and passes those two variables (`stub_env`).
"""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from collectors.environment import temporary_env
from demo.databricks_stub import DatabricksStub, prometheus_text
from demo.layout import DATABRICKS_FIXTURE

SOURCE_NAME = "dbx-uc"
FIXTURE = DATABRICKS_FIXTURE
DEMO_TOKEN = "dapi-demo-stub"          # the stub's own token: not a secret, it guards nothing real
UC_MODEL = "churn.ml.churn_gbm"
# Demo run name → UC version number (registered in training order).
UC_VERSIONS = {"gbm-baseline": 1, "gbm-tuned-depth": 2, "gbm-new-features": 3, "gbm-retrain-nov": 4}

CONFIG_BLOCK = (f"\n[[sources]]\nname = \"{SOURCE_NAME}\"\nkind = \"databricks\"\nplatform = \"databricks\"\n"
                "# No host: Databricks unified auth reads DATABRICKS_HOST/DATABRICKS_TOKEN (the demo stub's).\n"
                "catalogs = [\"churn\"]\nschemas = [\"churn.gold\"]\nretry_timeout_seconds = 10\n"
                "http_timeout_seconds = 10\n")


def table_fixture(full_name: str, table_type: str = "MANAGED", owner: str = "data-eng") -> dict[str, Any]:
    catalog, schema, name = full_name.split(".")
    return {"full_name": full_name, "name": name, "catalog_name": catalog, "schema_name": schema,
            "table_type": table_type, "data_source_format": "DELTA", "owner": owner,
            "storage_location": f"abfss://lake@churnadls.dfs.core.windows.net/{catalog}/{schema}/{name}",
            "table_id": f"tbl-{name}", "created_at": 1_690_000_000_000, "updated_at": 1_700_000_000_000}


def _served(name: str, version: int, size: str = "Small", state: str = "DEPLOYMENT_READY") -> dict[str, Any]:
    return {"name": name, "entity_name": UC_MODEL, "entity_version": str(version), "workload_size": size,
            "workload_type": "CPU", "scale_to_zero_enabled": size == "Small",
            "state": {"deployment": state, "deployment_state_message": "" if state.endswith("READY") else
                      "Creating the serving container"}, "creator": "churn-ci@contoso.com"}


def build_fixture(runs: dict[str, dict[str, Any]], shas: dict[str, str | None], now_ms: int) -> dict[str, Any]:
    """`runs`: run name → {run_id, start_time, end_time, job_run_id}; `shas`: run name → git SHA."""
    day = 86_400_000
    versions, job_runs = [], []
    for run_name, v in UC_VERSIONS.items():
        r = runs[run_name]
        versions.append({
            "model_name": "churn_gbm", "catalog_name": "churn", "schema_name": "ml", "version": v,
            "run_id": r["run_id"], "run_workspace_id": 4455667788,
            "source": f"dbfs:/databricks/mlflow-tracking/1/{r['run_id']}/artifacts/churn-gbm",
            "storage_location": f"abfss://uc@churnadls.dfs.core.windows.net/models/churn_gbm/v{v}",
            "status": "READY", "created_at": r["start_time"] + 1_000_000, "updated_at": r["start_time"] + 1_000_000,
            "created_by": "churn-ci@contoso.com", "comment": f"registered from {run_name}",
            "model_version_dependencies": {"dependencies": [
                {"table": {"table_full_name": "churn.gold.features"}},
                {"table": {"table_full_name": "churn.gold.holdout"}},
                {"function": {"function_full_name": "churn.gold.tenure_bucket"}}]}})
    for run_name, r in runs.items():
        if not r.get("job_run_id"):
            continue
        finished = r.get("end_time") is not None
        git: dict[str, Any] = {"git_url": "https://github.com/contoso/churn-pipeline", "git_provider": "gitHub",
                               "git_branch": "main"}
        if shas.get(run_name):
            git["git_snapshot"] = {"used_commit": shas[run_name]}
        job_runs.append({
            "run_id": int(r["job_run_id"]), "job_id": 5150, "run_name": "churn-training-prod",
            "start_time": r["start_time"] - 60_000, "end_time": (r["end_time"] + 60_000) if finished else 0,
            "creator_user_name": "churn-ci@contoso.com",
            "run_page_url": f"https://adb-4455667788.7.azuredatabricks.net/#job/5150/run/{r['job_run_id']}",
            "state": ({"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""} if finished
                      else {"life_cycle_state": "RUNNING", "state_message": "In run"}),
            "git_source": git})
    bronze, silver = "churn.bronze.events", "churn.silver.customer_events"
    return {
        "workspace_id": "4455667788",
        "registered_models": [{
            "full_name": UC_MODEL, "name": "churn_gbm", "catalog_name": "churn", "schema_name": "ml",
            "owner": "churn-team", "comment": "Gradient-boosted churn classifier (Unity Catalog)",
            "storage_location": "abfss://uc@churnadls.dfs.core.windows.net/models/churn_gbm",
            "created_at": now_ms - 60 * day, "updated_at": now_ms - 3 * day, "created_by": "churn-ci@contoso.com",
            "aliases": [{"alias_name": "champion", "version_num": 4, "catalog_name": "churn", "schema_name": "ml",
                         "model_name": "churn_gbm"},
                        {"alias_name": "previous", "version_num": 2, "catalog_name": "churn", "schema_name": "ml",
                         "model_name": "churn_gbm"}]}],
        "model_versions": {UC_MODEL: versions},
        "tables": [table_fixture("churn.gold.features"), table_fixture("churn.gold.holdout"), table_fixture("churn.gold.support_tickets"),
                   table_fixture("churn.gold.churn_scores_v", "VIEW"), table_fixture(silver), table_fixture(bronze, "EXTERNAL", "ingest")],
        "lineage": {
            "churn.gold.features": [{"table": silver, "lineage_timestamp": "2024-11-20 06:00:00.0",
                                     "jobInfos": [{"workspace_id": 4455667788, "job_id": 5101}]}],
            "churn.gold.holdout": [{"table": silver, "jobInfos": [{"workspace_id": 4455667788, "job_id": 5101}]}],
            silver: [{"table": bronze, "notebookInfos": [{"workspace_id": 4455667788, "notebook_id": 880}]}],
            bronze: [{"file": "abfss://landing@churnadls.dfs.core.windows.net/events/"}],
        },
        "features": [
            {"full_name": f"churn.gold.{name}", "catalog_name": "churn", "schema_name": "gold", "name": name,
             "inputs": [name], "description": desc, "created_by": "data-eng@contoso.com",
             "source": {"delta_table_source": {"full_name": "churn.gold.features", "entity_columns": ["customer_id"],
                                               "timeseries_column": "snapshot_date"}}}
            for name, desc in (("tenure_days", "days since the customer signed up"),
                               ("monthly_charges", "average monthly charges over 3 months"))],
        # Both features are materialized into an offline feature table; feature lineage is asked of it.
        "materialized_features": [
            {"materialized_feature_id": f"mf-{name}", "feature_name": f"churn.gold.{name}",
             "table_name": "churn.gold.churn_features_offline", "is_online": False,
             "last_materialization_time": "2024-11-20T06:30:00Z"} for name in ("tenure_days", "monthly_charges")],
        "feature_lineage": {
            "churn.gold.churn_features_offline|tenure_days": {
                "models": [{"name": UC_MODEL, "version": v} for v in (1, 2, 3, 4)]},
            "churn.gold.churn_features_offline|monthly_charges": {
                "models": [{"name": UC_MODEL, "version": v} for v in (3, 4)],
                "feature_specs": [{"name": "churn.ml.churn_spec"}]},
        },
        "serving_endpoints": [
            {"name": "churn-scoring", "id": "ep-churn-scoring", "creator": "churn-ci@contoso.com",
             "creation_timestamp": now_ms - 50 * day, "last_updated_timestamp": now_ms - 3 * day,
             "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
             "tags": [{"key": "team", "value": "churn"}, {"key": "migration", "value": "to-azureml"}],
             "endpoint_url": "https://adb-4455667788.7.azuredatabricks.net/serving-endpoints/churn-scoring/invocations",
             "config": {"config_version": 7,
                        "served_entities": [_served("churn_gbm-4", 4), _served("churn_gbm-2", 2)],
                        "traffic_config": {"routes": [{"served_entity_name": "churn_gbm-4", "traffic_percentage": 90},
                                                      {"served_entity_name": "churn_gbm-2", "traffic_percentage": 10}]},
                        "auto_capture_config": {"catalog_name": "churn", "schema_name": "monitoring",
                                                "table_name_prefix": "churn_scoring", "enabled": True}}},
            {"name": "churn-batch-shadow", "id": "ep-churn-shadow", "creator": "churn-ci@contoso.com",
             "creation_timestamp": now_ms - 20 * day, "last_updated_timestamp": now_ms - 3_600_000,
             "state": {"ready": "READY", "config_update": "IN_PROGRESS"},
             "config": {"config_version": 2, "served_entities": [_served("churn_gbm-2", 2)],
                        "traffic_config": {"routes": [{"served_entity_name": "churn_gbm-2", "traffic_percentage": 100}]}},
             "pending_config": {"config_version": 3, "start_time": now_ms - 3_600_000,
                                "served_entities": [_served("churn_gbm-4", 4, "Medium", "DEPLOYMENT_CREATING")],
                                "traffic_config": {"routes": [{"served_entity_name": "churn_gbm-4",
                                                               "traffic_percentage": 100}]}}},
            {"name": "bge-embeddings", "id": "ep-bge", "creator": "platform@contoso.com",
             "creation_timestamp": now_ms - 40 * day, "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
             "config": {"config_version": 1, "served_entities": [
                 {"name": "bge-large", "foundation_model": {"name": "databricks-bge-large-en"},
                  "state": {"deployment": "DEPLOYMENT_READY"}}]}},
        ],
        "metrics": {
            # Per-minute readings, as the export serves them.
            "churn-scoring": prometheus_text("churn-scoring", ["churn_gbm-4", "churn_gbm-2"], requests=240,
                                             errors=1, latency_ms=38.0, cpu=31.0),
            "churn-batch-shadow": prometheus_text("churn-batch-shadow", ["churn_gbm-2"], requests=35,
                                                  latency_ms=55.0, cpu=9.5),
        },
        "vector_search_endpoints": [{"name": "churn-vs", "id": "vse-churn", "endpoint_type": "STANDARD",
                                     "endpoint_status": {"state": "ONLINE"}, "num_indexes": 1,
                                     "creator": "platform@contoso.com", "creation_timestamp": now_ms - 30 * day}],
        "vector_indexes": [{"name": "churn.gold.support_tickets_index", "endpoint_name": "churn-vs",
                            "index_type": "DELTA_SYNC", "primary_key": "ticket_id", "creator": "platform@contoso.com",
                            "delta_sync_index_spec": {"source_table": "churn.gold.support_tickets",
                                                      "pipeline_id": "pl-tickets-sync",
                                                      "embedding_source_columns": [
                                                          {"name": "body", "embedding_model_endpoint_name": "bge-embeddings"}]},
                            "status": {"ready": True, "indexed_row_count": 48_213, "message": "Index is ready"}}],
        "job_runs": job_runs,
    }


def write_fixture(root: Path, dbx_client, experiment_id: str, shas: dict[str, str | None], now_ms: int) -> Path:
    """Read the demo's Databricks MLflow runs and write the stub fixture next to the demo config."""
    runs = {}
    for run in dbx_client.search_runs([experiment_id], max_results=1000):
        runs[run.info.run_name] = {"run_id": run.info.run_id, "start_time": run.info.start_time,
                                   "end_time": run.info.end_time,
                                   "job_run_id": run.data.tags.get("mlflow.databricks.jobRunID")}
    path = root / FIXTURE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_fixture(runs, shas, now_ms), indent=1), encoding="utf-8")
    return path


_running: dict[Path, DatabricksStub] = {}
_lock = threading.Lock()


def stub_env(config_path: Path) -> dict[str, str]:
    """DATABRICKS_HOST/TOKEN for a demo config whose folder holds the stub fixture; {} otherwise.

    The stub is started once per process (a daemon thread on a free port) and reused.
    """
    fixture = (Path(config_path).parent / FIXTURE).resolve()
    if not fixture.is_file():
        return {}
    with _lock:
        stub = _running.get(fixture)
        if stub is None:
            stub = DatabricksStub.from_file(fixture, token=DEMO_TOKEN).start()
            _running[fixture] = stub
    return {"DATABRICKS_HOST": stub.url, "DATABRICKS_TOKEN": DEMO_TOKEN}


def stub_environment(config_path: Path) -> contextlib.AbstractContextManager:
    """Set the stub's env vars in this process for the duration (the demo build snapshots in-process)."""
    return temporary_env(stub_env(config_path))
