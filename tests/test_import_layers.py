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
    assert not loaded & {"demo.azure_stub", "demo.azure_demo", "demo.azure_fixtures", "demo.databricks_demo",
                          "demo.databricks_stub", "demo.build"}


def _import_graph(packages: tuple[str, ...]):
    """Module -> modules it imports, counting imports inside functions too (a lazy import that only
    hides a cycle is still a cycle)."""
    import ast

    import networkx as nx

    files = {f"{p}.{f.stem}".removesuffix(".__init__"): f for p in packages for f in (ROOT / p).glob("*.py")}
    graph = nx.DiGraph()
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph.add_edges_from((module, t) for t in targets if t in files and t != module and "." in t)
    return graph


# Every folder of project code; a new one must be added here (the test below fails when one is missing).
PACKAGES = ("bench", "checklist", "collectors", "demo", "deploy", "gates", "health", "lineage", "pages", "store", "ui")


def test_the_package_list_covers_every_folder_of_project_code():
    folders = {p.parent.name for p in ROOT.glob("*/*.py")} - {"tests"}
    assert folders == set(PACKAGES)


def test_no_module_of_the_project_imports_itself_back():
    """No cycle anywhere, lazy and type-checking imports included: the ones broken so far (checklist
    plan↔rules, demo build↔azure stub, gates evaluate→writeback→reviews→evaluate, gates
    evaluate↔baseline, collectors.config↔gates.identity, store.db↔store.ducklake) stay broken."""
    import networkx as nx

    graph = _import_graph(PACKAGES)
    assert {"gates.baseline", "store.ducklake", "gates.identity"} <= set(graph)   # the graph sees them
    assert list(nx.simple_cycles(graph)) == []


def test_domain_packages_do_not_load_streamlit():
    """Endpoint health, the gates, the lineage and the checklist are domain code: a CLI or a job
    uses them without the UI framework."""
    for module in ("health.status", "health.series", "gates.evaluate", "lineage.build", "checklist.progress"):
        assert "streamlit" not in _modules_after_import(module), module
