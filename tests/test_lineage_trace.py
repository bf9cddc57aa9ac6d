"""Golden traces on real MLflow stores: the demo workspace (two platforms, copies registered from
artifacts, aliases moved, a deleted run, a run without git SHA) and a small store whose version
was registered from a plain path with no MLmodel."""
from __future__ import annotations

import pytest

from demo.build import git_sha
from lineage.load import load_graph
from lineage.report import render_markdown
from lineage.trace import TargetError, impact, trace
from store import Store


@pytest.fixture(scope="module")
def store(demo_dir):  # noqa: F811
    return Store(demo_dir / "waymark.duckdb")


@pytest.fixture(scope="module")
def now_graph(store):
    return load_graph(store)


def gap_kinds(answer) -> set[str]:
    return {g.kind.value for g in answer.gaps}


def test_fabric_production_reaches_the_databricks_run_sha_and_delta_versions(now_graph):
    answer = trace(now_graph, "model:churn_model@Production", as_of="now")
    assert answer.target_nodes == ["alias:fabric:churn_model@Production"]
    (r,) = answer.runs
    assert (r.platform, r.run_name, r.git_sha) == ("databricks", "gbm-tuned-depth", git_sha("tuned"))
    assert r.experiment == "/churn-prediction/ci-cd-pipeline"
    assert answer.git_shas == [git_sha("tuned")]
    assert {(i.platform, i.name, i.version) for i in answer.inputs if i.level == "version"} == {
        ("databricks", "churn.gold.features", "14"), ("databricks", "churn.gold.holdout", "5")}
    # Upstream of the versions read, by UC table lineage: named, without a version (lineage has none).
    upstream = {i.name: i for i in answer.inputs if i.level != "version"}
    assert {"churn.silver.customer_events", "churn.bronze.events"} <= set(upstream)
    assert all(i.version is None and i.version_known is None for i in upstream.values())
    assert "churn.gold.features" not in upstream          # already listed at its version
    kinds = {(e.source.split(":")[0], e.target, e.kind.value) for e in answer.edges}
    assert ("run", "model_version:fabric:churn_model/2", "artifact_origin") in kinds
    assert ("model_version", "model_version:fabric:churn_model/2", "migrated_from") in kinds
    assert not answer.gaps
    for e in answer.edges:
        assert e.evidence.snapshot_id in {p.snapshot_id for p in answer.snapshots.values()}


def first_production_snapshot(store) -> int:
    """The snapshot that first saw Production on v1 (ids depend on how many sources the demo has)."""
    frame = store.query("SELECT valid_from FROM model_aliases WHERE name = 'churn-prediction-gbm' "
                        "AND alias = 'Production' AND version = '1'")
    return int(frame["valid_from"].iloc[0])


def test_as_of_before_the_alias_moved_gives_the_old_version_and_names_the_move(store):
    sid = first_production_snapshot(store)
    graph = load_graph(store, sid)                   # Production = v1
    answer = trace(graph, "model:churn-prediction-gbm@Production", as_of=f"snapshot {sid}")
    assert "model_version:databricks:churn-prediction-gbm/1" in {n.id for n in answer.nodes}
    assert [r.run_name for r in answer.runs] == ["gbm-baseline"]
    (moved,) = [g for g in answer.gaps if g.kind.value == "alias_moved_after"]
    assert "version 2" in moved.message and "version 4" in moved.message   # moved twice


def test_alias_that_did_not_exist_yet_is_not_found(store):
    sid = first_production_snapshot(store)
    graph = load_graph(store, sid)
    with pytest.raises(TargetError) as e:
        trace(graph, "model:churn_model@Production", as_of=f"snapshot {sid}")
    assert e.value.kind == "not_found"


def test_delta_version_zero_is_filled_by_convention_evidence(now_graph):
    answer = trace(now_graph, "model:churn-prediction-gbm/3", as_of="now")
    features = [i for i in answer.inputs if i.name == "churn.gold.features"]
    assert [f.to_dict() for f in features] == [{"id": "table:databricks:churn.gold.features@0", "type": "table", "level": "version",
                         "platform": "databricks",
                         "name": "churn.gold.features", "version": "0", "version_known": True,
                         "basis": ["convention"]}]
    assert "table:databricks:churn.gold.features@unknown" not in now_graph


