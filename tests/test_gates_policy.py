"""Gate policies and the review config: the default policy's thresholds, a policy per model from the
policy folder, and errors that name the file, the line and the field."""
from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.test_gates import policy_file


def test_default_policy_has_the_seed_thresholds():
    from gates.policy import DEFAULT_POLICY, load_policy

    policy = load_policy(DEFAULT_POLICY)
    assert {(b.metric, b.min) for b in policy.thresholds} == {("roc_auc", 0.80), ("f1_score", 0.72), ("precision", 0.70)}
    assert policy.require_git_sha and policy.lineage_required
    assert policy.baseline_for("databricks").aliases == ("champion", "Production", "prod")
    assert policy.baseline_for("fabric").aliases == ("champion", "Production", "prod")
    assert policy.baseline_for("azureml").aliases == () and policy.baseline_for("azureml").traffic
    # Conflicting evidence blocks by default, by name and by the *_conflict / *_mismatch globs.
    for gap in ("input_version_conflict", "commit_mismatch", "no_run", "invalid_git_sha", "registry_run_conflict"):
        assert policy.forbids(gap), gap
    assert not policy.forbids("alias_moved_after")


@pytest.mark.parametrize("text, line, needle", [
    ("[thresholds]\nroc_auc = 0.8\nf1_score = \"high\"\n", 3, "field 'thresholds.f1_score': must be a finite number"),
    ("[thresholds]\nroc_auc = { min = 0.8, mni = 0.1 }\n", 2, "field 'thresholds.roc_auc.mni': unknown field"),
    ("[policy]\nbaseline_alias = \"Production\"\n\n[relativ]\nmargin = 0.1\n", 4, "field 'relativ': unknown table"),
    ("[relative]\nmargin = -0.1\n", 2, "field 'relative.margin': must be >= 0"),
    ("[lineage]\nrequire = true\nforbidden_gaps = [\"no_git_sha\", \"no_sha\"]\n", 3, "unknown gap kind 'no_sha'"),
    ("[thresholds]\nroc_auc = 0.8\nroc_auc = 0.9\n", 3, "not valid TOML"),
    ("[latency]\nmetric = \"p95_ms\"\n", 1, "field 'latency.max': missing"),
    ("[writeback]\naction = \"promote\"\n", 2, "field 'writeback.action': must be one of alias, tag"),
])
def test_bad_policy_errors_name_file_line_and_field(tmp_path, text, line, needle):
    from gates.policy import PolicyError, load_policy

    path = policy_file(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}:{line}:"), str(err.value)
    assert needle in str(err.value)


def test_policy_per_model_from_policy_dir(tmp_path):
    from gates.policy import DEFAULT_POLICY, policy_path_for

    (tmp_path / "policies").mkdir()
    own = policy_file(tmp_path / "policies", "[thresholds]\nroc_auc = 0.9\n", "churn-gates.toml")
    assert policy_path_for("churn-gates", tmp_path / "policies") == own
    assert policy_path_for("other", tmp_path / "policies") == DEFAULT_POLICY
    default = policy_file(tmp_path / "policies", "[thresholds]\nroc_auc = 0.7\n", "default.toml")
    assert policy_path_for("other", tmp_path / "policies") == default


def test_review_config_is_parsed_and_validated(tmp_path):
    from collectors.config import ConfigError, load_config, parse_config

    config = parse_config({"review": {"local_identity": "a@x", "policy_dir": "pol",
                                      "reviewers": [{"identity": "a@x", "models": ["churn-*"]}]}}, tmp_path / "g.toml")
    assert config.review.local_identity == "a@x" and config.review.policy_dir == tmp_path / "pol"
    assert config.review.reviewers[0].models == ("churn-*",)
    assert parse_config({}).review.reviewers == ()   # optional: old configs keep working
    for raw, needle in (({"review": {"local_identiy": "a"}}, "[review]: unknown field 'local_identiy'"),
                        ({"review": {"reviewers": [{"identity": "a", "models": "churn-*"}]}},
                         "[[review.reviewers]] #1 (a): field 'models'"),
                        ({"review": {"reviewers": [{"models": ["*"]}]}}, "field 'identity'")):
        bad = tmp_path / "bad.toml"
        with pytest.raises(ConfigError) as err:
            parse_config(raw, bad)
        assert str(bad) in str(err.value) and needle in str(err.value), str(err.value)
    assert load_config(REPO / "governance.example.toml").review.reviewers == ()

