"""Promotion gates on real MLflow stores (filled by the real client, collected by the real collector):
the shared workspace (`gates_ws`, `ws_copy`) and helpers, evaluation (pass / fail / unknown / no
Production / slices / artifacts / a git SHA that is no commit) and the gate CLI. Policies and the review
config: test_gates_policy.py; reviews, the hash-chained log and write-back: test_gates_reviews.py."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env, client, delta_input, mlflow_source, new_mlflow_store, sha, write_config

MODEL = "churn-gates"
FRESH = "fresh-model"
AUTHOR = "carol@contoso.com"       # trains every run
REVIEWER = "alice@contoso.com"     # may review churn-*
OUTSIDER = "dave@contoso.com"      # may review only other-*

BASE = {"roc_auc": 0.85, "f1_score": 0.75, "precision": 0.74, "recall": 0.72, "recall/smb": 0.70}
GOOD = {"roc_auc": 0.87, "f1_score": 0.76, "precision": 0.75, "recall": 0.73, "recall/smb": 0.71}
BAD = {"roc_auc": 0.791, "f1_score": 0.708, "precision": 0.689, "recall": 0.70, "recall/smb": 0.69}
NAN_F1 = {"roc_auc": 0.86, "f1_score": float("nan"), "precision": 0.75, "recall": 0.73}
SLICE_DROP = {"roc_auc": 0.88, "f1_score": 0.77, "precision": 0.76, "recall": 0.74, "recall/smb": 0.60}

REVIEW_TOML = f"""
[review]
local_identity = "{REVIEWER}"
[[review.reviewers]]
identity = "{REVIEWER}"
models = ["churn-*"]
[[review.reviewers]]
identity = "{AUTHOR}"
models = ["*"]
[[review.reviewers]]
identity = "{OUTSIDER}"
models = ["other-*"]
"""


@dataclass
class GatesWs:
    root: Path
    uri: str
    config_path: Path
    store_path: Path
    runs: dict[str, str]

    @property
    def config(self):
        from collectors.config import load_config

        return load_config(self.config_path)

    @property
    def store(self):
        from store.db import Store

        return Store(self.store_path)


def _write(root: Path, uri: str, allow_writes: bool = False) -> Path:
    cfg = write_config(root / "governance.toml", [mlflow_source("dbx", uri, "databricks",
                                                                allow_registry_writes=allow_writes)])
    cfg.write_text(cfg.read_text(encoding="utf-8") + REVIEW_TOML, encoding="utf-8")
    return cfg


@pytest.fixture(scope="module")
def gates_ws(tmp_path_factory, mlflow_template) -> GatesWs:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.entities import Metric, Param
    from sklearn.linear_model import LogisticRegression

    from collectors.config import load_config
    from collectors.runner import snapshot_all

    root = tmp_path_factory.mktemp("gates")
    uri = new_mlflow_store(root / "dbx", mlflow_template)
    c = client(uri)
    exp = c.create_experiment("/churn/gates", artifact_location=(root / "dbx" / "artifacts").as_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    runs: dict[str, str] = {}

    def train(label: str, metrics: dict[str, float], register_as: str, git: bool = True, version: int | None = 7):
        tags = {"mlflow.user": AUTHOR, "owner": "churn-team"}
        run = c.create_run(exp, run_name=label, tags=tags).info.run_id
        params = [Param("max_depth", "4")]
        if git:
            params.append(Param("git_sha", sha(label)))
        if version is not None:
            params.append(Param("delta_feature_version", str(version)))
        c.log_batch(run, params=params, metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
        c.log_inputs(run, datasets=[delta_input("main.churn.features", version, "training", f"d-{label}")])
        with mlflow.start_run(run_id=run):
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        c.set_terminated(run, "FINISHED")
        mlflow.register_model(f"models:/{info.model_id}", register_as)
        runs[label] = run

    train("base", BASE, MODEL)              # v1 — Production
    train("good", GOOD, MODEL)              # v2 — passes
    train("bad", BAD, MODEL)                # v3 — roc_auc 0.791 (the seed's failing story)
    train("nan", NAN_F1, MODEL, git=False)  # v4 — NaN f1, no git SHA
    train("slice", SLICE_DROP, MODEL)       # v5 — better overall, worse on the smb slice
    train("fresh", GOOD, FRESH)             # fresh-model v1 — no Production yet
    c.set_registered_model_alias(MODEL, "Production", "1")
    cfg = _write(root, uri)
    outcomes = snapshot_all(load_config(cfg))
    assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
    return GatesWs(root, uri, cfg, load_config(cfg).store_path, runs)


@pytest.fixture()
def ws_copy(gates_ws, tmp_path) -> GatesWs:
    """A private copy of the MLflow db and the store (artifacts stay shared: only read)."""
    (tmp_path / "dbx").mkdir()
    shutil.copy2(gates_ws.root / "dbx" / "mlflow.db", tmp_path / "dbx" / "mlflow.db")
    shutil.copy2(gates_ws.store_path, tmp_path / "waymark.duckdb")
    uri = f"sqlite:///{tmp_path / 'dbx' / 'mlflow.db'}"
    cfg = _write(tmp_path, uri)
    return GatesWs(tmp_path, uri, cfg, tmp_path / "waymark.duckdb", gates_ws.runs)


def policy_file(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def gate(ws: GatesWs, version: str, policy=None, name: str = MODEL, lister=True):
    from gates.artifacts import mlflow_artifact_lister
    from gates.evaluate import Context, evaluate
    from gates.policy import DEFAULT_POLICY, load_policy

    policy = policy or load_policy(DEFAULT_POLICY)
    return evaluate(Context(ws.store), policy, "dbx", name, version,
                    artifact_lister=mlflow_artifact_lister(ws.config) if lister else None)


def by_name(result) -> dict:
    return {c.name: c for c in result.criteria}


def gates_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gates", *map(str, args)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=180)


def _policy():
    from gates.policy import DEFAULT_POLICY, load_policy

    return load_policy(DEFAULT_POLICY)


# -- evaluation --------------------------------------------------------------------------------------
def test_candidates_are_versions_newer_than_production(gates_ws):
    from gates.evaluate import Context, candidates

    frame = candidates(Context(gates_ws.store), lambda name: _policy())
    assert set(zip(frame["name"], frame["version"])) == {(MODEL, "2"), (MODEL, "3"), (MODEL, "4"), (MODEL, "5"),
                                                         (FRESH, "1")}
    assert set(frame.loc[frame["name"] == MODEL, "baseline_version"]) == {"1"}
    assert frame.loc[frame["name"] == FRESH, "baseline_version"].isna().all()
    assert set(frame.loc[frame["name"] == FRESH, "baseline_state"]) == {"first_promotion"}


def test_a_better_candidate_passes_every_criterion_with_evidence(gates_ws):
    result = gate(gates_ws, "2")
    assert result.status == "PASS", [(c.name, c.status, c.actual, c.evidence) for c in result.blocking]
    c = by_name(result)
    assert c["threshold:roc_auc"].actual == "0.87" and c["threshold:roc_auc"].required == "≥ 0.8"
    assert c["relative:roc_auc"].status == "PASS" and "baseline 0.85" in c["relative:roc_auc"].required
    assert "runs.metrics['roc_auc'] of run good" in c["threshold:roc_auc"].evidence
    assert f"snapshot {result.snapshot_ids['dbx']}" in c["threshold:roc_auc"].evidence
    assert c["artifact:MLmodel"].status == "PASS" and c["lineage:versioned_inputs"].actual == "main.churn.features@7"
    assert result.baseline.version == "1" and result.baseline.run_name == "base"
    assert result.run.authors == [AUTHOR]


def test_metric_criteria_carry_the_numbers_they_were_decided_on(gates_ws, tmp_path):
    """Readers (the page's threshold rules, the JSON) take numbers from the criterion, never parse
    its words: a one-sided bound is charted at its exact value, a range is not charted."""
    from gates.policy import load_policy
    from ui.gates_loaders import thresholds_frame

    policy = load_policy(policy_file(tmp_path, "[thresholds]\nroc_auc = { min = 0.8123456789 }\n"
                                               "precision = { min = 0.5, max = 0.99 }\n"
                                               "[relative]\nmetrics = [{ name = \"roc_auc\", margin = 0.01 }]\n"))
    result = gate(gates_ws, "2", policy)
    c = by_name(result)
    auc = c["threshold:roc_auc"]
    assert (auc.value, auc.min, auc.max) == (0.87, 0.8123456789, None) and auc.required == "≥ 0.812346"
    assert (c["threshold:precision"].min, c["threshold:precision"].max) == (0.5, 0.99)
    rel = c["relative:roc_auc"]
    assert rel.baseline == 0.85 and rel.min == 0.85 - 0.01 and rel.value == 0.87 and rel.max is None
    assert c["registry:status"].value is None and c["registry:status"].min is None
    assert thresholds_frame(result).to_dict("records") == [{"metric": "roc_auc", "threshold": 0.8123456789}]
    assert result.to_json()["criteria"][0].keys() >= {"value", "min", "max", "baseline"}


def test_the_seed_failure_fails_on_thresholds_and_against_production(gates_ws):
    result = gate(gates_ws, "3")
    assert result.status == "FAIL"
    c = by_name(result)
    assert c["threshold:roc_auc"].status == "FAIL" and c["threshold:roc_auc"].actual == "0.791"
    assert {"threshold:roc_auc", "threshold:f1_score", "threshold:precision", "relative:roc_auc"} <= \
        {x.name for x in result.blocking}
    assert c["required:git_sha"].status == "PASS"   # only the metrics block


def test_nan_metric_is_unknown_and_fails_unless_allowed(gates_ws, tmp_path):
    from gates.policy import DEFAULT_POLICY, load_policy

    result = gate(gates_ws, "4")
    c = by_name(result)
    assert c["threshold:f1_score"].status == "UNKNOWN" and c["threshold:f1_score"].actual == "NaN"
    assert c["relative:f1_score"].status == "UNKNOWN" and c["threshold:f1_score"].blocking
    assert c["required:git_sha"].status == "FAIL" and c["lineage:git_sha"].status == "FAIL"
    assert "no_git_sha" in c["lineage:gaps"].actual
    assert result.status == "FAIL"
    # A policy that tolerates an unknown f1 (and needs no git SHA) lets the same version pass.
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    text = text.replace("allow_unknown = []", 'allow_unknown = ["*:f1_score"]').replace("git_sha = true", "git_sha = false")
    text = text.replace('forbidden_gaps = ["no_git_sha", ', "forbidden_gaps = [").replace("require = true", "require = false")
    relaxed = gate(gates_ws, "4", load_policy(policy_file(tmp_path, text)))
    assert by_name(relaxed)["threshold:f1_score"].status == "UNKNOWN"
    assert not by_name(relaxed)["threshold:f1_score"].blocking
    assert relaxed.status == "PASS", [(x.name, x.status) for x in relaxed.blocking]


def test_a_missing_metric_is_unknown_not_a_crash(gates_ws, tmp_path):
    from gates.policy import load_policy

    policy = load_policy(policy_file(tmp_path, "[thresholds]\nlog_loss = { max = 0.4 }\n[latency]\n"
                                               "metric = \"latency_p95_ms\"\nmax = 120\n"))
    result = gate(gates_ws, "2", policy)
    c = by_name(result)
    assert c["threshold:log_loss"].status == "UNKNOWN" and c["threshold:log_loss"].actual == "not logged"
    assert c["latency:latency_p95_ms"].status == "UNKNOWN" and result.status == "FAIL"


def test_a_slice_regression_fails_although_the_headline_metric_improved(gates_ws, tmp_path):
    from gates.policy import load_policy

    policy = load_policy(policy_file(tmp_path, "[relative]\nmetrics = [\"roc_auc\", { name = \"recall\", margin = 0.02 }]\n"))
    c = by_name(gate(gates_ws, "5", policy))
    assert c["relative:roc_auc"].status == "PASS" and c["relative:recall"].status == "PASS"
    assert c["relative:recall/smb"].status == "FAIL"
    assert c["relative:recall/smb"].required.startswith("≥ 0.68")


def test_no_production_yet_passes_relative_criteria_or_blocks_by_policy(gates_ws, tmp_path):
    from gates.policy import load_policy

    result = gate(gates_ws, "1", name=FRESH)
    c = by_name(result)
    assert result.baseline is None and c["relative:roc_auc"].status == "PASS"
    assert result.baseline_state == "first_promotion" and c["baseline"].actual == "none: first promotion"
    assert "first promotion" in c["relative:roc_auc"].evidence
    assert "never had an alias and has never been served" in result.baseline_summary
    strict = load_policy(policy_file(tmp_path, "[relative]\nmetrics = [\"roc_auc\"]\nno_baseline = \"unknown\"\n"))
    assert by_name(gate(gates_ws, "1", strict, name=FRESH))["relative:roc_auc"].status == "UNKNOWN"


def test_required_artifacts_are_listed_in_the_registry(gates_ws, tmp_path):
    from gates.policy import load_policy

    policy = load_policy(policy_file(tmp_path, "[required]\nartifacts = [\"MLmodel\", \"requirements.txt\", "
                                               "\"confusion_matrix.png\"]\n"))
    c = by_name(gate(gates_ws, "2", policy))
    assert c["artifact:MLmodel"].status == "PASS"
    assert c["artifact:requirements.txt"].status == "PASS"
    assert c["artifact:confusion_matrix.png"].status == "FAIL"
    # Without a registry listing (e.g. offline) the same criterion is UNKNOWN, never a crash.
    assert by_name(gate(gates_ws, "2", policy, lister=False))["artifact:confusion_matrix.png"].status == "UNKNOWN"


def test_a_git_sha_that_is_not_a_commit_fails_the_required_criterion(ws_copy):
    """A branch name in the `git_sha` param is no code evidence: the required criterion fails and shows
    the value, and the lineage gap says `invalid_git_sha`."""
    from mlflow.entities import Param

    from collectors.runner import snapshot_all

    c = client(ws_copy.uri)
    good = c.get_run(ws_copy.runs["good"])
    run = c.create_run(good.info.experiment_id, run_name="branchy",
                       tags={"mlflow.user": AUTHOR, "owner": "churn-team"}).info.run_id
    c.log_batch(run, params=[Param("git_sha", "main"), Param("delta_feature_version", "7")])
    c.log_inputs(run, datasets=[delta_input("main.churn.features", 7, "training", "d-branchy")])
    c.set_terminated(run, "FINISHED")
    version = c.create_model_version(MODEL, source=f"{good.info.artifact_uri}/model", run_id=run).version
    assert all(o.ok for o in snapshot_all(ws_copy.config))
    crit = by_name(gate(ws_copy, str(version)))
    assert crit["required:git_sha"].status == "FAIL"
    assert crit["required:git_sha"].actual == "main (not a commit SHA)"
    assert "invalid_git_sha" in crit["lineage:gaps"].actual


# -- CLI ----------------------------------------------------------------------------------------------
def test_cli_check_exit_codes_and_output(gates_ws, tmp_path):
    cfg = gates_ws.config_path
    ok = gates_cli("check", f"model:{MODEL}/2", "--config", cfg, "--json")
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert body["status"] == "PASS" and body["blocking"] == [] and body["baseline"]["version"] == "1"
    assert {"name", "status", "actual", "required", "evidence"} <= set(body["criteria"][0])
    assert body["snapshot_ids"] == {"dbx": gate(gates_ws, "2").snapshot_ids["dbx"]}

    bad = gates_cli("check", f"model:{MODEL}/3", "--config", cfg)
    assert bad.returncode == 1
    assert "gate FAIL" in bad.stdout and "FAIL    threshold:roc_auc" in bad.stdout and "actual 0.791" in bad.stdout
    assert "required ≥ 0.8" in bad.stdout

    prod = gates_cli("check", f"model:{MODEL}@Production", "--config", cfg, "--platform", "databricks")
    assert prod.returncode == 0, prod.stdout + prod.stderr
    assert f"model:{MODEL}/1" in prod.stdout

    missing = gates_cli("check", f"model:{MODEL}/99", "--config", cfg)
    assert missing.returncode == 1 and "not found" in missing.stderr
    usage = gates_cli("check", "churn-gates", "--config", cfg)
    assert usage.returncode == 2 and "usage error" in usage.stderr
    broken = policy_file(tmp_path, "[thresholds]\nroc_auc = \"high\"\n")
    pol = gates_cli("check", f"model:{MODEL}/2", "--config", cfg, "--policy", broken)
    assert pol.returncode == 2 and f"{broken}:2:" in pol.stderr
    conf = gates_cli("check", f"model:{MODEL}/2", "--config", tmp_path / "nope.toml")
    assert conf.returncode == 2 and "config file not found" in conf.stderr
    helptext = gates_cli("check", "--help")
    assert "exit status" in helptext.stdout and "2  bad config, bad policy" in helptext.stdout