def test_run_without_git_sha_and_deleted_run_are_named_gaps(now_graph):
    challenger = trace(now_graph, "model:churn_model@Challenger", as_of="now")
    assert "no_git_sha" in gap_kinds(challenger)
    assert challenger.runs[0].platform == "fabric"
    deleted = next(n for n in now_graph.nodes() if n.attrs.get("run_name") == "gbm-bad-seed")
    answer = trace(now_graph, f"run:{deleted.attrs['run_id']}", as_of="now")
    assert {"run_deleted", "no_inputs"} <= gap_kinds(answer)
    assert answer.git_shas == [git_sha("bad-seed")]


def test_unknown_endpoint_is_not_found_and_lists_the_collected_ones(now_graph):
    with pytest.raises(TargetError) as e:
        trace(now_graph, "endpoint:churn-serving", as_of="now")
    assert e.value.kind == "not_found" and "churn-scoring" in str(e.value)
    assert {"endpoint:databricks:churn-scoring", "endpoint:azureml:churn-aml"} <= set(e.value.candidates)


def served(answer) -> dict[tuple[str, str], float]:
    return {(x.model, x.version): x.traffic_pct for x in answer.serving}


def test_databricks_endpoint_reaches_runs_shas_and_feature_table_versions(now_graph):
    answer = trace(now_graph, "endpoint:churn-scoring", as_of="now")
    assert answer.target_nodes == ["endpoint:databricks:churn-scoring"]
    assert served(answer) == {("churn.ml.churn_gbm", "4"): 90, ("churn.ml.churn_gbm", "2"): 10}
    # The UC versions name runs held by the MLflow source of the same workspace (dbx-uc vs dbx-churn).
    assert {(r.run_name, r.git_sha, r.source) for r in answer.runs} == {
        ("gbm-retrain-nov", git_sha("retrain-nov"), "dbx-churn"), ("gbm-tuned-depth", git_sha("tuned"), "dbx-churn")}
    assert set(answer.git_shas) == {git_sha("retrain-nov"), git_sha("tuned")}
    inputs = {(i.name, i.version) for i in answer.inputs}
    assert {("churn.gold.features", "17"), ("churn.gold.features", "14"), ("churn.gold.holdout", "5"),
            ("churn.gold.tenure_days", None), ("churn.gold.monthly_charges", None),
            ("churn.silver.customer_events", None), ("churn.bronze.events", None)} <= inputs
    edges = {(e.source, e.target): e for e in answer.edges}
    serve = edges[("model_version:databricks:churn.ml.churn_gbm/4", "endpoint:databricks:churn-scoring")]
    assert serve.kind.value == "serves" and serve.evidence.field == "served_entities.entity_version"
    assert serve.attrs["traffic_pct"] == 90 and serve.attrs["routes"][0]["served_entity"] == "churn_gbm-4"
    kinds = {e.kind.value for e in answer.edges}
    assert {"serves", "run_registered", "feature_lookup", "model_dependency", "table_lineage",
            "table_version", "table_feeds_features", "code_version"} <= kinds
    # The job run's git commit (and the git_sha param, where MLflow's tag holds the same commit)
    # corroborates each run's git SHA: one edge, every agreeing field listed.
    for r in answer.runs:
        code = edges[(f"commit:{r.git_sha}", r.id)]
        assert "job_runs.git_used_commit" in [c["field"] for c in code.corroborated_by]
    assert answer.hops[0].upstream == "model_version:databricks:churn.ml.churn_gbm/4"   # most traffic first
    assert not answer.gaps


def test_endpoint_caught_mid_update_shows_the_pending_config_without_tracing_it(now_graph):
    answer = trace(now_graph, "endpoint:churn-batch-shadow", as_of="now")
    assert served(answer) == {("churn.ml.churn_gbm", "2"): 100}
    (x,) = answer.serving
    assert [(p["version"], p["traffic_pct"]) for p in x.pending_config] == [("4", 100)]
    assert "model_version:databricks:churn.ml.churn_gbm/4" not in {n.id for n in answer.nodes}


