"""The config, the policies and the plan are validated by pydantic; every error still names the file,
the line and the field, and its words come from the error's type (collectors/toml_errors.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from collectors.config import ConfigError, load_config
from gates.policy import PolicyError, load_policy

SOURCE = '[[sources]]\nname = "dbx"\nkind = "mlflow"\nplatform = "databricks"\ntracking_uri = "sqlite:///m.db"\n'


def config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "governance.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line "), message
    return message.removeprefix(f"{path}, ")


def policy_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    return str(err.value).removeprefix(f"{path}:")


# -- config: the message names file, line, source and field ------------------------------------------
@pytest.mark.parametrize("extra, expected", [
    ('lookback_seconds = "60"\n', "line 6: source 'dbx': field 'lookback_seconds': must be int, got str '60'"),
    ("colour = 1\n", "line 6: source 'dbx': unknown field 'colour' for kind 'mlflow' (expected name, kind,"),
    ("full_every_hours = 9000\n", "line 6: source 'dbx': field 'full_every_hours': must be between 0 and 8784, got 9000"),
    ('[[sources]]\nname = "aml"\nkind = "azureml"\nplatform = "azureml"\nsubscription_id = "s"\nworkspace = "w"\n',
     "line 6: source 'aml': field 'resource_group': missing (required for kind 'azureml')"),
    ("read_model_origins = 1\n", "line 6: source 'dbx': field 'read_model_origins': must be true or false, got 1"),
], ids=["wrong type", "unknown key", "out of range", "missing required", "bool is not int"])
def test_config_errors_name_the_line_source_and_field(tmp_path, extra, expected):
    assert config_error(tmp_path, SOURCE + extra).startswith(expected)


def test_config_errors_in_store_review_and_slo_tables_name_their_line(tmp_path):
    assert config_error(tmp_path, '[store]\nbackend = "ducklake"\ncatalog = "host=h"\ndata_path = 3\n') == \
        "line 4: [store] field 'data_path': must be a non-empty string, got 3"
    assert config_error(tmp_path, SOURCE + '\n[review]\nlocal_identity = "a"\nallow_unknown_authors = "no"\n') == \
        "line 9: [review] field 'allow_unknown_authors': must be true or false, got 'no'"
    assert config_error(tmp_path, '[[slo]]\nendpoint = "a"\n[[slo]]\nendpoint = "b"\nerror_rate_pct = -2\n') == \
        "line 5: [[slo]] 'b': field 'error_rate_pct': must be >= 0, got -2"


def test_config_words_come_from_the_error_type_not_the_field(tmp_path):
    """The same kind of mistake in two fields, even of two kinds of source, reads the same."""
    bad_bool = config_error(tmp_path, SOURCE + "allow_registry_writes = 'yes'\n")
    other = config_error(tmp_path, '[[sources]]\nname = "uc"\nkind = "databricks"\nplatform = "databricks"\n'
                                   "metrics = 'yes'\n")
    assert bad_bool == "line 6: source 'dbx': field 'allow_registry_writes': must be true or false, got 'yes'"
    assert other == "line 5: source 'uc': field 'metrics': must be true or false, got 'yes'"
    too_big = config_error(tmp_path, SOURCE + "http_timeout_seconds = 601\n")
    too_small = config_error(tmp_path, SOURCE + "retry_timeout_seconds = 0\n")
    assert too_big.endswith("field 'http_timeout_seconds': must be between 1 and 600, got 601")
    assert too_small.endswith("field 'retry_timeout_seconds': must be between 1 and 3600, got 0")


def test_a_secret_is_reported_first_and_never_echoed(tmp_path):
    message = config_error(tmp_path, SOURCE + 'lookback_seconds = "x"\nregistry_uri = "https://r/?sig=S3CR3T"\n')
    assert message.startswith("line 7: source 'dbx': field 'registry_uri': contains the secret query parameter 'sig'")
    assert "S3CR3T" not in message
    message = config_error(tmp_path, '[[sources]]\nname = "x"\nkind = "nope"\n\nclient_secret = "S3CR3T"\n')
    assert message.startswith("line 5: source 'x': field 'client_secret': secrets do not belong in the config file")
    assert "S3CR3T" not in message


# -- policy: the message names file, line and field --------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ('[relative]\nslices = "yes"\n', "2: field 'relative.slices': must be true or false, got 'yes'"),
    ("[required]\ngit_sha = true\nparam = []\n", "3: field 'required.param': unknown field (expected one of artifacts,"),
    ("[relative]\nmargin = 0.0\nmetrics = [\"a\", { name = \"b\", margin = -0.5 }]\n",
     "3: field 'relative.metrics': entry 2, field 'margin': must be >= 0, got -0.5"),
    ('[writeback]\naction = "tag"\n\n[latency]\nmax = 100\n', "4: field 'latency.metric': missing"),
    ("[thresholds]\nroc_auc = { min = 0.9, max = 0.8 }\n", "2: field 'thresholds.roc_auc': min 0.9 is above max 0.8"),
], ids=["wrong type", "unknown key", "out of range", "missing required", "own rule"])
def test_policy_errors_name_the_line_and_field(tmp_path, text, expected):
    assert policy_error(tmp_path, text).startswith(expected)


def test_policy_words_come_from_the_error_type_not_the_field(tmp_path):
    assert policy_error(tmp_path, '[required]\ngit_sha = "yes"\n') == \
        "2: field 'required.git_sha': must be true or false, got 'yes'"
    assert policy_error(tmp_path, '[lineage]\n\nrequire = "yes"\n') == \
        "3: field 'lineage.require': must be true or false, got 'yes'"
    assert policy_error(tmp_path, "[thresholds]\nroc_auc = true\n") == \
        "2: field 'thresholds.roc_auc': must be a finite number, got True"
    assert policy_error(tmp_path, "[latency]\nmetric = \"p95\"\nmax = \"fast\"\n") == \
        "3: field 'latency.max': must be a finite number, got 'fast'"


def test_one_wording_for_config_policy_and_plan(tmp_path):
    """A bool given as a string reads the same in all three files."""
    from checklist.plan import PlanError, parse_matrix

    words = "must be true or false, got 'yes'"
    assert config_error(tmp_path, SOURCE + 'read_model_origins = "yes"\n').endswith(words)
    assert policy_error(tmp_path, '[relative]\nslices = "yes"\n').endswith(words)
    matrix = tmp_path / "decision_matrix.toml"
    matrix.write_text('version = 1\n[[workloads]]\nkind = "k"\nworkload = "w"\ntarget = "t"\nrationale = "r"\n'
                      'in_scope = "yes"\n', encoding="utf-8")
    import tomllib

    with pytest.raises(PlanError) as err:
        parse_matrix(tomllib.loads(matrix.read_text(encoding="utf-8")), matrix)
    assert str(err.value) == f"{matrix}, line 7: [[workloads]] 'k': field 'in_scope': {words}"


# -- the line finder ---------------------------------------------------------------------------------
def test_toml_lines_follow_arrays_of_tables_sub_tables_and_inline_tables():
    from collectors.toml_errors import line_of, toml_lines

    text = ('top = 1\n[[sources]]\nname = "a"\n\n[[sources]]\nname = "b"\nkind = "x"\n'
            '[review]\n[[review.reviewers]]\nidentity = "p"\n[thresholds]\n"roc/auc" = { min = 0.1, max = 0.2 }\n')
    lines = toml_lines(text)
    assert lines[("top",)] == 1 and lines[("sources", 0)] == 2 and lines[("sources", 0, "name")] == 3
    assert lines[("sources", 1)] == 5 and lines[("sources", 1, "kind")] == 7
    assert lines[("review", "reviewers", 0, "identity")] == 10
    assert lines[("thresholds", "roc/auc", "max")] == 12
    assert line_of(lines, ("sources", 1, "platform")) == 5          # not written: the entry's header
    assert line_of(lines, ("nowhere",)) is None
