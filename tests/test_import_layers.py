"""Layering rules that imports alone can break: checked in a fresh interpreter, so modules already
imported by other tests cannot hide a violation."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_the_app_context_does_not_load_the_demo_stubs():
    loaded = _modules_after_import("ui.context")
    assert not loaded & {"demo.azure_stub", "demo.databricks_demo", "demo.databricks_stub", "demo.build"}