def test_azureml_endpoint_reaches_the_databricks_runs_through_mlmodel_origins(now_graph):
    answer = trace(now_graph, "endpoint:churn-aml", as_of="now")
    assert answer.target_nodes == ["endpoint:azureml:churn-aml"]
    assert served(answer) == {("churn-model", "2"): 90, ("churn-model", "3"): 10}
    routes = {r["deployment"]: r["traffic_pct"] for x in answer.serving for r in x.routes}
    assert routes == {"blue": 90, "green": 10}
    assert {(r.platform, r.run_name, r.git_sha) for r in answer.runs} == {
        ("databricks", "gbm-tuned-depth", git_sha("tuned")), ("databricks", "gbm-retrain-nov", git_sha("retrain-nov"))}
    assert {("churn.gold.features", "14"), ("churn.gold.features", "17")} <= {
        (i.name, i.version) for i in answer.inputs}
    fields = {e.evidence.field for e in answer.edges if e.kind.value == "serves"}
    assert fields == {"aml_deployments.model_ref"}
    assert ("artifact_origin" in {e.kind.value for e in answer.edges})
    assert not answer.gaps


def test_impact_of_an_upstream_table_reaches_endpoints(now_graph):
    answer = impact(now_graph, "table:churn.silver.customer_events", as_of="now")
    endpoints = {e.id for e in answer.endpoints}
    assert {"endpoint:databricks:churn-scoring", "endpoint:databricks:churn-batch-shadow",
            "endpoint:azureml:churn-aml"} <= endpoints
    tickets = impact(now_graph, "table:churn.gold.support_tickets", as_of="now")
    assert "vector_index:databricks:churn.gold.support_tickets_index" in {n.id for n in tickets.nodes}
    index = trace(now_graph, "vector_index:databricks:churn.gold.support_tickets_index", as_of="now")
    assert {"endpoint:databricks:bge-embeddings", "table:databricks:churn.gold.support_tickets"} <= {
        n.id for n in index.nodes}


def test_impact_of_the_features_table_version_reaches_both_platforms(now_graph):
    answer = impact(now_graph, "table:churn.gold.features@17", as_of="now")
    aliases = {a.id for a in answer.aliases}
    assert aliases >= {"alias:databricks:churn-prediction-gbm@Production",
                       "alias:databricks:churn-prediction-gbm@Staging", "alias:fabric:churn_model@Staging"}
    assert "alias:fabric:churn_model@Production" not in aliases        # that one came from @14
    everything = impact(now_graph, "table:churn.gold.features", as_of="now")
    assert len(everything.target_nodes) == 6             # @0 @12 @14 @17 @18, and the table as a whole
    assert "table:databricks:churn.gold.features" in everything.target_nodes
    sha = impact(now_graph, f"commit:{git_sha('tuned')[:10]}", as_of="now")
    assert {v.id for v in sha.model_versions} >= {
        "model_version:databricks:churn-prediction-gbm/2", "model_version:fabric:churn_model/2"}
    assert "model_version:databricks:churn-prediction-gbm/4" not in {v.id for v in sha.model_versions}


def test_evidence_pack_markdown_has_every_hop_and_snapshot(now_graph):
    answer = trace(now_graph, "model:churn_model@Production", as_of="now")
    md = render_markdown(answer)
    assert md.count("\n| ") >= len(answer.hops) + len(answer.snapshots)
    assert "gbm-tuned-depth" in md and git_sha("tuned") in md


def test_version_registered_from_a_plain_path_has_no_origin(tmp_path):
    from mlflow import MlflowClient

    from collectors.config import load_config
    from collectors.runner import snapshot_all

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"\x00")
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model("plain")
    mv = client.create_model_version("plain", source=str(weights))
    client.set_registered_model_alias("plain", "Production", mv.version)
    config = tmp_path / "governance.toml"
    config.write_text(f'[store]\npath = "w.duckdb"\n[[sources]]\nname = "az"\nkind = "mlflow"\n'
                      f'platform = "azureml"\ntracking_uri = "{uri}"\n', encoding="utf-8")
    (outcome,) = snapshot_all(load_config(config))
    assert outcome.ok, outcome.errors
    answer = trace(load_graph(Store(tmp_path / "w.duckdb")), "model:plain@Production", as_of="now")
    gap, no_run = answer.gaps
    assert gap.kind.value == "no_origin" and str(weights) in gap.message
    assert no_run.kind.value == "no_run" and no_run.node == "alias:azureml:plain@Production"
    assert answer.runs == [] and answer.git_shas == []
