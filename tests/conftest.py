"""Shared fixtures: real MLflow sqlite stores filled by the real MlflowClient, config files, the CLI.

Everything points at explicit tracking/registry URIs under pytest's tmp dirs; nothing relies on the
client's cwd default. Building an MLflow sqlite store costs seconds (alembic migrations), so one blank
store is migrated once per session and copied for every workspace; the one real model is logged once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"

REPO = Path(__file__).resolve().parent.parent
DAY_MS = 86_400_000

DBX_EXPERIMENT = "/Shared/churn-ünïcode-实验"
DBX_MODEL = "churn-gbm"
FAB_EXPERIMENT = "customer-churn"
FAB_MODEL = "churn_model"
FEATURES = "main.churn.features"
HOLDOUT = "main.churn.holdout"
ONELAKE_PATH = "abfss://ws@onelake.dfs.fabric.microsoft.com/lh.Lakehouse/Tables/dbo/churn_features"
CSV_PATH = "/data/raw/churn.csv"
UNICODE_RUN_NAME = "entraînement-α-训练"
UNICODE_OWNER = "équipe-données 🚀"
HUGE_TAG = "x" * 7992 + "ünïcødé!"       # 8000 characters: MLflow's tag value limit
assert len(HUGE_TAG) == 8000


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


SHA_A, SHA_A_PARAM, SHA_B, SHA_C = sha("a-tag"), sha("a-param"), sha("b-param"), sha("c-custom")


# -- helpers ---------------------------------------------------------------------------------------
def sqlite_uri(db: Path) -> str:
    return f"sqlite:///{db}"


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def new_mlflow_store(directory: Path, template: Path) -> str:
    """A fresh MLflow sqlite store (a copy of the migrated blank one) plus an artifacts dir."""
    (directory / "artifacts").mkdir(parents=True, exist_ok=True)
    shutil.copy(template, directory / "mlflow.db")
    return sqlite_uri(directory / "mlflow.db")


def delta_input(table: str | None, version: int | None, context: str, digest: str, path: str | None = None):
    """A dataset input exactly as MLflow's DeltaDatasetSource serialises it (version 0 is dropped)."""
    from mlflow.data.delta_dataset_source import DeltaDatasetSource
    from mlflow.entities import Dataset, DatasetInput, InputTag

    source = DeltaDatasetSource(path=path, delta_table_name=table, delta_table_version=version)
    ds = Dataset(name=(table or path).split(".")[-1].split("/")[-1], digest=digest, source_type="delta_table",
                 source=json.dumps(source.to_dict()))
    return DatasetInput(ds, tags=[InputTag("mlflow.data.context", context)])


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))   # a JSON string is a valid TOML basic string


