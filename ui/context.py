"""Which workspace the app shows: `WAYMARK_CONFIG`, else `./governance.toml`, else the embedded demo.

The demo is built once (in a subprocess, so MLflow's process-global state never leaks into the
app) and reused; an interrupted build is rebuilt.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collectors.config import Config, load_config
from demo.layout import demo_config_path, demo_dir, has_demo_stubs
from store import Store

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workspace:
    config: Config
    is_demo: bool

    @property
    def store_path(self) -> Path:
        return self.config.store_path

    @property
    def config_path(self) -> Path:
        assert self.config.path is not None
        return self.config.path


def configured_path() -> Path | None:
    """The config the user asked for, or None when the demo should be shown."""
    env = os.environ.get("WAYMARK_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / "governance.toml"
    return local if local.exists() else None


def load_workspace() -> Workspace | None:
    """The configured workspace, the built demo, or None when the demo still has to be built.

    A store written by an older version is migrated here, once, before any page reads it.
    """
    path = configured_path()
    if path is not None:
        workspace = Workspace(load_config(path), is_demo=False)
    else:
        demo = demo_config_path()
        if demo is None:
            return None
        workspace = Workspace(load_config(demo), is_demo=True)
    _migrate_once(workspace.store_path)
    return workspace


_schema_checked: dict[str, int] = {}


def _migrate_once(store_path: Path) -> None:
    """Check (and if due, migrate) the schema once per store file state, not on every rerun."""
    store = Store(store_path)
    stamp = store.stamp()
    if not stamp:
        return
    if _schema_checked.get(str(store_path)) == stamp:
        return
    store.migrate_if_needed()
    _schema_checked[str(store_path)] = store.stamp()


_PROGRESS = re.compile(r"^\s*(\d+)% (.*)$")


def build_demo(on_progress: Callable[[int, str], None]) -> None:
    """Run `python -m demo build`, relaying its "NN% message" lines; raises with its output on failure."""
    # The demo names its own stores; inherited MLFLOW_* URIs must not redirect any of its calls.
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    proc = subprocess.Popen([sys.executable, "-m", "demo", "build", "--target", str(demo_dir())], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _PROGRESS.match(line)
        if match:
            on_progress(int(match.group(1)), match.group(2))
        tail = (tail + [line.rstrip()])[-20:]
    if proc.wait() != 0:
        raise RuntimeError("building the demo workspace failed:\n" + "\n".join(tail))


def run_snapshot(config_path: Path, source: str | None = None, full: bool = False) -> tuple[int, str]:
    """Take a snapshot through the CLI (a separate process holds the write lock only briefly)."""
    cmd = [sys.executable, "-m", "collectors", "snapshot", "--config", str(config_path), "--json"]
    if source:
        cmd += ["--source", source]
    if full:
        cmd.append("--full")
    env = dict(os.environ)
    if has_demo_stubs(config_path):   # the stubs are imported only for a demo, never for a real config
        from demo import azure_demo, databricks_demo

        # The demo's Databricks side is a local stub workspace: started here (once, daemon thread) and
        # handed to the subprocess through the env vars Databricks unified auth reads.
        env.update(databricks_demo.stub_env(config_path))
        # The demo's Azure ML side is served on the port recorded at build time.
        azure_demo.ensure_demo_stub(Path(config_path).parent)
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600, env=env)
    return done.returncode, done.stdout if done.stdout.strip() else done.stderr
