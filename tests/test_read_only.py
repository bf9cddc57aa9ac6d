"""Reading is read-only: every page (AppTest) and every read-only CLI (subprocesses), run from a
fresh working folder on the demo workspace, leave that folder, the demo folder (but for the store)
and the repository tree (but for data/) exactly as they were. MLflow's own side files — `mlflow.db`,
`mlruns/`, `.mlflow` caches — are what a client built without explicit URIs leaves behind."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO, cli_env

APP = str(REPO / "app.py")
PAGES = sorted(str(p.relative_to(REPO)) for p in (REPO / "pages").glob("*.py"))
MLFLOW_SIDE_FILES = ("mlflow.db", "mlruns", ".mlflow", "mlartifacts")
UC_MODEL = "churn.ml.churn_gbm"
# Not part of what the code under test writes: the interpreter's bytecode caches and pytest's own.
IGNORED_PARTS = {".git", "__pycache__", ".pytest_cache", ".hypothesis"}


def tree(root: Path, skip: set[str] = frozenset()) -> dict[str, tuple[int, int]]:
    """relative path → (size, mtime_ns) of every file and folder under root (folders as size -1)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if d not in IGNORED_PARTS and str(rel_dir / d) not in skip]
        for d in dirnames:
            out[str(rel_dir / d) + "/"] = (-1, 0)
        for f in filenames:
            if str(rel_dir / f) in skip:
                continue
            st = (Path(dirpath) / f).stat()
            out[str(rel_dir / f)] = (st.st_size, st.st_mtime_ns)
    return out


def assert_unchanged(before: dict, after: dict, where: str) -> None:
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k] and not k.endswith("/"))
    assert not (created or removed or changed), f"{where}: created {created}, removed {removed}, changed {changed}"


@pytest.fixture()
def workspace(demo_copy, tmp_path, monkeypatch):
    """The demo copy with its Databricks stub reachable (so the Unity Catalog registry is really
    asked), a fresh empty working folder as cwd, and the state of all three folders before."""
    from demo.databricks_demo import stub_env

    config = demo_copy / "governance.toml"
    env = stub_env(config)
    assert env, "the demo workspace has a Databricks stub fixture"
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    store_files = {p.name for p in demo_copy.iterdir() if p.name.startswith("waymark.duckdb")}
    skip_demo = store_files | {"waymark.duckdb.wal", "waymark.duckdb.lock"}
    state = {"cwd": tree(cwd), "demo": tree(demo_copy, skip_demo), "repo": tree(REPO, {"data"})}
    return {"config": config, "env": env, "cwd": cwd, "demo": demo_copy, "skip_demo": skip_demo, "state": state}


def check(ws) -> None:
    for name in MLFLOW_SIDE_FILES:
        assert not (ws["cwd"] / name).exists(), f"{name} created in the working folder"
        assert not (REPO / name).exists(), f"{name} created in the repository"
    assert_unchanged(ws["state"]["cwd"], tree(ws["cwd"]), "working folder")
    assert_unchanged(ws["state"]["demo"], tree(ws["demo"], ws["skip_demo"]), "demo folder (outside the store)")
    assert_unchanged(ws["state"]["repo"], tree(REPO, {"data"}), "repository (outside data/)")


def test_every_page_reads_without_writing(workspace, monkeypatch):
    monkeypatch.setenv("WAYMARK_CONFIG", str(workspace["config"]))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        if page == "pages/promotion_gates.py":
            # A Unity Catalog version: its MLmodel is looked up through the databricks source's
            # registry — the path that used to create mlflow.db in the working folder.
            box = at.selectbox[0]
            box.select_index(next(i for i, o in enumerate(box.options) if o.startswith(f"{UC_MODEL} v4")))
            at.run()
            assert not at.exception, at.exception
            criteria = at.dataframe[1].value.set_index("criterion")
            assert "artifact:MLmodel" in criteria.index
    check(workspace)


def run(module: str, *args: str, ws) -> subprocess.CompletedProcess:
    env = cli_env({**ws["env"], "PYTHONPATH": str(REPO)})
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ws["cwd"], env=env, capture_output=True,
                          text=True, timeout=300)


def test_every_read_only_cli_reads_without_writing(workspace):
    cfg = str(workspace["config"])
    calls = [
        ("collectors", "--help"), ("collectors", "snapshot", "--help"),
        ("lineage", "--help"), ("lineage", "trace", "--help"), ("lineage", "impact", "--help"),
        ("lineage", "trace", "model:churn_model@Production", "--config", cfg, "--json"),
        ("lineage", "trace", f"model:{UC_MODEL}@champion", "--config", cfg),
        ("lineage", "trace", "endpoint:churn-aml", "--config", cfg, "--json"),
        ("lineage", "impact", "table:churn.gold.features", "--config", cfg),
        ("gates", "--help"), ("gates", "check", "--help"), ("gates", "verify", "--help"),
        ("gates", "check", f"model:{UC_MODEL}/4", "--config", cfg, "--json"),
        ("gates", "check", "model:churn_model/3", "--config", cfg, "--platform", "fabric"),
        ("gates", "check", "model:churn-model/3", "--config", cfg),
        ("gates", "verify", "--config", cfg),
    ]
    # Independent read-only processes: run side by side (each is mostly interpreter start-up).
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda call: run(call[0], *call[1:], ws=workspace), calls))
    for (module, *args), proc in zip(calls, procs):
        assert proc.returncode in (0, 1), (module, args, proc.returncode, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (module, args, proc.stderr[-2000:])
    uc = procs[calls.index(("gates", "check", f"model:{UC_MODEL}/4", "--config", cfg, "--json"))]
    import json

    body = json.loads(uc.stdout)
    mlmodel = next(c for c in body["criteria"] if c["name"] == "artifact:MLmodel")
    assert "dbx-uc" in mlmodel["evidence"], mlmodel
    check(workspace)
