"""A demo workspace built once per test session (the real demo builder: real MLflow stores,
real collector), shared by the page and browser tests. Tests that write copy it first."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

_built: dict[str, Path] = {}


def built_demo(root: Path) -> Path:
    """Build (once) and return the demo folder; its governance.toml points at real sqlite stores."""
    if "dir" not in _built:
        from demo.build import build

        target = root / "demo"
        build(target)
        _built["dir"] = target
    return _built["dir"]


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    return built_demo(tmp_path_factory.getbasetemp() / "shared-demo")


@pytest.fixture()
def demo_copy(demo_dir, tmp_path) -> Path:
    """A private copy (the MLflow stores stay shared: they are only read)."""
    target = tmp_path / "ws"
    target.mkdir()
    shutil.copy2(demo_dir / "waymark.duckdb", target / "waymark.duckdb")
    config = (demo_dir / "governance.toml").read_text(encoding="utf-8")
    (target / "governance.toml").write_text(config, encoding="utf-8")
    # The stub workspaces' fixtures (read only): Databricks, and Azure ML with its recorded port.
    for side in ("databricks", "azure"):
        if (demo_dir / side).is_dir():
            shutil.copytree(demo_dir / side, target / side)
    return target
