"""The gate's baseline per platform and model (an unknown never passes), on real stores: the demo
workspace (Unity Catalog @champion from the Databricks stub, Azure ML traffic from the Azure stub),
the gates workspace (real MLflow sqlite registry, real collector), and the Azure stub directly."""
from __future__ import annotations

import math

import pytest

from tests.conftest import client
from tests.test_gates import FRESH, MODEL, by_name, gate, policy_file, ws_copy  # noqa: F401  (fixture)
from tests.test_gates import gates_ws  # noqa: F401  (fixture)

UC_MODEL, UC_SOURCE = "churn.ml.churn_gbm", "dbx-uc"
AML_MODEL, AML_SOURCE = "churn-model", "aml-churn"


def default_policy():
    from gates.policy import DEFAULT_POLICY, load_policy

    return load_policy(DEFAULT_POLICY)


def demo_gate(demo_dir, source: str, name: str, version: str, policy=None):
    from gates.evaluate import Context, evaluate
    from store import Store

    return evaluate(Context(Store(demo_dir / "waymark.duckdb")), policy or default_policy(), source, name, version)


def snapshot(ws) -> None:
    from collectors.runner import snapshot_all

    outcomes = snapshot_all(ws.config)
    assert all(o.ok for o in outcomes), [o.errors for o in outcomes]


# -- per platform ------------------------------------------------------------------------------------
def test_unity_catalog_candidate_is_compared_with_champion(demo_dir):
    result = demo_gate(demo_dir, UC_SOURCE, UC_MODEL, "3")
    c = by_name(result)
    assert result.baseline_state == "found"
    assert result.baseline.version == "4" and result.baseline.alias == "champion"
    assert c["baseline"].status == "PASS" and c["baseline"].actual == "v4 (@champion)"
    # v3 (roc_auc 0.791) is compared with v4's metrics, not passed as "nothing to compare with".
    rel = c["relative:roc_auc"]
    assert rel.status == "FAIL" and "baseline" in rel.required and "@champion" in rel.evidence


def test_azureml_baseline_is_the_version_with_the_most_traffic(demo_dir):
    result = demo_gate(demo_dir, AML_SOURCE, AML_MODEL, "3")
    assert result.baseline_state == "found" and result.baseline.basis == "traffic"
    assert result.baseline.version == "2" and result.baseline.label == "most traffic (90%)"
    assert "churn-aml/blue v2 90%" in result.baseline.evidence
    assert "churn-aml/green v3 10%" in result.baseline.evidence
    assert by_name(result)["baseline"].status == "PASS"
    assert "most traffic (90%)" in result.baseline_summary


def test_queue_lists_only_versions_newer_than_the_baseline(demo_dir):
    from gates.evaluate import Context, candidates
    from store import Store

    frame = candidates(Context(Store(demo_dir / "waymark.duckdb")), lambda name: default_policy())
    queued = set(zip(frame["source"], frame["name"], frame["version"]))
    assert not {k for k in queued if k[0] == UC_SOURCE}, queued        # v4 holds @champion: nothing newer
    assert {k for k in queued if k[0] == AML_SOURCE} == {(AML_SOURCE, AML_MODEL, "3")}
    row = frame[frame["source"] == AML_SOURCE].iloc[0]
    assert (row["baseline_state"], row["baseline_version"]) == ("found", "2")


# -- unknown never passes ----------------------------------------------------------------------------
def test_an_aliased_model_without_a_baseline_alias_is_unknown_and_blocks(ws_copy):
    client(ws_copy.uri).set_registered_model_alias(FRESH, "challenger", "1")
    snapshot(ws_copy)
    result = gate(ws_copy, "1", name=FRESH, lister=False)
    c = by_name(result)
    assert result.baseline is None and result.baseline_state == "unknown"
    assert c["baseline"].status == "UNKNOWN" and c["baseline"].blocking
    assert c["relative:roc_auc"].status == "UNKNOWN" and c["relative:roc_auc"].blocking
    assert "@challenger on v1 (now)" in c["baseline"].evidence
    assert result.status == "FAIL" and "Baseline unknown" in result.baseline_summary
    # Even a policy that lets a first promotion pass does not let this one through.
    relaxed = policy_file(ws_copy.root, "[relative]\nmetrics = [\"roc_auc\"]\nno_baseline = \"pass\"\n")
    from gates.policy import load_policy

    assert by_name(gate(ws_copy, "1", load_policy(relaxed), name=FRESH, lister=False))["relative:roc_auc"].status \
        == "UNKNOWN"


