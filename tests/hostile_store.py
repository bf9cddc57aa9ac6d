"""A Waymark store filled with hostile collected values, written through the real snapshot writer.

Used by the markup-safety tests (fixed payloads) and the odd-data property test (drawn values):
every text a platform can hand us — experiment, run, model, alias, tag, table, endpoint and
deployment names, error and warning texts, the source name itself — is set to a chosen value, and
every number may be None, NaN, ±inf or MLflow's stored infinity (±1.797e308).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from store import Store
from store.entities import EntityBatch, Scope
from store.history import commit_snapshot, record_failed_snapshot

IMAGE = "![x](http://127.0.0.1:{port}/p.png)"
PAYLOADS = [
    "![x](http://127.0.0.1:{port}/p.png)",
    "[click](javascript:alert(1))",
    "<img src=http://127.0.0.1:{port}/h.png>",
    ":red[red] :material/home: $x^2$ **bold** `code` # head",
]


@dataclass
class Hostile:
    """The values to plant. `text(i)` cycles through `texts`; keys must not be None (NOT NULL)."""
    texts: list[str]
    numbers: list[float | None]
    source: str = "hostile-src"

    def text(self, i: int) -> str:
        return self.texts[i % len(self.texts)]

    def maybe(self, i: int) -> str | None:
        """A value that may be missing: None on every third field."""
        return None if i % 3 == 2 else self.text(i)

    def number(self, i: int) -> float | None:
        return self.numbers[i % len(self.numbers)]


def write_config(root: Path, source: str = "cfg-src") -> Path:
    """A config with one benign MLflow source (its sqlite file is never created: pages only read)."""
    config = root / "governance.toml"
    config.write_text(f'[store]\npath = "w.duckdb"\n[[sources]]\nname = "{source}"\nkind = "mlflow"\n'
                      f'platform = "databricks"\ntracking_uri = "sqlite:///{root}/m.db"\n', encoding="utf-8")
    return config


def plant(store_path: Path, h: Hostile) -> None:
    store = Store(store_path)
    now = datetime.now(timezone.utc)
    t, m, n = h.text, h.maybe, h.number
    model, alias = t(0), t(1) or "Production"
    # run0 (behind the aliased version) has no name: m(2) is always None.
    runs = [{"run_id": f"run{i}", "experiment_id": "1", "run_name": m(i + 2), "status": "FINISHED",
             "lifecycle_stage": "active", "user_id": m(i + 1), "start_time": 1_700_000_000_000 + i,
             "end_time": None, "artifact_uri": m(i + 2),
             "params": {t(i): t(i + 1), "delta_feature_version": m(i)},
             "metrics": {t(i + 2): n(i), "roc_auc": n(i + 1), "f1_score": n(i + 2), "precision": n(i + 3)},
             "tags": {"owner": m(i + 1), t(i): t(i + 3), "mlflow.runName": m(i)},
             "git_sha": m(i + 2), "git_sha_from": m(i), "source_name": m(i + 1), "source_type": m(i + 2),
             "parent_run_id": None, "job_run_id": m(i), "output_model_ids": None} for i in range(3)]
    batches = {
        "experiments": [{"experiment_id": "1", "name": m(0), "lifecycle_stage": "active",
                         "artifact_location": m(1), "tags": {t(2): t(3)}}],
        "runs": runs,
        "run_inputs": [{"run_id": "run0", "input_key": t(4), "dataset_name": m(5), "digest": m(6),
                        "source_type": "delta_table", "context": m(4), "table_name": m(5), "table_version": None,
                        "version_known": None, "path": m(6), "source_json": m(7)}],
        "registered_models": [{"name": model, "description": m(2), "tags": {t(3): t(4)}}],
        "model_versions": [
            {"name": model, "version": "1", "run_id": "run0", "source_uri": m(5), "status": "READY",
             "user_id": m(6), "description": m(7), "tags": {"owner": t(8)}, "aliases": [alias]},
            {"name": model, "version": "2", "run_id": "run1", "source_uri": m(1), "status": m(2),
             "user_id": m(3), "description": m(4), "tags": {t(5): t(6)}, "aliases": []},
            {"name": model, "version": t(9), "run_id": m(10), "source_uri": None, "status": None,
             "user_id": None, "description": None, "tags": None, "aliases": None}],
        "model_aliases": [{"name": model, "alias": alias, "version": "1"}],
        "model_origins": [{"name": model, "version": "2", "read_status": "ok", "origin_run_id": m(3),
                           "artifact_path": m(4), "detail": m(5)}],
    }
    commit_snapshot(store, source=h.source, kind="mlflow", platform="databricks", mode="full",
                    started_at=now - timedelta(minutes=5), finished_at=now - timedelta(minutes=4),
                    batches={k: EntityBatch(v, Scope.ALL) for k, v in batches.items()},
                    warnings=[t(11), t(12)], state={})
    endpoint = t(13)
    serving = {
        "serving_endpoints": [{"name": endpoint, "ready": m(14), "config_update": m(15), "creator": m(16),
                               "task": m(17), "tags": {t(18): t(19)}, "endpoint_url": m(20),
                               "read_status": "ok", "detail": m(21)}],
        "served_entities": [{"endpoint": endpoint, "config": "active", "served_entity_name": t(22),
                             "entity_name": model, "entity_version": "1", "deployment_state": m(23),
                             "deployment_state_message": m(24), "traffic_pct": n(4)}],
        "endpoint_metrics": [{"endpoint": endpoint, "metric": metric, "labels": "{}",
                              "sampled_at": int((now - timedelta(minutes=i)).timestamp() * 1000), "value": n(i)}
                             for i, metric in enumerate(("request_count_total", "request_4xx_count_total",
                                                         "request_5xx_count_total"))],
    }
    commit_snapshot(store, source=f"{h.source}-dbx", kind="databricks", platform="databricks", mode="full",
                    started_at=now - timedelta(minutes=3), finished_at=now - timedelta(minutes=2),
                    batches={k: EntityBatch(v, Scope.ALL) for k, v in serving.items()}, warnings=[], state={})
    aml = {
        "aml_endpoints": [{"endpoint": t(25), "provisioning_state": m(26), "scoring_uri": m(27),
                           "traffic": {t(28): n(5)}, "mirror_traffic": None, "tags": {t(29): t(30)}}],
        "aml_deployments": [{"endpoint": t(25), "deployment": t(28), "provisioning_state": m(31),
                             "instance_type": m(32), "instance_count": None, "model_ref": m(33),
                             "model_ref_format": "short", "model_name": model, "model_version": m(34),
                             "tags": None}],
    }
    commit_snapshot(store, source=f"{h.source}-aml", kind="azureml", platform="azureml", mode="full",
                    started_at=now - timedelta(minutes=2), finished_at=now - timedelta(minutes=1),
                    batches={k: EntityBatch(v, Scope.ALL) for k, v in aml.items()}, warnings=[], state={})
    # The last pass of the MLflow source failed with a server error text: Overview, sidebar, Snapshots.
    record_failed_snapshot(store, source=h.source, kind="mlflow", platform="databricks", mode="incremental",
                           started_at=now, errors=[t(35), t(36)], warnings=[t(37)])
