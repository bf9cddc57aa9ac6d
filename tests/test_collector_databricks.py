"""The Databricks collector against a local stub workspace (tests/databricks_workspace.py), through the
real `WorkspaceClient`: every kind of item on the happy path, history over passes, job runs, configured
schemas and catalogs, the config's errors, and a UC version's MLmodel read through the registry.
Faults and partial reads: test_collector_databricks_faults.py."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from collectors.config import ConfigError, load_config
from demo.databricks_stub import DatabricksStub, Faults, prometheus_text
from store.db import Store
from store.queries import entity_as_of
from tests.conftest import write_config
from tests.databricks_workspace import (CUSTOMERS, FEATURES, MODEL, OFFLINE, OTHER, RAW, SECRET_MODEL, TOKEN,
                                        base_workspace, dbx_source, rows, snapshot, table_fixture)
from tests.databricks_workspace import token_env  # noqa: F401  (fixture; other test files import it from here)


# -- the happy path, with every kind of item --------------------------------------------------------
@pytest.fixture()
def collected(tmp_path, token_env):
    with DatabricksStub(base_workspace(), token=TOKEN) as stub:
        outcome, store = snapshot(tmp_path, stub)
        yield outcome, store, stub


def test_uc_models_versions_aliases_and_dependencies(collected):
    outcome, store, _ = collected
    assert outcome.ok, outcome.errors
    models = rows(store, "registered_models")
    assert set(models["name"]) == {MODEL, OTHER, SECRET_MODEL}
    versions = rows(store, "model_versions").set_index(["name", "version"])
    v2 = versions.loc[(MODEL, "2")]
    assert v2["run_id"] == "run-2" and v2["status"] == "READY" and v2["aliases"] == ["champion"]
    assert v2["source_uri"].endswith("/run-2/artifacts/model") and v2["model_id"] is None
    assert versions.loc[(OTHER, "1")]["status"] == "FAILED_REGISTRATION"
    aliases = {(r.name, r.alias): r.version for r in rows(store, "model_aliases").itertuples()}
    assert aliases == {(MODEL, "champion"): "2", (MODEL, "challenger"): "3", (SECRET_MODEL, "prod"): "1"}
    extra = rows(store, "uc_model_versions").set_index(["name", "version"])
    assert extra.loc[(MODEL, "2")]["run_workspace_id"] == 1234567890
    deps = {(r.version, r.dependency_type, r.dependency_name) for r in rows(store, "model_version_dependencies").itertuples()}
    assert deps == {("2", "table", FEATURES), ("2", "function", "main.churn.score_fn"),
                    ("3", "table", FEATURES), ("3", "function", "main.churn.score_fn")}
    assert rows(store, "uc_models").set_index("full_name").loc[MODEL]["owner"] == "churn-team"


def test_serving_endpoints_traffic_split_and_mid_update(collected):
    _, store, _ = collected
    eps = rows(store, "serving_endpoints").set_index("name")
    assert eps.loc["churn-endpoint"]["config_update"] == "NOT_UPDATING"
    assert eps.loc["churn-endpoint"]["tags"] == {"team": "churn"}
    assert eps.loc["churn-endpoint"]["inference_table"]["table_name_prefix"] == "churn_endpoint"
    assert eps.loc["churn-updating"]["config_update"] == "IN_PROGRESS"
    assert eps.loc["churn-updating"]["pending_config_version"] == 2
    assert eps.loc["churn-updating"]["inference_table"]["kind"] == "ai_gateway"
    se = rows(store, "served_entities")
    split = {(r.entity_name, r.entity_version): r.traffic_pct
             for r in se[(se.endpoint == "churn-endpoint") & (se.config == "active")].itertuples()}
    assert split == {(MODEL, "2"): 90, (MODEL, "3"): 10}   # one UC model served at two versions, 90/10
    one = se[(se.endpoint == "churn-endpoint") & (se.served_entity_name == "churn-2")].iloc[0]
    assert (one.workload_size, one.workload_type, bool(one.scale_to_zero_enabled), one.deployment_state) == \
        ("Small", "CPU", True, "DEPLOYMENT_READY")
    updating = {(r.config, r.entity_version, r.deployment_state, r.traffic_pct)
                for r in se[se.endpoint == "churn-updating"].itertuples()}
    assert updating == {("active", "1", "DEPLOYMENT_READY", 100), ("pending", "3", "DEPLOYMENT_CREATING", 100)}
    fm = se[se.endpoint == "bge-embeddings"].iloc[0]
    assert fm.entity_name == "databricks-bge-large-en" and bool(fm.external) and pd.isna(fm.entity_version)


def test_endpoint_metrics_are_parsed_samples(collected):
    _, store, _ = collected
    m = rows(store, "endpoint_metrics")
    assert set(m["endpoint"]) == {"churn-endpoint"}     # the other endpoints export nothing
    reqs = {json.loads(r.labels)["served_entity_name"]: r.value
            for r in m[m.metric == "request_count_total"].itertuples()}
    assert reqs == {"churn-2": 1000.0, "churn-3": 500.0}
    assert {"request_latency_ms_sum", "request_latency_ms_count", "request_latency_ms_bucket"} <= set(m["metric"])
    assert m["sampled_at"].notna().all()


def test_tables_lineage_features_vector_search(collected):
    _, store, _ = collected
    tables = rows(store, "uc_tables").set_index("full_name")
    # Referenced tables only (no schemas configured): dependency/feature source, lineage upstreams, index source.
    assert set(tables.index) == {FEATURES, RAW, CUSTOMERS, "main.churn.docs"}
    assert set(tables.loc[FEATURES]["reasons"]) == {"model_dependency", "feature_source"}
    assert tables.loc[RAW]["reasons"] == ["lineage_upstream"]
    assert tables.loc[FEATURES]["storage_location"] == "s3://lake/main/churn/features"
    assert tables.loc[FEATURES]["data_source_format"] == "DELTA" and tables.loc[FEATURES]["owner"] == "data-eng"
    lineage = {(r.upstream, r.downstream, r.upstream_kind, r.depth) for r in rows(store, "table_lineage").itertuples()}
    assert lineage == {(RAW, FEATURES, "table", 1), (CUSTOMERS, FEATURES, "table", 1),
                       ("s3://landing/events/", RAW, "file", 2)}
    job_edge = rows(store, "table_lineage").set_index("upstream").loc[RAW]
    assert job_edge["job_ids"] == ["77"]
    feats = rows(store, "features").set_index("full_name")
    assert feats.loc["main.churn.tenure_days"]["source_table"] == FEATURES
    links = {(r.feature, r.target_kind, r.target_name, r.target_version)
             for r in rows(store, "feature_lineage").itertuples()}
    assert links == {("main.churn.tenure_days", "model", MODEL, "2"), ("main.churn.tenure_days", "model", MODEL, "3"),
                     ("main.churn.tenure_days", "feature_spec", "main.churn.spec_v1", ""),
                     (f"{FEATURES}.monthly_charges", "model", MODEL, "3")}
    classic = feats.loc[f"{FEATURES}.monthly_charges"]
    assert classic["source_table"] == FEATURES and classic["entity_columns"] == ["customer_id", "ts"]

    idx = rows(store, "vector_indexes").set_index("name").loc["main.churn.docs_index"]
    assert idx["source_table"] == "main.churn.docs" and idx["embedding_model_endpoints"] == ["bge-embeddings"]
    assert bool(idx["ready"]) and idx["indexed_row_count"] == 1200
    assert rows(store, "vector_search_endpoints").iloc[0]["endpoint_status"] == "ONLINE"


def test_feature_lineage_is_asked_of_feature_tables_never_of_a_source_table(collected):
    _, _, stub = collected
    asked = sorted(p for r, p in stub.log if r == "features.lineage")
    assert asked == [f"/api/2.0/feature-store/feature-tables/{FEATURES}/features/monthly_charges/lineage",
                     f"/api/2.0/feature-store/feature-tables/{OFFLINE}/features/tenure_days/lineage"]


def test_lineage_one_call_per_table_and_pass(collected):
    _, _, stub = collected
    # Walked upstream from 2 seeds (features, docs) to depth 3: features, docs, raw, customers — once each.
    asked = [p for r, p in stub.log if r == "lineage.table"]
    assert len(asked) == len(set(asked)) == 4
    assert all("include_entity_lineage=true" in p for p in asked)


def test_no_token_in_config_or_store(collected, tmp_path):
    _, store, _ = collected
    text = Path(store.path).read_bytes()
    assert TOKEN.encode() not in text
    assert TOKEN not in (tmp_path / "governance.toml").read_text()


# -- over several passes, and what the config asks for ---------------------------------------------
def test_history_traffic_shift_and_metric_samples_accumulate(tmp_path, token_env):
    ws = base_workspace()
    with DatabricksStub(ws, token=TOKEN) as stub:
        first, store = snapshot(tmp_path, stub)
    ws2 = copy.deepcopy(ws)
    routes = ws2["serving_endpoints"][0]["config"]["traffic_config"]["routes"]
    routes[0]["traffic_percentage"], routes[1]["traffic_percentage"] = 50, 50
    ws2["registered_models"][0]["aliases"][0]["version_num"] = 3      # champion moves to v3
    ws2["metrics"]["churn-endpoint"] = prometheus_text("churn-endpoint", ["churn-2", "churn-3"], requests=1500)
    with DatabricksStub(ws2, token=TOKEN) as stub:
        second, _ = snapshot(tmp_path, stub)
    assert first.ok and second.ok
    now = rows(store, "served_entities")
    assert set(now[now.endpoint == "churn-endpoint"]["traffic_pct"]) == {50}
    before = entity_as_of(store, "served_entities", first.snapshot_id)
    assert set(before[before.endpoint == "churn-endpoint"]["traffic_pct"]) == {90, 10}
    assert rows(store, "model_aliases").set_index("alias").loc["champion"]["version"] == "3"
    samples = rows(store, "endpoint_metrics")
    reqs = samples[(samples.metric == "request_count_total") & samples.labels.str.contains("churn-2")]
    assert sorted(reqs["value"]) == [1000.0, 1500.0]     # both passes' samples are kept


def test_job_runs_joined_from_mlflow_runs(tmp_path, token_env):
    """Job runs are read for the jobRunID tags the MLflow source collected (platform databricks)."""
    from datetime import datetime, timezone

    from store.entities import EntityBatch, Scope
    from store.history import commit_snapshot

    store = Store(tmp_path / "waymark.duckdb")
    commit_snapshot(store, source="dbx-mlflow", kind="mlflow", platform="databricks", mode="full",
                    started_at=datetime.now(timezone.utc), finished_at=None, warnings=[], state={},
                    batches={"runs": EntityBatch([{"run_id": "run-2", "job_run_id": "900001"},
                                                  {"run_id": "run-x", "job_run_id": "424242"}], Scope.ALL),
                             "run_inputs": EntityBatch([{"run_id": "run-2", "input_key": "k", "table_name": CUSTOMERS}],
                                                       Scope.ALL)})
    with DatabricksStub(base_workspace(), token=TOKEN) as stub:
        outcome, _ = snapshot(tmp_path, stub)
        assert outcome.ok
        jobs = rows(store, "job_runs").set_index("job_run_id")
        assert jobs.loc["900001"]["git_used_commit"] == "a" * 40 and jobs.loc["900001"]["result_state"] == "SUCCESS"
        assert jobs.loc["900001"]["git_url"] == "https://github.com/acme/churn"
        assert jobs.loc["424242"]["read_status"] != "ok"          # unknown run: a recorded gap
        assert "run_input" in rows(store, "uc_tables").set_index("full_name").loc[CUSTOMERS]["reasons"]
        # Incremental pass: the terminated job run is immutable and not read again.
        stub.reset_counts()
        again, _ = snapshot(tmp_path, stub)
        assert again.ok and again.mode == "incremental"
        asked = [p for r, p in stub.log if r == "jobs.runs.get"]
        assert asked == ["/api/2.2/jobs/runs/get?run_id=424242"]
        assert "900001" in set(rows(store, "job_runs")["job_run_id"])


def test_configured_schemas_list_tables(tmp_path, token_env):
    ws = base_workspace()
    ws["tables"] += [table_fixture(f"main.gold.t{i:03d}") for i in range(1200)]   # two pages of 1000
    with DatabricksStub(ws, token=TOKEN, faults=Faults(empty_pages=True)) as stub:
        outcome, store = snapshot(tmp_path, stub, schemas=["main.gold"], lineage_depth=0, metrics=False)
    assert outcome.ok, outcome.errors
    tables = rows(store, "uc_tables")
    assert (tables["full_name"].str.startswith("main.gold.")).sum() == 1200
    assert stub.counts["lineage.table"] == 0 and stub.counts["serving.metrics"] == 0


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, field", [
    ({"token": "dapi123"}, "token"),
    ({"catalogs": "main"}, "catalogs"),
    ({"schemas": ["main"]}, "schemas"),
    ({"lineage_depth": -1}, "lineage_depth"),
    ({"metrics": "yes"}, "metrics"),
    ({"host": "adb-123.azuredatabricks.net"}, "host"),
    ({"retry_timeout_seconds": 0}, "retry_timeout_seconds"),
    ({"platform": "fabric"}, "platform"),
    ({"warehouse": "x"}, "warehouse"),
])
def test_bad_databricks_config_names_file_source_and_field(tmp_path, extra, field):
    source = dbx_source("https://adb-1.azuredatabricks.net", **extra)
    cfg = write_config(tmp_path / "governance.toml", [source])
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert str(cfg) in str(e.value) and "dbx-uc" in str(e.value) and f"'{field}'" in str(e.value)


def test_minimal_databricks_config_needs_no_host():
    from collectors.config import parse_config

    cfg = parse_config({"sources": [{"name": "d", "kind": "databricks", "platform": "databricks"}]})
    assert cfg.sources[0].options == {}


# -- models by catalog: schemas first (a catalog alone is refused) ----------------------------------
def test_the_stub_refuses_a_catalog_without_a_schema_as_the_service_does(token_env):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config
    from databricks.sdk.errors import BadRequest

    with DatabricksStub(base_workspace(), token=TOKEN) as stub:
        w = WorkspaceClient(config=Config(host=stub.url, token=TOKEN, auth_type="pat", retry_timeout_seconds=5))
        with pytest.raises(BadRequest, match="together"):
            list(w.registered_models.list(catalog_name="main"))
        assert {m.full_name for m in w.registered_models.list(catalog_name="main", schema_name="churn")} == {MODEL, OTHER}


def test_configured_catalogs_are_listed_schema_by_schema(tmp_path, token_env):
    with DatabricksStub(base_workspace(), token=TOKEN) as stub:
        outcome, store = snapshot(tmp_path, stub, catalogs=["main"])
    assert outcome.ok, outcome.errors
    assert set(rows(store, "registered_models")["name"]) == {MODEL, OTHER}
    asked = [p for r, p in stub.log if r == "uc.models.list"]
    assert asked and all("catalog_name=main" in p and "schema_name=" in p for p in asked)
    assert not any("information_schema" in p for p in asked)
    assert [p for r, p in stub.log if r == "uc.schemas.list"] and outcome.warnings == []


# -- a Unity Catalog version's MLmodel is read through the registry, not its raw storage path ---------
def test_uc_version_mlmodel_is_read_through_models_uri_with_the_source_registry(tmp_path, token_env, monkeypatch):
    """The version's storage location (abfss://…) opens only with UC credentials, so the collector
    reads `models:/NAME/VERSION/MLmodel` with the source's registry URI; MLflow's UC artifact
    repository then reads the file (here through the Files API route it takes when the workspace
    enables it). The process-global registry URI points elsewhere and must not matter."""
    import mlflow

    from collectors.config import parse_config
    from collectors.mlflow_source import MlflowSource
    from collectors.report import SourceReport

    ws = base_workspace()
    ws["model_files"] = {f"{MODEL}/2/MLmodel": "artifact_path: model\nrun_id: run-2\nmodel_uuid: uuid-2\n"
                                               "model_id: m-abc\nflavors:\n  sklearn: {}\n"}
    monkeypatch.setattr(mlflow.tracking._model_registry.utils, "_registry_uri", f"sqlite:///{tmp_path}/other.db",
                        raising=False)
    with DatabricksStub(ws, token=TOKEN) as stub:
        monkeypatch.setenv("DATABRICKS_HOST", stub.url)
        config = parse_config({"sources": [{"name": "dbx", "kind": "mlflow", "platform": "databricks",
                                            "tracking_uri": "databricks", "registry_uri": "databricks-uc"}]})
        source = MlflowSource(config.sources[0], SourceReport("dbx"))
        row = source._read_origin(MODEL, "2", "dbfs:/databricks/mlflow-tracking/1/run-2/artifacts/model")
        missing = source._read_origin(MODEL, "3", "dbfs:/databricks/mlflow-tracking/1/run-3/artifacts/model")
    assert row["read_status"] == "ok", row
    assert (row["origin_run_id"], row["origin_model_uuid"], row["origin_model_id"]) == ("run-2", "uuid-2", "m-abc")
    assert missing["read_status"] in ("missing", "unreadable") and missing["read_status"] != "ok"
    assert any(p.startswith(f"/api/2.0/fs/files/Models/main/churn/churn_gbm/2/MLmodel") for r, p in stub.log
               if r == "files.download")
    assert not (tmp_path / "other.db").exists() and not Path("mlflow.db").exists()
    assert stub.counts["mlflow.uc.emit_lineage"] == 0          # reading never writes


def test_a_referenced_table_in_a_configured_schema_is_read_with_its_details(tmp_path, token_env):
    """The schema's list omits columns; the details show FEATURES is a classic feature table."""
    with DatabricksStub(base_workspace(), token=TOKEN) as stub:
        outcome, store = snapshot(tmp_path, stub, schemas=["main.churn"], metrics=False)
    assert outcome.ok, outcome.errors
    table = rows(store, "uc_tables").set_index("full_name").loc[FEATURES]
    assert {"schema", "model_dependency", "feature_source"} <= set(table["reasons"])
    assert f"{FEATURES}.monthly_charges" in set(rows(store, "features")["full_name"])
