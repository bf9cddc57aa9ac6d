"""The embedded demo workspace: two real MLflow stores (a Databricks side and a Fabric side) filled
by the real MLflow client with the churn story of the seeds, snapshotted by the real collector at
several points of a simulated two-month timeline, so history (alias moves) is there from the start.

Deterministic apart from ids MLflow generates (run ids, LoggedModel ids) and registry timestamps:
same runs, metrics, git SHAs, Delta versions and alias history on every build; the timeline ends
at the build time.
Marked ready only when complete, so a half-built demo is never used.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from demo import databricks_demo  # noqa: E402  (the demo's Databricks workspace side)
from demo import azure_demo, azure_fixtures  # noqa: E402  (the demo's Azure ML side)
from demo.layout import PASSES_FILE, READY_MARKER, demo_config_path, demo_dir  # noqa: F401  (re-exported)

DBX_MODEL = "churn-prediction-gbm"
# The MLflow user of the Databricks training job (its service principal's name on the platform).
DBX_RUN_USER = "svc-churn-training"
FABRIC_MODEL = "churn_model"
DBX_EXPERIMENT = "/churn-prediction/ci-cd-pipeline"
FABRIC_EXPERIMENT = "customer-churn"
FEATURE_TABLE = "churn.gold.features"
HOLDOUT_TABLE = "churn.gold.holdout"
ONELAKE_TABLE_PATH = ("abfss://churn-ws@onelake.dfs.fabric.microsoft.com/"
                      "lh_churn.Lakehouse/Tables/dbo/churn_features")


def git_sha(label: str) -> str:
    """A stable 40-hex SHA per story step, so every build shows the same commits."""
    return hashlib.sha1(f"waymark-demo:{label}".encode()).hexdigest()


@dataclass
class TrainingRun:
    day: int                  # days before the build day
    name: str
    feature_version: int | None
    sha: str | None
    metrics: dict[str, float]
    params: dict[str, str] = field(default_factory=dict)
    register: bool = True
    status: str = "FINISHED"


DBX_RUNS = [
    TrainingRun(60, "gbm-baseline", 12, git_sha("baseline"),
                {"roc_auc": 0.812, "f1_score": 0.731, "precision": 0.716, "recall": 0.747}),
    TrainingRun(41, "gbm-tuned-depth", 14, git_sha("tuned"),
                {"roc_auc": 0.843, "f1_score": 0.752, "precision": 0.741, "recall": 0.764},
                {"max_depth": "6", "learning_rate": "0.05"}),
    # Feature table rebuilt from scratch: Delta version 0, which MLflow drops from the source JSON.
    TrainingRun(21, "gbm-new-features", 0, git_sha("new-features"),
                {"roc_auc": 0.791, "f1_score": 0.708, "precision": 0.689, "recall": 0.729}),
    TrainingRun(8, "gbm-retrain-nov", 17, git_sha("retrain-nov"),
                {"roc_auc": 0.861, "f1_score": 0.774, "precision": 0.762, "recall": 0.787},
                {"max_depth": "6", "learning_rate": "0.05", "n_estimators": "300"}),
    TrainingRun(2, "exploration-notebook", 17, None,
                {"roc_auc": 0.835, "f1_score": float("nan"), "precision": 0.744}, register=False),
    TrainingRun(0, "gbm-retrain-dec", 18, git_sha("retrain-dec"), {"roc_auc": 0.858}, register=False,
                status="RUNNING"),
]


class Timeline:
    def __init__(self, today: datetime):
        self.today = today

    def at(self, days_ago: float, hours_later: float = 0) -> datetime:
        return self.today - timedelta(days=days_ago) + timedelta(hours=hours_later)

    def ms(self, days_ago: float, hours_later: float = 0) -> int:
        return int(self.at(days_ago, hours_later).timestamp() * 1000)


def _train_model(seed: int, n_estimators: int = 60, max_depth: int = 3):
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 3] + rng.normal(scale=0.8, size=400) > 0).astype(int)
    return GradientBoostingClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=seed).fit(X, y)


def _delta_input(table: str, version: int | None, context: str, digest_seed: str):
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = DeltaDatasetSource(delta_table_name=table, delta_table_version=version)
    digest = hashlib.md5(f"{table}@{version}:{digest_seed}".encode()).hexdigest()[:8]
    ds = Dataset(name=table.split(".")[-1], digest=digest, source_type="delta_table",
                 source=json.dumps(source.to_dict()))
    return DatasetInput(ds, tags=[InputTag("mlflow.data.context", context)])


class DemoBuilder:
    def __init__(self, root: Path, today: datetime, progress: Callable[[int, str], None]):
        self.root = root
        self.t = Timeline(today)
        self.progress = progress
        self.dbx_uri = f"sqlite:///{root / 'databricks' / 'mlflow.db'}"
        self.fabric_uri = f"sqlite:///{root / 'fabric' / 'mlflow.db'}"
        self.config_path = root / "governance.toml"
        self.dbx_versions: dict[str, str] = {}   # run name -> registered version

    def build(self) -> None:
        """Build every stage, then record the passes taken in PASSES_FILE (what the demo's counts derive from)."""
        self.passes: list[dict] = []
        self._build()
        (self.root / PASSES_FILE).write_text(json.dumps(self.passes, indent=1), encoding="utf-8")

    def _build(self) -> None:
        import mlflow
        from mlflow import MlflowClient

        from collectors.config import load_config
        from collectors.runner import snapshot_all

        os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
        # MLflow probes for Databricks credentials while logging models; irrelevant noise here.
        logging.getLogger("mlflow.utils.databricks_utils").setLevel(logging.ERROR)
        for side in ("databricks", "fabric"):
            (self.root / side / "artifacts").mkdir(parents=True, exist_ok=True)
        self._write_config()
        # Azure ML side (demo/azure_demo.py): a stub ARM / Azure Monitor workspace on 127.0.0.1.
        self.azure = azure_demo.DemoAzure(self.root).start()
        with self.config_path.open("a", encoding="utf-8") as f:
            f.write(self.azure.config_block())
        config = load_config(self.config_path)
        # Registry URIs explicit: MLflow's set_*_uri also export MLFLOW_*_URI env vars, so an implicit
        # registry could silently be another process's store.
        self.dbx = MlflowClient(self.dbx_uri, registry_uri=self.dbx_uri)
        self.fab = MlflowClient(self.fabric_uri, registry_uri=self.fabric_uri)
        self.progress(5, "creating the Databricks workspace (MLflow store)")
        dbx_exp = self.dbx.create_experiment(DBX_EXPERIMENT, artifact_location=(self.root / "databricks" / "artifacts").as_uri(),
                                             tags={"team": "churn", "mlflow.note.content": "CI/CD churn pipeline"})
        self.progress(10, "creating the Fabric workspace (MLflow store)")
        fab_exp = self.fab.create_experiment(FABRIC_EXPERIMENT, artifact_location=(self.root / "fabric" / "artifacts").as_uri(),
                                             tags={"team": "churn", "migrated_from": "databricks"})
        self.dbx.create_registered_model(DBX_MODEL, tags={"owner": "churn-team", "domain": "customer"},
                                         description="Gradient-boosted churn classifier (seed 001 pipeline)")

        def snap(days_ago: float, label: str, pct: int) -> None:
            self.progress(pct, f"snapshot: {label}")
            # Past stages are stamped with their simulated evening; today's snapshot is real time.
            when = self.t.at(days_ago, hours_later=8) if days_ago else None
            outcomes = snapshot_all(config, now=(lambda: when) if when else None)
            failed = [o for o in outcomes if not o.ok]
            if failed:
                raise RuntimeError(f"demo snapshot failed: {failed[0].errors}")
            self.passes.append({"stage": label, "sources": [o.source for o in outcomes]})

        mlflow.set_tracking_uri(self.dbx_uri)
        mlflow.set_registry_uri(self.dbx_uri)
        # Stage 1: baseline trained and promoted.
        self._dbx_run(dbx_exp, DBX_RUNS[0], seed=1)
        self._alias(self.dbx, DBX_MODEL, "Production", self.dbx_versions["gbm-baseline"])
        snap(58, "baseline in Production", 25)
        # Stage 2: tuned model staged, then promoted (the Production alias moves).
        self._dbx_run(dbx_exp, DBX_RUNS[1], seed=2)
        self._alias(self.dbx, DBX_MODEL, "Staging", self.dbx_versions["gbm-tuned-depth"])
        snap(40, "tuned model in Staging", 35)
        self._alias(self.dbx, DBX_MODEL, "Production", self.dbx_versions["gbm-tuned-depth"])
        snap(35, "tuned model promoted", 42)
        # Stage 3: new features, worse model staged; a bad run deleted.
        self._dbx_run(dbx_exp, DBX_RUNS[2], seed=3)
        self._alias(self.dbx, DBX_MODEL, "Staging", self.dbx_versions["gbm-new-features"])
        bad = self.dbx.create_run(dbx_exp, start_time=self.t.ms(20), run_name="gbm-bad-seed",
                                  tags={"mlflow.source.git.commit": git_sha("bad-seed")})
        self.dbx.set_terminated(bad.info.run_id, "FAILED", end_time=self.t.ms(20, 1))
        self.dbx.delete_run(bad.info.run_id)
        # Fabric: a native sklearn run, registered as version 1.
        mlflow.set_tracking_uri(self.fabric_uri)
        mlflow.set_registry_uri(self.fabric_uri)
        fabric_native = self._fabric_native_run(fab_exp)
        snap(19, "Fabric experiment starts", 55)
        # Stage 4: November retrain goes to Staging then Production; Fabric receives the
        # Production model by registering copied artifacts (the MLmodel keeps the Databricks run).
        mlflow.set_tracking_uri(self.dbx_uri)
        mlflow.set_registry_uri(self.dbx_uri)
        self._dbx_run(dbx_exp, DBX_RUNS[3], seed=4)
        self._alias(self.dbx, DBX_MODEL, "Staging", self.dbx_versions["gbm-retrain-nov"])
        self._copy_to_fabric(self.dbx_versions["gbm-tuned-depth"], alias="Production")
        publish_churn(self.azure, self, {"blue": 100})   # served on Azure ML too
        snap(7, "November retrain staged; tuned model copied to Fabric", 68)
        self._alias(self.dbx, DBX_MODEL, "Production", self.dbx_versions["gbm-retrain-nov"])
        self.fab.set_registered_model_alias(FABRIC_MODEL, "Challenger", fabric_native)
        snap(3, "November retrain promoted on Databricks", 80)
        # Stage 5: today — exploration run without a git SHA, a run still in progress,
        # and the new Production model copied to Fabric as Staging.
        for run, seed in ((DBX_RUNS[4], 5), (DBX_RUNS[5], 6)):
            self._dbx_run(dbx_exp, run, seed=seed)
        self._copy_to_fabric(self.dbx_versions["gbm-retrain-nov"], alias="Staging")
        publish_churn(self.azure, self, {"blue": 90, "green": 10})   # green canary on Azure ML
        self._add_fabric_and_search_sides()   # Fabric items + AI Search (Azure stub), from today on
        # Databricks workspace side (demo/databricks_demo.py): a stub workspace over HTTP whose UC
        # model versions point at the runs above, collected by the `databricks` source from today on.
        config = self._add_databricks_side(dbx_exp)
        with databricks_demo.stub_environment(self.config_path):
            snap(0, "today", 92)

    # -- helpers -------------------------------------------------------------------------------
    def _add_databricks_side(self, dbx_exp: str):
        """Write the stub workspace fixture and add the `databricks` source to the demo config."""
        from collectors.config import load_config

        databricks_demo.write_fixture(self.root, self.dbx, dbx_exp, {r.name: r.sha for r in DBX_RUNS}, self.t.ms(0))
        with self.config_path.open("a", encoding="utf-8") as f:
            f.write(databricks_demo.CONFIG_BLOCK)
        return load_config(self.config_path)

    # -- Fabric items and Azure AI Search (checklist evidence; collected from today on) ----------
    FABRIC_SOURCE, SEARCH_SOURCE = "fabric-items", "search-churn"

    def _add_fabric_and_search_sides(self) -> None:
        """Serve the stubs' Fabric workspace (items, lakehouse tables, a OneLake shortcut onto the UC
        feature table's storage) and AI Search (`documents`, which replaces no Databricks index) from
        the demo's Azure stub, and add both sources to the demo config (before `dbx-uc`, which
        stays the newest pass)."""
        uc_features = databricks_demo.table_fixture(FEATURE_TABLE)["storage_location"]  # as the stub has it
        self.azure.fixture["fabric"] = azure_fixtures.churn_fabric(uc_features)
        self.azure.fixture["search"] = azure_fixtures.churn_search()
        self.azure.save()
        url = self.azure.stub.url
        with self.config_path.open("a", encoding="utf-8") as f:
            f.write(f"\n[[sources]]\nname = \"{self.FABRIC_SOURCE}\"\nkind = \"fabric\"\nplatform = \"fabric\"\n"
                    f"workspace_id = \"{azure_fixtures.FABRIC_WS}\"\nfabric_endpoint = \"{url}/v1\"\n"
                    f"onelake_table_endpoint = \"{url}\"\n"
                    f"\n[[sources]]\nname = \"{self.SEARCH_SOURCE}\"\nkind = \"azuresearch\"\nplatform = \"azureml\"\n"
                    f"search_endpoint = \"{url}\"\n")

    def _write_config(self) -> None:
        self.config_path.write_text(
            "# Generated by `python -m demo build`: the embedded demo workspace.\n"
            "[store]\npath = \"waymark.duckdb\"\n\n"
            # A local (unverified) reviewer so the Promotion gates form works in the demo; with
            # OIDC configured the signed-in user is used instead.
            "[review]\nlocal_identity = \"reviewer@waymark.demo\"\n\n"
            "[[review.reviewers]]\nidentity = \"reviewer@waymark.demo\"\nmodels = [\"*\"]\n\n"
            # Separation of duties maps the runs' MLflow user to the person (team) behind it.
            f"[[review.identities]]\nidentity = \"churn-ci@waymark.demo\"\nalso_known_as = [\"{DBX_RUN_USER}\"]\n\n"
            # The simulated passes are days apart: a monthly full pass keeps incremental ones in the history.
            "[[sources]]\nname = \"dbx-churn\"\nkind = \"mlflow\"\nplatform = \"databricks\"\n"
            f"tracking_uri = \"{self.dbx_uri}\"\nfull_every_hours = 720\n\n"
            "[[sources]]\nname = \"fabric-churn\"\nkind = \"mlflow\"\nplatform = \"fabric\"\n"
            f"tracking_uri = \"{self.fabric_uri}\"\nfull_every_hours = 720\n", encoding="utf-8")

    def _alias(self, client, model: str, alias: str, version: str) -> None:
        client.set_registered_model_alias(model, alias, version)

    def _dbx_run(self, exp_id: str, spec: TrainingRun, seed: int) -> None:
        import mlflow
        import mlflow.sklearn
        from mlflow.entities import Metric, Param, RunTag

        start = self.t.ms(spec.day)
        # The job runs as the pipeline's service principal: its MLflow user is the run's author.
        tags = {"mlflow.source.type": "JOB", "mlflow.source.name": "churn-training-prod",
                "owner": "churn-team", "mlflow.databricks.jobRunID": str(900_000 + seed),
                "mlflow.user": DBX_RUN_USER}
        if spec.sha and seed % 2 == 0:
            # Half the runs come from Databricks Repos, which records the commit as a tag.
            tags["mlflow.source.git.commit"] = spec.sha
        run = self.dbx.create_run(exp_id, start_time=start, run_name=spec.name, tags=tags)
        run_id = run.info.run_id
        params = {"model_type": "GradientBoostingClassifier", "n_estimators": "200", "max_depth": "4",
                  "learning_rate": "0.1", "target": "churned", **spec.params}
        if spec.feature_version is not None:
            params["delta_feature_version"] = str(spec.feature_version)
        if spec.sha:
            params["git_sha"] = spec.sha
        self.dbx.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                           metrics=[Metric(k, v, start + 600_000, 0) for k, v in spec.metrics.items()],
                           tags=[RunTag("dataset_version", f"{FEATURE_TABLE}@v{spec.feature_version}")])
        if spec.feature_version is not None:
            self.dbx.log_inputs(run_id, datasets=[
                _delta_input(FEATURE_TABLE, spec.feature_version, "training", spec.name),
                _delta_input(HOLDOUT_TABLE, 5, "eval", "holdout")])
        if spec.register:
            with mlflow.start_run(run_id=run_id):
                info = mlflow.sklearn.log_model(_train_model(seed), name="churn-gbm",
                                                pip_requirements=["scikit-learn"],
                                                skops_trusted_types=["sklearn.tree._tree.Tree"])
            mv = mlflow.register_model(f"models:/{info.model_id}", DBX_MODEL,
                                       tags={"validated": "true" if spec.metrics["roc_auc"] >= 0.80 else "false"})
            self.dbx_versions[spec.name] = str(mv.version)
        if spec.status == "FINISHED":
            self.dbx.set_terminated(run_id, "FINISHED", end_time=start + 900_000)

    def _fabric_native_run(self, exp_id: str) -> str:
        import mlflow
        import mlflow.sklearn
        import numpy as np
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
        from sklearn.ensemble import RandomForestClassifier

        start = self.t.ms(19)
        run = self.fab.create_run(exp_id, start_time=start, run_name="rf-baseline",
                                  tags={"mlflow.source.type": "NOTEBOOK", "mlflow.source.name": "churn-notebook",
                                        "owner": "fabric-ds"})
        rng = np.random.default_rng(7)
        X = rng.normal(size=(300, 6))
        y = (X[:, 0] - X[:, 2] > 0).astype(int)
        model = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=7).fit(X, y)
        self.fab.log_batch(run.info.run_id, params=[Param("n_estimators", "100"), Param("max_depth", "10")],
                           metrics=[Metric("accuracy", 0.842, start + 300_000, 0),
                                    Metric("f1_score", 0.738, start + 300_000, 0),
                                    Metric("roc_auc", 0.826, start + 300_000, 0)])
        source = json.dumps({"path": ONELAKE_TABLE_PATH, "delta_table_version": 3})
        self.fab.log_inputs(run.info.run_id, datasets=[DatasetInput(
            Dataset(name="churn_features", digest="f3a91c0e", source_type="delta_table", source=source),
            tags=[InputTag("mlflow.data.context", "training")])])
        with mlflow.start_run(run_id=run.info.run_id):
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"],
                                                skops_trusted_types=["sklearn.tree._tree.Tree"])
        self.fab.set_terminated(run.info.run_id, "FINISHED", end_time=start + 400_000)
        mv = mlflow.register_model(f"models:/{info.model_id}", FABRIC_MODEL)
        return str(mv.version)

    def _copy_to_fabric(self, dbx_version: str, alias: str) -> None:
        """What a migration notebook does: copy the model's artifacts, register them on Fabric."""
        src_uri = self.dbx.get_model_version_download_uri(DBX_MODEL, dbx_version)
        src = Path(src_uri.replace("file://", ""))
        dest = self.root / "fabric" / "artifacts" / "imported" / f"{DBX_MODEL}-v{dbx_version}"
        shutil.copytree(src, dest)
        mv = self.fab.create_model_version(
            FABRIC_MODEL, source=str(dest),
            tags={"waymark.migrated_from": f"databricks:{DBX_MODEL}/{dbx_version}", "owner": "churn-team"},
            description=f"Copied from Databricks {DBX_MODEL} v{dbx_version}")
        self.fab.set_registered_model_alias(FABRIC_MODEL, alias, mv.version)


