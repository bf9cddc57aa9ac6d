"""A Databricks workspace for the stub (demo/databricks_stub.py), and how the tests snapshot it.

The stub speaks the REST shapes of platform-apis.md §1; the workspace below uses only documented
fields (UC RegisteredModelInfo / ModelVersionInfo / TableInfo, serving ServingEndpointDetailed,
FeatureLineage, VectorIndex, jobs Run). Used by the test_collector_databricks*.py files and others."""
from __future__ import annotations

from pathlib import Path

import pytest

from collectors.config import load_config
from collectors.runner import snapshot_all
from demo.databricks_stub import DatabricksStub, prometheus_text
from store.db import Store
from store.queries import entity_as_of
from tests.conftest import write_config


TOKEN = "dapi-test-0123456789abcdef"
MODEL = "main.churn.churn_gbm"
OTHER = "main.churn.other_model"
SECRET_MODEL = "secret.hr.attrition"
FEATURES = "main.churn.features"
RAW = "main.bronze.events"
CUSTOMERS = "main.bronze.customers"
OFFLINE = "main.churn.features_offline"
T0 = 1_700_000_000_000


def version_fixture(name: str, v: int, run_id: str, deps: list[dict] | None = None, status: str = "READY") -> dict:
    catalog, schema, model = name.split(".")
    out = {"model_name": model, "catalog_name": catalog, "schema_name": schema, "version": v, "run_id": run_id,
           "run_workspace_id": 1234567890, "source": f"dbfs:/databricks/mlflow-tracking/1/{run_id}/artifacts/model",
           "storage_location": f"s3://uc/models/{model}/v{v}", "status": status, "created_at": T0 + v * 1000,
           "created_by": "ci@example.com", "updated_at": T0 + v * 1000, "comment": f"v{v}", "id": f"mv-{model}-{v}"}
    if deps:
        out["model_version_dependencies"] = {"dependencies": deps}
    return out


def _model(name: str, aliases: dict[str, int]) -> dict:
    catalog, schema, model = name.split(".")
    return {"full_name": name, "name": model, "catalog_name": catalog, "schema_name": schema, "owner": "churn-team",
            "comment": "churn classifier", "storage_location": f"s3://uc/models/{model}", "created_at": T0,
            "updated_at": T0 + 5000, "created_by": "ci@example.com", "metastore_id": "ms-1",
            "aliases": [{"alias_name": a, "version_num": v, "catalog_name": catalog, "schema_name": schema,
                         "model_name": model} for a, v in aliases.items()]}


def table_fixture(full_name: str, table_type: str = "MANAGED") -> dict:
    catalog, schema, name = full_name.split(".")
    return {"full_name": full_name, "name": name, "catalog_name": catalog, "schema_name": schema,
            "table_type": table_type, "data_source_format": "DELTA", "owner": "data-eng",
            "storage_location": f"s3://lake/{catalog}/{schema}/{name}", "table_id": f"tid-{name}",
            "created_at": T0, "updated_at": T0 + 1}


def feature_table_fixture(full_name: str) -> dict:
    """A classic UC feature table: a Delta table with a primary key (customer_id, timeseries ts)."""
    cols = [("customer_id", "STRING"), ("ts", "TIMESTAMP"), ("monthly_charges", "DOUBLE")]
    return {**table_fixture(full_name),
            "columns": [{"name": n, "type_name": t, "type_text": t.lower(), "position": i, "nullable": i > 0}
                        for i, (n, t) in enumerate(cols)],
            "table_constraints": [{"primary_key_constraint": {"name": "features_pk", "child_columns": ["customer_id", "ts"],
                                                              "timeseries_columns": ["ts"]}}]}


def _served(name: str, entity: str, version: str, state: str = "DEPLOYMENT_READY", size: str = "Small") -> dict:
    return {"name": name, "entity_name": entity, "entity_version": version, "workload_size": size,
            "workload_type": "CPU", "scale_to_zero_enabled": True,
            "state": {"deployment": state, "deployment_state_message": ""}, "creator": "ci@example.com"}


