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


def test_the_checklist_demo_and_gates_modules_import_each_other_in_one_direction():
    import networkx as nx

    graph = _import_graph(("checklist", "demo", "gates"))
    named = [{"checklist.plan", "checklist.rules"}, {"demo.build", "demo.azure_stub", "demo.azure_demo"},
             {"gates.evaluate", "gates.writeback", "gates.reviews"}]
    cycles = [set(c) for c in nx.simple_cycles(graph)]
    assert not [c for c in cycles if any(len(c & pair) >= 2 for pair in named)], cycles