def publish_churn(azure: azure_demo.DemoAzure, builder: DemoBuilder, traffic: dict[str, int]) -> None:
    """Azure ML v2 = copy of the tuned Databricks version (Fabric's Production),
    v3 = copy of the November retrain (Fabric's Staging), served when `green` gets traffic."""
    runs = {"2": "gbm-tuned-depth", "3": "gbm-retrain-nov"}
    wanted = {v: r for v, r in runs.items() if v == "2" or "green" in traffic}
    artifacts, origin = {}, {}
    for version, run_name in wanted.items():
        dbx_version = builder.dbx_versions[run_name]
        uri = builder.dbx.get_model_version_download_uri(DBX_MODEL, dbx_version)
        artifacts[version] = Path(uri.replace("file://", ""))
        origin[version] = f"databricks:{DBX_MODEL}/{dbx_version}"
    azure.publish(artifacts, traffic, origin)


@contextlib.contextmanager
def _mlflow_globals_restored():
    """The builder points MLflow's process-wide URIs at the demo stores (fluent log_model and
    register_model need that); put them, and the env vars MLflow exports for them, back after."""
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    env_before = {k: os.environ.get(k) for k in names}
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build(target: Path | None = None, today: datetime | None = None,
          progress: Callable[[int, str], None] | None = None) -> Path:
    """Build the demo into `target` (replacing it) and return the path of its governance.toml.

    Built in place (MLflow stores record absolute artifact paths) and marked ready only at the
    end, so an interrupted build is never mistaken for a demo and is simply rebuilt.
    """
    target = target or demo_dir()
    # Anchored an hour before the build (whole hours), so "today's" runs are never in the future.
    now = (today or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
    anchor = now - timedelta(hours=1)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    report = progress or (lambda pct, msg: None)
    with _mlflow_globals_restored():
        DemoBuilder(target, anchor, report).build()
    (target / READY_MARKER).write_text(anchor.isoformat(), encoding="utf-8")
    report(100, "demo workspace ready")
    return target / "governance.toml"


if __name__ == "__main__":
    build(progress=lambda pct, msg: print(f"{pct:3d}% {msg}", file=sys.stderr, flush=True))
