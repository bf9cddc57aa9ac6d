"""docs/ARCHITECTURE.md lists exactly the members of each lineage enum, one line each, and names
only modules that exist."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lineage import vocabulary
from lineage.conventions import GIT_SHA_TAGS
from lineage.graph import Basis, EdgeKind, GapKind, NodeType

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def section(enum_name: str) -> list[str]:
    """The `- `value` — …` lines under the heading that names the enum."""
    match = re.search(rf"^#{{2,3}} .*\(`{enum_name}`\).*?$(.*?)(?=^#{{2,3}} |\Z)", DOC, re.M | re.S)
    assert match, f"no section for {enum_name}"
    return re.findall(r"^- `([a-z_]+)` — \S", match.group(1), re.M)


def test_the_doc_holds_exactly_the_vocabulary_generated_from_the_enums():
    assert vocabulary.generated_part(DOC) == vocabulary.render(), (
        "docs/ARCHITECTURE.md is out of date: run `python -m lineage.vocabulary --write`")


@pytest.mark.parametrize("enum", [NodeType, EdgeKind, Basis, GapKind], ids=lambda e: e.__name__)
def test_every_member_is_documented_once_and_nothing_else(enum):
    listed = section(enum.__name__)
    assert sorted(listed) == sorted(m.value for m in enum) and len(listed) == len(set(listed))


def test_a_member_without_a_meaning_fails_the_generation(monkeypatch):
    meanings = dict(vocabulary.GAP_KINDS)
    meanings.pop(GapKind.NO_RUN)
    monkeypatch.setattr(vocabulary, "GAP_KINDS", meanings)
    with pytest.raises(KeyError, match="GapKind no_run"):
        vocabulary.render()


def test_write_rewrites_only_the_generated_part(tmp_path):
    stale = DOC.replace("- `no_run` — ", "- `no_run_at_all` — ")
    assert stale != DOC
    doc = tmp_path / "ARCHITECTURE.md"
    doc.write_text(stale, encoding="utf-8")
    assert vocabulary.write(doc) is True
    assert doc.read_text(encoding="utf-8") == DOC
    assert vocabulary.write(doc) is False


def test_the_module_layout_names_only_modules_that_exist():
    table = DOC[DOC.index("| before (lines) | after |"):DOC.index("## Lineage vocabulary")]
    for row in [r for r in table.splitlines()[2:] if r.startswith("|")]:
        before, after = row.strip("|").split("|")[:2]
        package = re.search(r"`(\w+)/", before).group(1)
        named = re.findall(r"`([\w/]+\.py)`", after)     # a module of the same package, or a path
        assert named and all((ROOT / (n if "/" in n else f"{package}/{n}")).is_file() for n in named), row


def test_basis_is_listed_strongest_first():
    assert section("Basis") == [b.value for b in Basis]


def test_forbidden_gaps_named_in_the_doc_match_the_default_policy():
    policy = tomllib.loads((ROOT / "gates" / "default_policy.toml").read_text(encoding="utf-8"))
    tail = DOC[DOC.index("The built-in promotion policy"):]
    named = set(re.findall(r"`([a-z_]+)`", tail)) - {"forbidden_gaps"}
    conflicts = {"origin_conflict", "commit_mismatch", "input_version_conflict", "ambiguous"}
    # Globs (`*_conflict`, `*_mismatch`) are how the policy says "every conflict": the doc says it in words.
    exact = {g for g in policy["lineage"]["forbidden_gaps"] if "*" not in g}
    assert named | conflicts == exact
    assert {"*_conflict", "*_mismatch"} <= set(policy["lineage"]["forbidden_gaps"])


def test_git_sha_tags_match_the_collector():
    from collectors.mlflow_records import GIT_SHA_TAGS as COLLECTED

    assert GIT_SHA_TAGS == COLLECTED
