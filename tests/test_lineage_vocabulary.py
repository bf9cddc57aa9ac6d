"""docs/lineage-vocabulary.md lists exactly the members of each lineage enum, one line each."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lineage.conventions import GIT_SHA_TAGS
from lineage.graph import Basis, EdgeKind, GapKind, NodeType

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "lineage-vocabulary.md").read_text(encoding="utf-8")


def section(enum_name: str) -> list[str]:
    """The `- `value` — …` lines under the heading that names the enum."""
    match = re.search(rf"^## .*\(`{enum_name}`\).*?$(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"no section for {enum_name}"
    return re.findall(r"^- `([a-z_]+)` — \S", match.group(1), re.M)


@pytest.mark.parametrize("enum", [NodeType, EdgeKind, Basis, GapKind], ids=lambda e: e.__name__)
def test_every_member_is_documented_once_and_nothing_else(enum):
    listed = section(enum.__name__)
    assert sorted(listed) == sorted(m.value for m in enum)
    assert len(listed) == len(set(listed))


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
    from collectors.mlflow_source import GIT_SHA_TAGS as COLLECTED

    assert GIT_SHA_TAGS == COLLECTED
