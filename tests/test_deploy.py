"""The scheduled-collection and hosting files in deploy/ and the Dockerfile: each names a command,
a script and a config that exist here, and the job wrapper really keeps a store between runs."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from collectors.__main__ import build_parser
from collectors.config import load_config
from tests.conftest import REPO, cli_env, table_dump, write_config

DEPLOY = REPO / "deploy"


def _collector_argv(argv: list[str]) -> tuple[Path, list[str]]:
    """(the wrapper script, the collector arguments after `--`) of a job command line."""
    assert argv[:1] == ["deploy/collect_job.py"] or argv[0].endswith("collect_job.py"), argv
    split = argv.index("--")
    assert "--remote-store" in argv[:split]
    return Path(argv[0]), argv[split + 1:]


def _check_collector_args(collector: list[str], repo_path_of) -> None:
    args = build_parser().parse_args(collector)          # the CLI accepts the job's arguments as they are
    assert args.command == "snapshot"
    config_file = repo_path_of(args.config)
    assert config_file.is_file(), f"{args.config} -> {config_file} does not exist"
    config = load_config(config_file)                    # and the config loads as shipped
    for name in args.source or []:
        config.source(name)


def test_github_actions_workflow_runs_the_collector_once_at_a_time():
    doc = yaml.safe_load((DEPLOY / "github-actions" / "collect.yml").read_text())
    triggers = doc[True] if True in doc else doc["on"]    # YAML 1.1 reads the key `on` as True
    assert triggers["schedule"][0]["cron"]
    assert doc["concurrency"]["cancel-in-progress"] is False
    steps = doc["jobs"]["collect"]["steps"]
    run = next(s["run"] for s in steps if s.get("name") == "Snapshot every source")
    argv = shlex.split(run)
    assert argv[0] == "python"
    script, collector = _collector_argv(argv[1:])
    assert (REPO / script).is_file()
    _check_collector_args(collector, lambda p: REPO / p)
    assert any("pip install -r requirements.txt" in s.get("run", "") for s in steps)


def test_databricks_bundle_job_runs_the_collector_once_at_a_time():
    bundle_dir = DEPLOY / "databricks"
    doc = yaml.safe_load((bundle_dir / "databricks.yml").read_text())
    job = doc["resources"]["jobs"]["waymark_collect"]
    assert job["max_concurrent_runs"] == 1 and job["schedule"]["quartz_cron_expression"]
    task = job["tasks"][0]["spark_python_task"]
    script = (bundle_dir / task["python_file"]).resolve()
    assert script == (DEPLOY / "collect_job.py").resolve()
    params = task["parameters"]
    split = params.index("--")
    assert params[params.index("--remote-store") + 1].startswith("${var.")
    synced_root = "/Workspace${workspace.file_path}/"     # the bundle syncs the repository root there
    assert (bundle_dir / doc["sync"]["paths"][0]).resolve() == REPO.resolve()
    _check_collector_args(params[split + 1:], lambda p: REPO / p.removeprefix(synced_root))


def test_container_apps_job_runs_the_collector_once_at_a_time():
    doc = yaml.safe_load((DEPLOY / "azure" / "collector-job.yaml").read_text())
    trigger = doc["properties"]["configuration"]["scheduleTriggerConfig"]
    assert trigger["parallelism"] == 1 and trigger["cronExpression"]
    container = doc["properties"]["template"]["containers"][0]
    argv = container["command"]
    assert argv[0] == "python"
    script, collector = _collector_argv(argv[1:])
    assert (REPO / script).is_file()
    _check_collector_args(collector, lambda p: REPO / p.removeprefix("/app/"))   # WORKDIR /app in the image
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert argv[argv.index("--remote-store") + 1] in mounts


def _dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_is_slim_non_root_healthchecked_and_copies_every_package():
    instructions = _dockerfile()
    args = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in instructions if k == "ARG" and "=" in v}
    base = next(v for k, v in instructions if k == "FROM")
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base.startswith("python:3.11") and base.endswith("-slim")
    user = [v for k, v in instructions if k == "USER"][-1].strip()
    assert user not in ("0", "root")
    health = next(v for k, v in instructions if k == "HEALTHCHECK")
    assert "/_stcore/health" in health
    assert any(k == "ENV" and "WAYMARK_CONFIG=" in v for k, v in instructions)
    copied = set()
    for k, v in instructions:
        if k == "COPY":
            *sources, _dest = v.split()
            for src in sources:
                assert (REPO / src).exists(), f"COPY {src}: not in the repository"
                copied.add(src.rstrip("/"))
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages <= copied, f"packages missing from the image: {packages - copied}"
    assert "app.py" in copied and "requirements.txt" in copied


def _container_runtime() -> str | None:
    return shutil.which("podman") or shutil.which("docker")


def test_container_image_builds_and_reports_healthy(tmp_path):
    runtime = _container_runtime()
    if runtime is None:
        pytest.skip("no container runtime (podman/docker) on this machine; Debian's podman can be installed, "
                    "but its base image python:3.11-slim comes from a container registry this machine cannot reach")
    pulled = subprocess.run([runtime, "pull", "python:3.11-slim"], capture_output=True, text=True, timeout=120)
    if pulled.returncode != 0:
        pytest.skip(f"base image python:3.11-slim cannot be pulled here: {pulled.stderr.strip()[:200]}")
    build = subprocess.run([runtime, "build", "-t", "waymark-test", str(REPO)], capture_output=True, text=True,
                           timeout=1200)
    assert build.returncode == 0, build.stderr[-2000:]
    inspect = subprocess.run([runtime, "image", "inspect", "waymark-test", "--format", "{{.Config.User}}"],
                             capture_output=True, text=True, timeout=60)
    assert inspect.stdout.strip() == "10001"


def _job(remote: Path, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEPLOY / "collect_job.py"), "--remote-store", str(remote), "--",
                           "snapshot", "--config", str(config), "--json"],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300)


def test_job_wrapper_keeps_the_store_between_throwaway_runs(workspace, tmp_path):
    remote = tmp_path / "share"
    remote.mkdir()
    sources = workspace.sources()[:1]
    # Two "machines": each run starts from an empty local disk, as a scheduler's container does.
    first = write_config(tmp_path / "run1" / "governance.toml", sources)
    assert _job(remote, first).returncode == 0
    assert (remote / "waymark.duckdb").is_file()
    second = write_config(tmp_path / "run2" / "governance.toml", sources)
    proc = _job(remote, second)
    assert proc.returncode == 0, proc.stderr
    snapshots = table_dump(remote / "waymark.duckdb", "snapshots")
    assert len(snapshots) == 2                    # the second run continued the first run's history
    assert not list(remote.glob("*.incoming"))    # the copy back was renamed into place


def test_job_wrapper_with_a_bad_config_leaves_the_remote_store_alone(workspace, tmp_path):
    remote = tmp_path / "share"
    remote.mkdir()
    (remote / "waymark.duckdb").write_bytes(b"previous store")
    bad = tmp_path / "governance.toml"
    bad.write_text('[[sources]]\nname = "x"\nkind = "nope"\n')
    proc = _job(remote, bad)
    assert proc.returncode == 2 and "config error" in proc.stderr
    assert (remote / "waymark.duckdb").read_bytes() == b"previous store"