def test_a_removed_alias_still_counts_as_promoted(ws_copy):
    c = client(ws_copy.uri)
    c.set_registered_model_alias(FRESH, "Production", "1")
    snapshot(ws_copy)
    assert gate(ws_copy, "1", name=FRESH, lister=False).baseline.version == "1"
    c.delete_registered_model_alias(FRESH, "Production")
    snapshot(ws_copy)
    result = gate(ws_copy, "1", name=FRESH, lister=False)
    assert result.baseline_state == "unknown" and by_name(result)["baseline"].blocking
    assert "@Production on v1 (until snapshot" in by_name(result)["baseline"].evidence


def test_a_policy_picks_the_alias_per_platform(ws_copy, tmp_path):
    from gates.policy import load_policy

    client(ws_copy.uri).set_registered_model_alias(MODEL, "gold", "2")
    snapshot(ws_copy)
    text = ("[baseline]\naliases = [\"champion\"]\n[baseline.databricks]\naliases = [\"gold\", \"Production\"]\n"
            "[relative]\nmetrics = [\"roc_auc\"]\n")
    result = gate(ws_copy, "5", load_policy(policy_file(tmp_path, text)), lister=False)
    assert result.baseline.version == "2" and result.baseline.label == "@gold"


def _aml_store(tmp_path, azureml):
    from collectors.runner import snapshot_source
    from demo.azure_fixtures import CHURN_HEALTH
    from demo.azure_stub import AzureStub
    from store import Store
    from tests.test_collector_azureml import source_config

    store = Store(tmp_path / "aml.duckdb")
    with AzureStub({"azureml": azureml, "health": CHURN_HEALTH, "logs": {"rows": []}}) as stub:
        outcome = snapshot_source(store, source_config(stub))
        assert outcome.ok, outcome.errors
    return store


@pytest.mark.parametrize("kwargs, needle", [
    # Most traffic goes to a version from an Azure ML registry the workspace source does not hold.
    ({"green_from_registry": True, "traffic": {"blue": 0, "green": 100}}, "from Azure ML registry churn-registry"),
    # Deployed, but no deployment takes traffic.
    ({"traffic": {"blue": 0, "green": 0}}, "no version takes traffic"),
    # Two versions take the same share: none is picked.
    ({"traffic": {"blue": 50, "green": 50}}, "take the same traffic"),
])
def test_a_served_azureml_model_without_a_traffic_baseline_is_unknown(tmp_path, kwargs, needle):
    from demo.azure_fixtures import churn_azureml
    from gates.evaluate import Context, evaluate

    store = _aml_store(tmp_path, churn_azureml(**kwargs))
    result = evaluate(Context(store), default_policy(), "aml", AML_MODEL, "3")
    c = by_name(result)
    assert result.baseline_state == "unknown", result.baseline
    assert c["baseline"].status == "UNKNOWN" and c["baseline"].blocking and needle in c["baseline"].evidence
    assert "served by churn-aml/blue (v2)" in c["baseline"].evidence


def test_an_azureml_model_never_served_is_a_first_promotion(tmp_path):
    from demo.azure_fixtures import churn_azureml
    from gates.evaluate import Context, evaluate

    aml = churn_azureml()
    aml["endpoints"] = []
    result = evaluate(Context(_aml_store(tmp_path, aml)), default_policy(), "aml", AML_MODEL, "3")
    assert result.baseline_state == "first_promotion" and by_name(result)["baseline"].status == "PASS"


# -- policy ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, line, needle", [
    ("[baseline]\naliases = []\n", 1, "field 'baseline': finds no baseline"),
    ("[baseline]\naliases = [\"a\"]\n[baseline.azureml]\ntraffic = true\nalias = []\n", 5,
     "field 'baseline.azureml.alias': unknown field"),
    ("[baseline]\naliases = [\"a\"]\n[baseline.aws]\ntraffic = true\n", 3, "field 'baseline.aws': unknown field"),
    ("[policy]\nbaseline_alias = \"Production\"\n[baseline]\naliases = [\"a\"]\n", 2,
     "either [policy] baseline_alias or [baseline] aliases"),
    ("[baseline]\ntraffic = \"yes\"\n", 2, "field 'baseline.traffic': must be true or false"),
])
def test_bad_baseline_tables_name_file_line_and_field(tmp_path, text, line, needle):
    from gates.policy import PolicyError, load_policy

    path = policy_file(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}:{line}:"), str(err.value)
    assert needle in str(err.value)


