"""Where the demo lives on disk and how to recognise it, without importing its stub servers: the
app's production path asks these questions and must not load the demo's fixtures to do so."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
READY_MARKER = ".ready"
# The snapshot passes the build took, per stage and source: the demo's expected counts derive from it.
PASSES_FILE = "passes.json"
# Beside a demo config: the Databricks stub workspace's fixture, and where the Azure stub listens.
DATABRICKS_FIXTURE = Path("databricks") / "stub-workspace.json"
AZURE_STUB_STATE = Path("azure") / "stub.json"


def demo_dir() -> Path:
    """Where the demo lives; WAYMARK_DEMO_DIR lets tests and read-only checkouts put it elsewhere."""
    return Path(os.environ.get("WAYMARK_DEMO_DIR") or DEFAULT_DEMO_DIR)


def demo_config_path(target: Path | None = None) -> Path | None:
    """The demo's config if a complete demo is there, else None."""
    target = target or demo_dir()
    return target / "governance.toml" if (target / READY_MARKER).exists() else None


def has_demo_stubs(config_path: Path) -> bool:
    """Whether this config's folder holds a demo stub (a Databricks fixture or a served Azure one)."""
    folder = Path(config_path).parent
    return (folder / DATABRICKS_FIXTURE).resolve().is_file() or (folder / AZURE_STUB_STATE).exists()