def base_workspace() -> dict:
    deps = [{"table": {"table_full_name": FEATURES}}, {"function": {"function_full_name": "main.churn.score_fn"}}]
    return {
        "workspace_id": "1234567890",
        "registered_models": [_model(MODEL, {"champion": 2, "challenger": 3}), _model(OTHER, {}),
                              _model(SECRET_MODEL, {"prod": 1})],
        "model_versions": {
            MODEL: [version_fixture(MODEL, 1, "run-1"), version_fixture(MODEL, 2, "run-2", deps),
                    version_fixture(MODEL, 3, "run-3", deps)],
            OTHER: [version_fixture(OTHER, 1, "run-o1", status="FAILED_REGISTRATION")],
            SECRET_MODEL: [version_fixture(SECRET_MODEL, 1, "run-s1")],
        },
        "tables": [feature_table_fixture(FEATURES), table_fixture(RAW), table_fixture(CUSTOMERS), table_fixture("main.churn.scores_view", "VIEW"),
                   table_fixture("main.churn.docs")],
        "lineage": {FEATURES: [{"table": RAW, "lineage_timestamp": "2024-01-01 00:00:00.0",
                                "jobInfos": [{"workspace_id": 1234567890, "job_id": 77}]},
                               {"table": CUSTOMERS}],
                    RAW: [{"file": "s3://landing/events/"}]},
        "features": [{"full_name": "main.churn.tenure_days", "catalog_name": "main", "schema_name": "churn",
                      "name": "tenure_days", "inputs": ["tenure_days"], "description": "days as customer",
                      "source": {"delta_table_source": {"full_name": FEATURES, "entity_columns": ["customer_id"],
                                                        "timeseries_column": "ts"}},
                      "function": {"function_type": "AVG"}}],
        # The declarative feature is materialized into an offline table; lineage is asked of that
        # feature table. FEATURES is also a classic feature table (primary key below).
        "materialized_features": [{"materialized_feature_id": "mf-1", "feature_name": "main.churn.tenure_days",
                                   "table_name": OFFLINE, "is_online": False}],
        "feature_lineage": {f"{OFFLINE}|tenure_days": {"models": [{"name": MODEL, "version": 2},
                                                                  {"name": MODEL, "version": 3}],
                                                       "feature_specs": [{"name": "main.churn.spec_v1"}]},
                            f"{FEATURES}|monthly_charges": {"models": [{"name": MODEL, "version": 3}]}},
        "serving_endpoints": [
            {"name": "churn-endpoint", "id": "ep-1", "creator": "ci@example.com", "creation_timestamp": T0,
             "last_updated_timestamp": T0 + 10,
             "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
             "tags": [{"key": "team", "value": "churn"}],
             "config": {"config_version": 4,
                        "served_entities": [_served("churn-2", MODEL, "2"), _served("churn-3", MODEL, "3")],
                        "traffic_config": {"routes": [{"served_entity_name": "churn-2", "traffic_percentage": 90},
                                                      {"served_entity_name": "churn-3", "traffic_percentage": 10}]},
                        "auto_capture_config": {"catalog_name": "main", "schema_name": "churn",
                                                "table_name_prefix": "churn_endpoint", "enabled": True}}},
            {"name": "churn-updating", "id": "ep-2", "creator": "ci@example.com", "creation_timestamp": T0,
             "state": {"ready": "READY", "config_update": "IN_PROGRESS"},
             "config": {"config_version": 1, "served_entities": [_served("churn-1", MODEL, "1")],
                        "traffic_config": {"routes": [{"served_entity_name": "churn-1", "traffic_percentage": 100}]}},
             "pending_config": {"config_version": 2, "start_time": T0 + 20,
                                "served_entities": [_served("churn-3", MODEL, "3", state="DEPLOYMENT_CREATING",
                                                            size="Medium")],
                                "traffic_config": {"routes": [{"served_entity_name": "churn-3",
                                                               "traffic_percentage": 100}]}},
             "ai_gateway": {"inference_table_config": {"catalog_name": "main", "schema_name": "logs",
                                                       "table_name_prefix": "upd", "enabled": True}}},
            {"name": "bge-embeddings", "id": "ep-3", "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
             "config": {"config_version": 1,
                        "served_entities": [{"name": "bge", "foundation_model": {"name": "databricks-bge-large-en"},
                                             "state": {"deployment": "DEPLOYMENT_READY"}}]}},
        ],
        "metrics": {"churn-endpoint": prometheus_text("churn-endpoint", ["churn-2", "churn-3"], requests=1000,
                                                      errors=3)},
        "vector_search_endpoints": [{"name": "vs-1", "id": "vse-1", "endpoint_type": "STANDARD",
                                     "endpoint_status": {"state": "ONLINE"}, "num_indexes": 1,
                                     "creator": "ci@example.com", "creation_timestamp": T0}],
        "vector_indexes": [{"name": "main.churn.docs_index", "endpoint_name": "vs-1", "index_type": "DELTA_SYNC",
                            "primary_key": "id", "creator": "ci@example.com",
                            "delta_sync_index_spec": {"source_table": "main.churn.docs", "pipeline_id": "pl-1",
                                                      "embedding_source_columns": [
                                                          {"name": "text", "embedding_model_endpoint_name": "bge-embeddings"}]},
                            "status": {"ready": True, "indexed_row_count": 1200, "message": "ok"}}],
        "job_runs": [{"run_id": 900001, "job_id": 55, "run_name": "churn-training", "start_time": T0,
                      "end_time": T0 + 60_000, "creator_user_name": "ci@example.com",
                      "run_page_url": "https://example/#job/55/run/900001",
                      "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
                      "git_source": {"git_url": "https://github.com/acme/churn", "git_provider": "gitHub",
                                     "git_branch": "main", "git_snapshot": {"used_commit": "a" * 40}}}],
    }


def dbx_source(url: str, **extra) -> dict:
    return {"name": "dbx-uc", "kind": "databricks", "platform": "databricks", "host": url, "auth_type": "pat",
            "retry_timeout_seconds": 10, "http_timeout_seconds": 10, **extra}


@pytest.fixture()
def token_env(monkeypatch):
    """Unified auth reads the PAT from the environment; the config file never holds it."""
    for k in ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE",
              "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)


def snapshot(tmp_path: Path, stub: DatabricksStub, name: str = "governance.toml", **extra):
    cfg = write_config(tmp_path / name, [dbx_source(stub.url, **extra)])
    config = load_config(cfg)
    outcome = snapshot_all(config)[0]
    return outcome, Store(config.store_path)


def rows(store: Store, table: str):
    return entity_as_of(store, table)