def test_baseline_rules_per_platform_and_the_older_spelling(tmp_path):
    from gates.policy import load_policy

    old = load_policy(policy_file(tmp_path, "[policy]\nbaseline_alias = \"Production\"\n", "old.toml"))
    assert old.baseline_for("fabric").aliases == ("Production",)
    assert old.baseline_for("azureml").aliases == ("Production",) and not old.baseline_for("azureml").traffic
    none = load_policy(policy_file(tmp_path, "[thresholds]\nroc_auc = 0.8\n", "none.toml"))
    assert none.baseline_for("databricks").aliases == ("champion", "Production", "prod")
    assert none.baseline_for("azureml").traffic
    own = load_policy(policy_file(tmp_path, "[baseline]\naliases = [\"prod\"]\ntraffic = true\n"
                                            "[baseline.fabric]\naliases = [\"live\"]\n", "own.toml"))
    assert own.baseline_for("fabric").aliases == ("live",) and own.baseline_for("fabric").traffic
    assert own.baseline_for("databricks").aliases == ("prod",)


# -- values that only look finite ---------------------------------------------------------------------
def test_infinity_as_mlflow_stores_it_is_unknown(ws_copy, tmp_path):
    from mlflow.entities import Metric

    from gates.policy import load_policy

    c = client(ws_copy.uri)
    run = c.create_run(c.get_experiment_by_name("/churn/gates").experiment_id, run_name="inf").info.run_id
    c.log_batch(run, metrics=[Metric("roc_auc", math.inf, 0, 0), Metric("log_loss", -math.inf, 0, 0)])
    stored = c.get_run(run).data.metrics["roc_auc"]
    assert math.isfinite(stored) and stored >= 1e308     # what MLflow's SQL store keeps for +inf
    c.set_terminated(run, "FINISHED")
    c.create_model_version(FRESH, source=f"runs:/{run}/model", run_id=run)
    snapshot(ws_copy)
    policy = load_policy(policy_file(tmp_path, "[thresholds]\nroc_auc = 0.8\nlog_loss = { max = 0.5 }\n"))
    result = gate(ws_copy, "2", policy, name=FRESH, lister=False)
    cr = by_name(result)
    assert cr["threshold:roc_auc"].status == "UNKNOWN" and cr["threshold:roc_auc"].actual.startswith("+inf")
    assert cr["threshold:log_loss"].status == "UNKNOWN" and cr["threshold:log_loss"].actual.startswith("-inf")
    assert result.status == "FAIL" and result.metrics["candidate"]["roc_auc"] is None
    from ui.gates_loaders import metric_gaps, metrics_frame

    assert metrics_frame(result).empty                   # nothing charted as if it were a number…
    gaps = metric_gaps(result)                           # …and the page names what it left out
    assert any(g.startswith("roc_auc (candidate): +inf (stored as") for g in gaps), gaps
    assert any(g.startswith("log_loss (candidate): -inf") for g in gaps), gaps


