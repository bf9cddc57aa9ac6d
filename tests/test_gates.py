"""Promotion gates on real MLflow stores (filled by the real client, collected by the real collector):
policies, evaluation (pass / fail / unknown / no Production / slices), the gate CLI, reviews with
separation of duties and a moved baseline, the hash-chained log under tampering, and write-back."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
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


# -- policies ----------------------------------------------------------------------------------------
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


# -- reviews -------------------------------------------------------------------------------------------
def _policy():
    from gates.policy import DEFAULT_POLICY, load_policy

    return load_policy(DEFAULT_POLICY)


def test_separation_of_duties_and_reviewer_roles(ws_copy):
    from gates.reviews import Identity, ReviewError, read_log, submit_review

    seen = gate(ws_copy, "2")
    author = Identity(AUTHOR, False, "local")
    with pytest.raises(ReviewError, match="separation of duties"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), author, seen=seen, decision="approve", note="lgtm")
    # The author may still ask for changes; an outsider may not review this model at all.
    submit_review(ws_copy.store, ws_copy.config, _policy(), author, seen=seen, decision="request_changes",
                  note="please add the slice report")
    with pytest.raises(ReviewError, match="not a reviewer of churn-gates"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), Identity(OUTSIDER, True, "oidc"), seen=seen,
                      decision="approve", note="ok")
    with pytest.raises(ReviewError, match="needs a note"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), Identity(REVIEWER, False, "local"), seen=seen,
                      decision="approve", note="   ")
    entry = submit_review(ws_copy.store, ws_copy.config, _policy(), Identity(REVIEWER, True, "oidc"), seen=seen,
                          decision="approve", note="Beats Production on every metric; lineage complete.")
    assert entry.reviewer == REVIEWER and entry.reviewer_verified is True
    assert json.loads(entry.snapshot_ids) == seen.snapshot_ids
    assert json.loads(entry.gate_result)["status"] == "PASS"
    log = read_log(ws_copy.store, MODEL, "2")
    assert [(e.decision, e.reviewer) for e in log] == [("request_changes", AUTHOR), ("approve", REVIEWER)]


def test_a_failing_gate_cannot_be_approved_but_can_be_rejected(ws_copy):
    from gates.reviews import Identity, ReviewError, submit_review

    seen = gate(ws_copy, "3")
    alice = Identity(REVIEWER, False, "local")
    with pytest.raises(ReviewError, match="the gate does not pass"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=seen, decision="approve", note="ship it")
    entry = submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=seen, decision="reject",
                          note="roc_auc 0.791 below 0.80")
    assert entry.gate_status == "FAIL" and entry.reviewer_verified is False


def test_baseline_moved_during_review_is_refused_as_stale(ws_copy):
    from collectors.runner import snapshot_all
    from gates.reviews import Identity, StaleReview, submit_review

    seen = gate(ws_copy, "5")          # the reviewer looks while Production is v1
    assert seen.baseline.version == "1"
    client(ws_copy.uri).set_registered_model_alias(MODEL, "Production", "2")   # someone promotes v2 meanwhile
    assert all(o.ok for o in snapshot_all(ws_copy.config))
    alice = Identity(REVIEWER, False, "local")
    with pytest.raises(StaleReview) as stale:
        submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=seen, decision="approve", note="ok")
    assert "baseline @Production moved" in str(stale.value) and "was v1, is now v2" in str(stale.value)
    fresh = stale.value.fresh
    assert fresh.baseline.version == "2" and fresh.snapshot_ids != seen.snapshot_ids
    entry = submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=fresh, decision="approve",
                          note="re-checked against v2")
    assert json.loads(entry.gate_result)["baseline"]["version"] == "2"
    assert json.loads(entry.snapshot_ids) == fresh.snapshot_ids


# -- the hash chain ----------------------------------------------------------------------------------
def _three_reviews(ws: GatesWs) -> None:
    from gates.reviews import Identity, submit_review

    alice = Identity(REVIEWER, False, "local")
    for version, decision, note in (("2", "approve", "good"), ("3", "reject", "bad"), ("4", "request_changes", "nan")):
        submit_review(ws.store, ws.config, _policy(), alice, seen=gate(ws, version), decision=decision, note=note)


def _tamper(ws: GatesWs, sql: str, params=()) -> None:
    con = duckdb.connect(str(ws.store_path))
    try:
        con.execute(sql, list(params))
    finally:
        con.close()


def test_chain_verifies_then_detects_an_edited_entry(ws_copy):
    from gates.reviews import verify

    _three_reviews(ws_copy)
    report = verify(ws_copy.store)
    assert report.ok and report.entries == 3
    ok = gates_cli("verify", "--config", ws_copy.config_path, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["head_hash"] == report.head_hash
    _tamper(ws_copy, "UPDATE gate_review_log SET decision = 'approve', note = 'fine' WHERE entry_id = 2")
    bad = verify(ws_copy.store)
    assert not bad.ok and any("entry 2 was edited" in p for p in bad.problems)
    out = gates_cli("verify", "--config", ws_copy.config_path)
    assert out.returncode == 1 and "TAMPERED" in out.stdout and "entry 2 was edited" in out.stdout


def test_chain_detects_a_deleted_entry_and_a_cut_tail(ws_copy):
    from gates.reviews import verify

    _three_reviews(ws_copy)
    head = verify(ws_copy.store).head_hash
    _tamper(ws_copy, "DELETE FROM gate_review_log WHERE entry_id = 3")
    cut = verify(ws_copy.store)
    assert not cut.ok and any("deleted from the end" in p for p in cut.problems)
    # Even with the head record "repaired" to match, a pinned head hash exposes the cut.
    _tamper(ws_copy, "UPDATE gate_review_head SET entries = 2, head_hash = "
                     "(SELECT entry_hash FROM gate_review_log WHERE entry_id = 2)")
    assert verify(ws_copy.store).ok
    pinned = gates_cli("verify", "--config", ws_copy.config_path, "--expect-head", head)
    assert pinned.returncode == 1 and "not the expected" in pinned.stdout
    _tamper(ws_copy, "DELETE FROM gate_review_log WHERE entry_id = 1")
    middle = verify(ws_copy.store)
    assert not middle.ok and any("entry 1 is missing" in p for p in middle.problems)
    assert any("prev_hash does not match" in p for p in middle.problems)


def test_entries_are_appended_with_linked_hashes(ws_copy):
    from gates.reviews import GENESIS, entry_hash, read_log

    _three_reviews(ws_copy)
    log = read_log(ws_copy.store)
    assert [e.entry_id for e in log] == [1, 2, 3] and log[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(log, log[1:]))
    assert all(entry_hash(e) == e.entry_hash for e in log)


# -- write-back ----------------------------------------------------------------------------------------
def _approve(ws: GatesWs, version: str = "2") -> dict:
    from gates.reviews import Identity, submit_review

    return submit_review(ws.store, ws.config, _policy(), Identity(REVIEWER, True, "oidc"), seen=gate(ws, version),
                         decision="approve", note="approved for Production")


def test_write_back_is_off_by_default(ws_copy):
    from gates.reviews import read_log
    from gates.writeback import write_back

    approval = _approve(ws_copy)
    outcome = write_back(ws_copy.store, ws_copy.config, _policy(), approval)
    assert not outcome.attempted and "allow_registry_writes = false" in outcome.message
    assert str(client(ws_copy.uri).get_model_version_by_alias(MODEL, "Production").version) == "1"
    assert [e.kind for e in read_log(ws_copy.store)] == ["review"]


def test_write_back_moves_the_alias_and_records_the_outcome(ws_copy):
    from gates.reviews import read_log, verify
    from gates.writeback import write_back

    cfg = _write(ws_copy.root, ws_copy.uri, allow_writes=True)
    ws = GatesWs(ws_copy.root, ws_copy.uri, cfg, ws_copy.store_path, ws_copy.runs)
    approval = _approve(ws)
    outcome = write_back(ws.store, ws.config, _policy(), approval)
    assert outcome.attempted and outcome.ok, outcome.message
    assert str(client(ws.uri).get_model_version_by_alias(MODEL, "Production").version) == "2"
    log = read_log(ws.store)
    assert [(e.kind, e.decision) for e in log] == [("review", "approve"), ("writeback_attempt", "attempted"),
                                                         ("writeback_result", "succeeded")]
    assert log[2].ref_entry == approval.entry_id and verify(ws.store).ok


def test_write_back_refuses_when_the_alias_moved_and_leaves_the_registry_alone(ws_copy):
    from gates.reviews import read_log, verify
    from gates.writeback import write_back

    cfg = _write(ws_copy.root, ws_copy.uri, allow_writes=True)
    ws = GatesWs(ws_copy.root, ws_copy.uri, cfg, ws_copy.store_path, ws_copy.runs)
    approval = _approve(ws, "2")
    client(ws.uri).set_registered_model_alias(MODEL, "Production", "5")   # moved by someone else, not yet snapshotted
    outcome = write_back(ws.store, ws.config, _policy(), approval)
    assert outcome.attempted and not outcome.ok
    assert "is at v5 in the registry, the approval saw v1" in outcome.message
    assert str(client(ws.uri).get_model_version_by_alias(MODEL, "Production").version) == "5"
    last = read_log(ws.store)[-1]
    assert (last.kind, last.decision) == ("writeback_result", "failed") and verify(ws.store).ok


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
