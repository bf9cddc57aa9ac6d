"""Conflicting evidence is shown, never resolved silently — on a real MLflow sqlite store read by
the real collector.

MLflow keeps one dataset record per (experiment, name, digest): a later run logging the same digest
from another Delta version gets the first run's record and source back. Git commit fields disagree
when MLflow's `mlflow.source.git.commit` (the entry point's repository) is not the repository the
pipeline names in its `git_sha` param. Each disagreement is a named gap naming both fields.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lineage.graph import EdgeKind, GapKind
from lineage.load import load_graph
from lineage.trace import trace
from store import Store
from store.queries import SnapshotNotFound
from tests.conftest import REPO, cli_env, client, delta_input, mlflow_source, new_mlflow_store, sha, write_config

MODEL = "conflicts"
TABLE = "main.churn.features"
SHA_1, SHA_2, SHA_ENTRY = sha("pipeline-1"), sha("pipeline-2"), sha("entry-point-repo")


@pytest.fixture(scope="module")
def conflicts(tmp_path_factory, mlflow_template):
    """Runs that share dataset records and disagree on git commits, registered and collected."""
    from mlflow.entities import Param

    from collectors.config import load_config
    from collectors.runner import snapshot_all

    root = tmp_path_factory.mktemp("conflicts")
    uri = new_mlflow_store(root / "dbx", mlflow_template)
    c = client(uri)
    exp = c.create_experiment("conflicts", artifact_location=(root / "dbx" / "artifacts").as_uri())
    ids: dict[str, str] = {}

    def new_run(label: str, params: dict[str, str], tags: dict[str, str] | None = None, inputs=()) -> str:
        run_id = c.create_run(exp, run_name=label, tags=tags or {}).info.run_id
        c.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        if inputs:
            c.log_inputs(run_id, datasets=list(inputs))
        c.set_terminated(run_id, "FINISHED")
        ids[label] = run_id
        return run_id

    # first: Delta v3, commit tag and param agree. second: same rows hashed again from v4 (same
    # digest), so MLflow hands back the first run's record (v3); its entry point is another repo.
    new_run("first", {"delta_feature_version": "3", "git_sha": SHA_1}, {"mlflow.source.git.commit": SHA_1},
            [delta_input(TABLE, 3, "training", "same-rows")])
    new_run("second", {"delta_feature_version": "4", "git_sha": SHA_2}, {"mlflow.source.git.commit": SHA_ENTRY},
            [delta_input(TABLE, 4, "training", "same-rows")])
    # Version 0 twice (MLflow drops 0 from the source): one unversioned record, two declarations.
    new_run("zero-a", {"delta_feature_version": "0", "git_sha": SHA_1}, inputs=[delta_input(TABLE, 0, "training", "z")])
    new_run("zero-b", {"delta_feature_version": "7", "git_sha": SHA_1}, inputs=[delta_input(TABLE, 0, "training", "z")])
    # A branch name where a commit belongs; an abbreviated SHA that agrees with the tag.
    new_run("branch", {"delta_feature_version": "5", "git_sha": "main"},
            inputs=[delta_input(TABLE, 5, "training", "own")])
    new_run("short", {"delta_feature_version": "5", "git_sha": SHA_2[:8]}, {"mlflow.source.git.commit": SHA_2},
            [delta_input(TABLE, 5, "training", "own")])
    # A source configured with git_sha_param = "commit_sha"; the tag wins the collector's pick.
    new_run("custom", {"delta_feature_version": "5", "commit_sha": SHA_1}, {"mlflow.source.git.commit": SHA_ENTRY},
            [delta_input(TABLE, 5, "training", "own")])

    weights = root / "weights"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"\x00")
    c.create_registered_model(MODEL)
    for label in ("first", "second", "zero-b", "branch"):
        c.create_model_version(MODEL, source=str(weights), run_id=ids[label])
    c.create_model_version(MODEL, source=str(weights))           # v5: no run at all
    cfg = write_config(root / "governance.toml", [mlflow_source("dbx", uri)])
    custom = write_config(root / "custom.toml", [mlflow_source("dbx", uri, git_sha_param="commit_sha")],
                          store=root / "waymark.duckdb")
    (outcome,) = snapshot_all(load_config(cfg))
    assert outcome.ok, outcome.errors
    store = Store(load_config(cfg).store_path)
    return {"ids": ids, "graph": load_graph(store), "store": store, "config": cfg, "custom_config": custom}


def gaps_of(answer, kind: str) -> list[dict]:
    return [g for g in answer.gaps if g.kind.value == kind]


def test_shared_dataset_record_does_not_hide_the_runs_own_version(conflicts):
    graph, run_id = conflicts["graph"], conflicts["ids"]["second"]
    answer = trace(graph, f"model:{MODEL}/2", as_of="now")
    inputs = {(i.version, tuple(i.basis)) for i in answer.inputs if i.level == "version"}
    assert inputs == {("3", ("run_input",)), ("4", ("convention",))}     # the record's and the run's own
    conflicts_found = gaps_of(answer, "input_version_conflict")
    (gap,) = [g for g in conflicts_found if g.node == f"run:databricks:{run_id}"]
    assert {g.node.split(":")[0] for g in conflicts_found} == {"run", "dataset"}   # the shared record too
    assert "records main.churn.features@3" in gap.message and "declares version 4" in gap.message
    assert "run_inputs.source_json.delta_table_version" in gap.message
    assert "runs.params.delta_feature_version" in gap.message
    assert set(gap.candidates) == {f"table:databricks:{TABLE}@3", f"table:databricks:{TABLE}@4"}
    declared = graph.edge(f"table:databricks:{TABLE}@4", f"run:databricks:{run_id}")
    assert declared.kind == EdgeKind.DECLARED_INPUT_VERSION
    assert declared.evidence.field == "runs.params.delta_feature_version"


def test_the_first_run_sees_the_shared_record_with_a_conflict_and_its_own_agreement(conflicts):
    graph = conflicts["graph"]
    answer = trace(graph, f"model:{MODEL}/1", as_of="now")
    # first's own param agrees with the record: corroboration on the one edge...
    edge = next(e for e in answer.edges if e.source == f"table:databricks:{TABLE}@3")
    fields = [edge.evidence.field] + [c["field"] for c in edge.corroborated_by]
    assert fields == ["run_inputs.source_json.delta_table_version", "runs.params.delta_feature_version"]
    # ...but the record is shared with a run declaring 4: the record's version is not per-run evidence.
    (gap,) = gaps_of(answer, "input_version_conflict")
    assert gap.node.startswith("dataset:databricks:") and "declares 3" in gap.message
    assert "declares 4" in gap.message


def test_shared_unversioned_record_keeps_each_runs_declaration_on_its_own_run(conflicts):
    graph, ids = conflicts["graph"], conflicts["ids"]
    answer = trace(graph, f"model:{MODEL}/3", as_of="now")          # zero-b, declares 7
    versions = {i.version for i in answer.inputs if i.level == "version"}
    assert versions == {"unknown", "7"}                               # zero-a's 0 does not leak in
    assert graph.edge(f"table:databricks:{TABLE}@0", f"run:databricks:{ids['zero-a']}").kind == \
        EdgeKind.DECLARED_INPUT_VERSION
    assert {"input_version_conflict", "unversioned_input"} <= {g.kind.value for g in answer.gaps}


def test_commit_tag_and_param_disagreeing_is_commit_mismatch_naming_both(conflicts):
    graph, run_id = conflicts["graph"], conflicts["ids"]["second"]
    answer = trace(graph, f"run:{run_id}", as_of="now")
    assert set(answer.git_shas) == {SHA_2, SHA_ENTRY}        # both shown, none picked
    (gap,) = gaps_of(answer, "commit_mismatch")
    assert set(gap.candidates) == {SHA_2, SHA_ENTRY}
    assert "runs.tags.mlflow.source.git.commit" in gap.message and "runs.params.git_sha" in gap.message


def test_agreeing_commit_fields_corroborate_one_edge(conflicts):
    graph, ids = conflicts["graph"], conflicts["ids"]
    for label, commit in (("first", SHA_1), ("short", SHA_2)):
        run = f"run:databricks:{ids[label]}"
        assert [p for p in graph.predecessors(run) if p.startswith("commit:")] == [f"commit:{commit}"]
        edge = graph.edge_dict(f"commit:{commit}", run)
        fields = {edge["evidence"]["field"]} | {c["field"] for c in edge["evidence"]["corroborated_by"]}
        assert fields == {"runs.tags.mlflow.source.git.commit", "runs.params.git_sha"}
        assert GapKind.COMMIT_MISMATCH not in {g.kind for g in graph.gaps.get(run, [])}


def test_a_branch_name_is_not_a_commit(conflicts):
    graph, run_id = conflicts["graph"], conflicts["ids"]["branch"]
    answer = trace(graph, f"model:{MODEL}/4", as_of="now")
    assert answer.git_shas == [] and "commit:main" not in graph
    (gap,) = gaps_of(answer, "invalid_git_sha")
    assert gap.node == f"run:databricks:{run_id}" and "'main'" in gap.message
    assert answer.runs[0].git_sha is None


def test_a_trace_that_reaches_no_run_says_so(conflicts):
    answer = trace(conflicts["graph"], f"model:{MODEL}/5", as_of="now")
    assert answer.runs == []
    assert [g.node for g in gaps_of(answer, "no_run")] == [f"model_version:databricks:{MODEL}/5"]
    assert gaps_of(trace(conflicts["graph"], f"model:{MODEL}/1", as_of="now"), "no_run") == []


def test_as_of_a_snapshot_that_does_not_exist_is_an_error_not_latest(conflicts):
    store = conflicts["store"]
    with pytest.raises(SnapshotNotFound, match="snapshot 9999 does not exist"):
        load_graph(store, 9999)
    proc = subprocess.run([sys.executable, "-m", "lineage", "trace", f"model:{MODEL}/1", "--config",
                           str(conflicts["config"]), "--as-of", "9999", "--json"], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "snapshot 9999 does not exist" in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "lineage", "trace", f"model:{MODEL}/1", "--config",
                         str(conflicts["config"]), "--as-of", "1", "--json"], cwd=REPO, env=cli_env(),
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["snapshots"]["dbx"]["snapshot_id"] == 1


@pytest.mark.parametrize("version, kind", [("2", "input_version_conflict"), ("2", "commit_mismatch"),
                                           ("4", "invalid_git_sha"), ("5", "no_run")])
def test_the_default_gate_blocks_on_each_conflict_gap(conflicts, version, kind):
    """Coordination by name: the built-in policy lists these gaps, and the gate reads trace gaps."""
    from gates.evaluate import Context, evaluate
    from gates.policy import DEFAULT_POLICY, load_policy

    result = evaluate(Context(conflicts["store"], graph=conflicts["graph"]), load_policy(DEFAULT_POLICY), "dbx",
                      MODEL, version)
    lineage_gaps = next(c for c in result.criteria if c.name == "lineage:gaps")
    assert lineage_gaps.status == "FAIL" and f"{kind}:" in lineage_gaps.actual


def test_the_cli_compares_the_tag_with_each_sources_configured_git_sha_param(conflicts):
    run_id = conflicts["ids"]["custom"]
    assert not [g for g in conflicts["graph"].gaps.get(f"run:databricks:{run_id}", [])
                if g.kind == GapKind.COMMIT_MISMATCH]          # default conventions: commit_sha unknown
    proc = subprocess.run([sys.executable, "-m", "lineage", "trace", f"run:{run_id}", "--config",
                           str(conflicts["custom_config"]), "--json"], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    (gap,) = [g for g in out["gaps"] if g["gap"] == "commit_mismatch"]
    assert set(gap["candidates"]) == {SHA_1, SHA_ENTRY} and "runs.params.commit_sha" in gap["message"]


# -- property: shared dataset records never turn one run's declaration into another run's fact ----
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lineage.build import build_graph  # noqa: E402
from tests.test_lineage_build import make_rows, run  # noqa: E402


@st.composite
def shared_records(draw):
    runs = [run("dbx", f"r{i}", param=draw(st.one_of(st.none(), st.sampled_from(["0", "3", "4"]))))
            for i in range(draw(st.integers(1, 5)))]
    inputs = []
    for r in runs:
        for digest in draw(st.lists(st.sampled_from(["d1", "d2"]), min_size=1, max_size=2, unique=True)):
            version = draw(st.one_of(st.none(), st.sampled_from([3, 4])))   # what the shared record holds
            inputs.append({"source": "dbx", "run_id": r["run_id"], "input_key": digest, "dataset_name": "f",
                           "digest": digest, "source_type": "delta_table", "context": "training",
                           "table_name": "t.f", "table_version": version, "version_known": version is not None})
    return make_rows(("dbx",), runs=runs, run_inputs=inputs)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shared_records())
def test_a_declared_version_in_a_trace_is_the_runs_own_or_a_named_conflict(rows):
    graph = build_graph(rows)
    declared = {r["run_id"]: r["conv_param_0"] for r in rows.runs.astype(object).where(rows.runs.notna(), None)
                .to_dict("records")}
    for run_id, param in declared.items():
        answer = trace(graph, f"run:{run_id}", as_of="now")
        kinds = {g.kind.value for g in answer.gaps}
        for edge in answer.edges:
            ev = edge.evidence       # corroborations name the run that declared them; the proof itself:
            if ev.field == "runs.params.delta_feature_version" and f"run {run_id}" not in (ev.detail or "") \
                    and edge.source != f"table:databricks:t.f@{param}":
                assert kinds & {"input_version_conflict", "ambiguous"}, (run_id, edge)
        if param is not None:
            versions = {i.version for i in answer.inputs if i.level == "version"}
            assert param in versions or kinds & {"input_version_conflict", "ambiguous"}, (run_id, versions)