# -- artifacts through the source's own registry --------------------------------------------------------
def test_unity_catalog_mlmodel_is_listed_through_the_uc_registry(tmp_path, monkeypatch):
    """A `databricks` source's versions are listed as models:/NAME/VERSION on databricks-uc: MLflow
    asks the workspace (the stub) and reads the version's files — nothing falls back to a local store."""
    from demo.databricks_stub import DatabricksStub
    from gates.artifacts import mlflow_artifact_lister
    from gates.evaluate import Context, evaluate
    from gates.policy import load_policy
    from tests.test_collector_databricks import MODEL as UC, TOKEN, base_workspace, snapshot as dbx_snapshot

    for k in ("DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE",
              "MLFLOW_USE_DATABRICKS_SDK_MODEL_ARTIFACTS_REPO_FOR_UC"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    ws = base_workspace()
    ws["model_files"] = {f"{UC}/2/{f}": "" for f in ("MLmodel", "model.pkl", "conda.yaml", "metadata/MLmodel")}
    ws["model_files"][f"{UC}/3/model.pkl"] = ""
    policy = load_policy(policy_file(tmp_path, "[required]\nartifacts = [\"MLmodel\", \"conda.yaml\"]\n"))
    with DatabricksStub(ws, token=TOKEN) as stub:
        outcome, store = dbx_snapshot(tmp_path, stub)
        assert outcome.ok, outcome.errors
        from collectors.config import load_config

        config = load_config(tmp_path / "governance.toml")
        monkeypatch.setenv("DATABRICKS_HOST", stub.url)
        ctx = Context(store)
        v2 = by_name(evaluate(ctx, policy, "dbx-uc", UC, "2", artifact_lister=mlflow_artifact_lister(config)))
        v3 = by_name(evaluate(ctx, policy, "dbx-uc", UC, "3", artifact_lister=mlflow_artifact_lister(config)))
        assert v2["artifact:MLmodel"].status == "PASS", v2["artifact:MLmodel"]
        assert v2["artifact:conda.yaml"].status == "PASS"
        assert v3["artifact:MLmodel"].status == "FAIL" and "listed from dbx-uc" in v3["artifact:MLmodel"].evidence
        assert stub.counts["files.directories"] > 0
        # MLflow would reach another workspace than the source names: not listed, UNKNOWN with the reason.
        monkeypatch.setenv("DATABRICKS_HOST", "https://adb-other.azuredatabricks.net")
        other = by_name(evaluate(ctx, policy, "dbx-uc", UC, "2", artifact_lister=mlflow_artifact_lister(config)))
        assert other["artifact:MLmodel"].status == "UNKNOWN" and "names host" in other["artifact:MLmodel"].evidence
    assert list(tmp_path.glob("mlflow.db")) == [] and not (tmp_path / "mlruns").exists()


def test_write_back_moves_the_alias_that_named_the_baseline(ws_copy):
    """A Unity Catalog-style model gated against @champion: the approval moves @champion, not a
    @Production the model never had."""
    from gates.reviews import Identity, submit_review
    from gates.writeback import write_back
    from tests.test_gates import REVIEWER, _write

    c = client(ws_copy.uri)
    c.delete_registered_model_alias(MODEL, "Production")
    c.set_registered_model_alias(MODEL, "champion", "1")
    cfg = _write(ws_copy.root, ws_copy.uri, allow_writes=True)
    ws = type(ws_copy)(ws_copy.root, ws_copy.uri, cfg, ws_copy.store_path, ws_copy.runs)
    snapshot(ws)
    seen = gate(ws, "2")
    assert seen.status == "PASS" and seen.baseline.alias == "champion", [x.name for x in seen.blocking]
    from ui.gates_loaders import alias_to_move

    assert alias_to_move(ws.config, seen) == "champion"      # what the review form offers to move
    approval = submit_review(ws.store, ws.config, default_policy(), Identity(REVIEWER, True, "oidc"), seen=seen,
                             decision="approve", note="beats the champion")
    outcome = write_back(ws.store, ws.config, default_policy(), approval)
    assert outcome.ok, outcome.message
    assert str(c.get_model_version_by_alias(MODEL, "champion").version) == "2"
    assert {a for a in c.get_registered_model(MODEL).aliases} == {"champion"}


def test_a_trace_that_reaches_no_run_fails_the_lineage_criterion(ws_copy):
    empty = ws_copy.root / "no-run-artifacts"
    empty.mkdir()
    (empty / "README.txt").write_text("registered from files, no run")
    client(ws_copy.uri).create_model_version(FRESH, source=str(empty))
    snapshot(ws_copy)
    c = by_name(gate(ws_copy, "2", name=FRESH, lister=False))
    assert c["lineage:trace"].status == "FAIL" and c["lineage:trace"].actual == "0 run(s)"
    assert c["lineage:trace"].blocking


def test_cli_says_first_promotion_in_plain_words(gates_ws):
    from tests.test_gates import gates_cli

    out = gates_cli("check", f"model:{FRESH}/1", "--config", gates_ws.config_path)
    assert "baseline: none. First promotion: fresh-model has never had an alias and has never been served" \
        in out.stdout, out.stdout + out.stderr
    assert "PASS    baseline" in out.stdout