def write_config(path: Path, sources: list[dict[str, Any]], store: str | Path | None = "waymark.duckdb") -> Path:
    """Write a governance.toml; `store=None` leaves out [store]."""
    lines = []
    if store is not None:
        lines += ["[store]", f"path = {toml_value(str(store))}", ""]
    for s in sources:
        lines.append("[[sources]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in s.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def mlflow_source(name: str, uri: str, platform: str = "databricks", **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "mlflow", "platform": platform, "tracking_uri": uri, **extra}


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI") and not k.startswith("WAYMARK_TEST_")}
    env["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    env.update(extra or {})
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m collectors ARGS` in a subprocess, from the repo root, as CI runs it."""
    return subprocess.run([sys.executable, "-m", "collectors", *map(str, args)], cwd=REPO, env=cli_env(env),
                          capture_output=True, text=True, timeout=timeout)


def start_holding_cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """`python -m collectors ARGS` started in the background with its write transaction held open
    before COMMIT as `env` says (tests/holding_writer.py: WAYMARK_TEST_HOLD_*)."""
    return subprocess.Popen([sys.executable, str(REPO / "tests" / "holding_writer.py"), *map(str, args)], cwd=REPO,
                            env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Wait until `path` exists; fail with the process output if it exits first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process exited ({proc.returncode}) before writing {path}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {path}")
        time.sleep(0.05)


def table_dump(store_path: Path, table: str, source: str | None = None) -> list[tuple]:
    """Every row of a table (all history), sorted, through a read-only connection."""
    from store.db import Store

    with Store(store_path).reader() as con:
        sql = f"SELECT * FROM {table}" + (" WHERE source = ?" if source else "")
        return sorted(con.execute(sql, [source] if source else []).fetchall(), key=repr)


ENTITY_TABLES = ("experiments", "runs", "run_inputs", "logged_models", "registered_models",
                 "model_versions", "model_aliases", "model_origins")


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """One migrated, empty MLflow sqlite store; copied for every workspace (saves the alembic run)."""
    root = tmp_path_factory.mktemp("mlflow-template")
    db = root / "mlflow.db"
    cwd = os.getcwd()
    os.chdir(root)   # the Default experiment's artifact location is derived from the cwd
    try:
        client(sqlite_uri(db)).search_experiments()
    finally:
        os.chdir(cwd)
    return db


@dataclass
class Workspace:
    root: Path
    dbx_uri: str
    fab_uri: str
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def model_artifacts(self) -> Path:
        """The artifacts dir of the real logged model (dbx churn-gbm v1), to copy elsewhere."""
        return Path(client(self.dbx_uri).get_model_version_download_uri(DBX_MODEL, "1").replace("file://", ""))

    def sources(self) -> list[dict[str, Any]]:
        return [mlflow_source("dbx", self.dbx_uri, "databricks"), mlflow_source("fab", self.fab_uri, "fabric")]


def _build_workspace(root: Path, template: Path) -> Workspace:
    """Two platforms: a Databricks-side and a Fabric-side MLflow store, filled by the real client."""
    import mlflow
    import mlflow.data
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
    from sklearn.linear_model import LogisticRegression

    ws = Workspace(root, new_mlflow_store(root / "dbx", template), new_mlflow_store(root / "fab", template))
    now = int(time.time() * 1000)
    t0 = now - 2 * DAY_MS
    dbx, fab = client(ws.dbx_uri), client(ws.fab_uri)

    exp = dbx.create_experiment(DBX_EXPERIMENT, artifact_location=(root / "dbx" / "artifacts").as_uri(),
                                tags={"team": "données"})
    ws.ids["dbx_experiment"] = exp
    # Run A: git SHA tag (wins over the param), unicode, a huge tag, a NaN metric, Delta v5 and v0, a model.
    a = dbx.create_run(exp, start_time=t0, run_name=UNICODE_RUN_NAME,
                       tags={"mlflow.source.git.commit": SHA_A, "owner": UNICODE_OWNER, "huge": HUGE_TAG,
                             "mlflow.source.type": "JOB"}).info.run_id
    dbx.log_batch(a, params=[Param("max_depth", "4"), Param("git_sha", SHA_A_PARAM), Param("étiquette", "valeur-é")],
                  metrics=[Metric("roc_auc", 0.85, t0 + 1000, 0), Metric("loss", float("nan"), t0 + 1000, 0)],
                  tags=[RunTag("dataset_version", f"{FEATURES}@v5")])
    dbx.log_inputs(a, datasets=[delta_input(FEATURES, 5, "training", "d5"),
                                delta_input(HOLDOUT, 0, "eval", "h0")])
    mlflow.set_tracking_uri(ws.dbx_uri)
    mlflow.set_registry_uri(ws.dbx_uri)
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    with mlflow.start_run(run_id=a):
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    dbx.set_terminated(a, "FINISHED", end_time=t0 + 900_000)
    ws.ids.update(run_a=a, model_id=info.model_id)
    mv1 = mlflow.register_model(f"models:/{info.model_id}", DBX_MODEL, tags={"validated": "true"})
    mv2 = mlflow.register_model(f"models:/{info.model_id}", DBX_MODEL)
    dbx.set_registered_model_alias(DBX_MODEL, "champion", mv1.version)
    dbx.set_registered_model_alias(DBX_MODEL, "challenger", mv2.version)

    # Run B: git SHA only as the `git_sha` param; a non-Delta (local file) input.
    b = dbx.create_run(exp, start_time=t0 + 3_600_000, run_name="train-b").info.run_id
    dbx.log_batch(b, params=[Param("git_sha", SHA_B)], metrics=[Metric("roc_auc", 0.8, t0 + 3_601_000, 0)])
    csv = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), source=CSV_PATH, name="churn_csv")
    dbx.log_inputs(b, datasets=[DatasetInput(csv._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", "training")])])
    dbx.set_terminated(b, "FINISHED", end_time=t0 + 4_000_000)
    # Run C: no git SHA under the default names; `commit_sha` for a configured git_sha_param.
    c = dbx.create_run(exp, start_time=t0 + 7_200_000, run_name="explore-c").info.run_id
    dbx.log_batch(c, params=[Param("commit_sha", SHA_C)])
    dbx.set_terminated(c, "FINISHED", end_time=t0 + 7_300_000)
    # Run D: still running.
    d = dbx.create_run(exp, start_time=t0 + 10_800_000, run_name="still-running").info.run_id
    ws.ids.update(run_b=b, run_c=c, run_d=d)

    # Fabric side: a native run on a OneLake Delta path, and the Databricks model registered from
    # copied artifacts (what a migration notebook does), plus a version whose artifacts lack an MLmodel.
    fexp = fab.create_experiment(FAB_EXPERIMENT, artifact_location=(root / "fab" / "artifacts").as_uri())
    f = fab.create_run(fexp, start_time=t0 + 14_400_000, run_name="rf-native").info.run_id
    fab.log_inputs(f, datasets=[delta_input(None, 3, "training", "f3", path=ONELAKE_PATH)])
    fab.set_terminated(f, "FINISHED", end_time=t0 + 14_500_000)
    ws.ids["fab_run"] = f
    dest = root / "fab" / "artifacts" / "imported" / f"{DBX_MODEL}-v1"
    shutil.copytree(ws.model_artifacts, dest)
    empty = root / "fab" / "artifacts" / "imported" / "no-mlmodel"
    empty.mkdir(parents=True)
    (empty / "README.txt").write_text("artifacts without an MLmodel file")
    fab.create_registered_model(FAB_MODEL)
    fv1 = fab.create_model_version(FAB_MODEL, source=str(dest), tags={"waymark.migrated_from": f"databricks:{DBX_MODEL}/1"})
    fab.create_model_version(FAB_MODEL, source=str(empty))
    fab.set_registered_model_alias(FAB_MODEL, "Production", fv1.version)
    return ws


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, mlflow_template) -> Workspace:
    """The read-only two-platform workspace. Tests must not change it (use `evolving` for that)."""
    # MLflow probes for Databricks credentials and hints about schemas while logging: noise here.
    logging.getLogger("mlflow.utils.databricks_utils").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ws = _build_workspace(tmp_path_factory.mktemp("workspace"), mlflow_template)
    # Logging the model needed the fluent (process-global) URIs; leave them on a scratch store so
    # nothing later in the session can write into this workspace by accident.
    import mlflow

    sink = new_mlflow_store(tmp_path_factory.mktemp("fluent-sink"), mlflow_template)
    mlflow.set_tracking_uri(sink)
    mlflow.set_registry_uri(sink)
    return ws


@dataclass
class Snapshotted:
    config_path: Path
    store_path: Path
    outcomes: dict[str, Any]

    @property
    def store(self):
        from store.db import Store

        return Store(self.store_path)


@pytest.fixture(scope="session")
def snapshotted(workspace, tmp_path_factory) -> Snapshotted:
    """The workspace collected once (full pass, in-process runner) into its own store."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    root = tmp_path_factory.mktemp("snapshotted")
    cfg = write_config(root / "governance.toml", workspace.sources())
    config = load_config(cfg)
    outcomes = {o.source: o for o in snapshot_all(config)}
    return Snapshotted(cfg, config.store_path, outcomes)


@dataclass
class Evolving:
    """A workspace changed between snapshots; `steps` holds each pass's outcome."""
    uri: str
    config_path: Path
    store_path: Path
    ids: dict[str, str]
    steps: dict[str, Any]

    @property
    def store(self):
        from store.db import Store

        return Store(self.store_path)


@pytest.fixture(scope="session")
def evolving(tmp_path_factory, mlflow_template, workspace) -> Evolving:
    """first (full) → unchanged → changed (new run, running run finished, run deleted, alias moved,
    new version) → purged (the deleted run hard-deleted, incremental) → full (CLI `--full --json`)."""
    from mlflow.entities import Param
    from mlflow.tracking._tracking_service.utils import _get_store

    from collectors.config import load_config
    from collectors.runner import snapshot_all

    root = tmp_path_factory.mktemp("evolving")
    uri = new_mlflow_store(root / "dbx", mlflow_template)
    c = client(uri)
    now = int(time.time() * 1000)
    exp = c.create_experiment("evolving", artifact_location=(root / "dbx" / "artifacts").as_uri())
    ids = {}
    ids["r1"] = c.create_run(exp, start_time=now - DAY_MS, run_name="r1").info.run_id
    c.log_batch(ids["r1"], params=[Param("git_sha", SHA_B)])
    c.log_inputs(ids["r1"], datasets=[delta_input(FEATURES, 7, "training", "e7")])
    c.set_terminated(ids["r1"], "FINISHED", end_time=now - DAY_MS + 60_000)
    # Started long before the watermark's look-back window: only the re-poll by id can see it finish.
    ids["long"] = c.create_run(exp, start_time=now - 10 * DAY_MS, run_name="long-running").info.run_id
    ids["doomed"] = c.create_run(exp, start_time=now - DAY_MS + 120_000, run_name="doomed").info.run_id
    c.log_inputs(ids["doomed"], datasets=[delta_input(FEATURES, 6, "training", "e6")])
    c.set_terminated(ids["doomed"], "FINISHED", end_time=now - DAY_MS + 180_000)
    dest = root / "dbx" / "artifacts" / "imported" / "v1"
    shutil.copytree(workspace.model_artifacts, dest)
    c.create_registered_model("evo-model")
    for _ in range(2):
        c.create_model_version("evo-model", source=str(dest), run_id=ids["r1"])
    c.set_registered_model_alias("evo-model", "champion", "1")

    cfg = write_config(root / "governance.toml", [mlflow_source("evo", uri)])
    config = load_config(cfg)
    steps: dict[str, Any] = {}
    steps["first"] = snapshot_all(config)[0]
    steps["unchanged"] = snapshot_all(config)[0]

    ids["new"] = c.create_run(exp, start_time=now, run_name="r-new").info.run_id
    c.set_terminated(ids["new"], "FINISHED", end_time=now + 1000)
    c.set_terminated(ids["long"], "FINISHED", end_time=now)
    c.delete_run(ids["doomed"])
    c.set_registered_model_alias("evo-model", "champion", "2")
    c.create_model_version("evo-model", source=str(dest), run_id=ids["new"])
    steps["changed"] = snapshot_all(config)[0]

    _get_store(uri)._hard_delete_run(ids["doomed"])   # what `mlflow gc` does to a deleted run
    steps["purged"] = snapshot_all(config)[0]
    proc = run_cli("snapshot", "--config", cfg, "--full", "--json")
    assert proc.returncode == 0, proc.stderr
    steps["full"] = json.loads(proc.stdout)["sources"][0]
    return Evolving(uri, cfg, config.store_path, ids, steps)


# The demo workspace, built once per session and shared by the page, browser, lineage, gates,
# checklist and health tests (tests/demo_fixture.py).
from tests.demo_fixture import demo_copy, demo_dir  # noqa: E402,F401  (fixtures)
