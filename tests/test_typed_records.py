"""Rows that leave their module are typed records (issue 14, item 5): a misspelt field raises
instead of reading None, and the JSON the CLIs print keeps exactly its keys, in order.

The expected JSON here is written out by hand from the contract (DESIGN.md and the keys the CLIs
printed before the records existed), not produced by the code under test."""
from __future__ import annotations

import dataclasses

import pytest

from lineage.build import build_graph
from lineage.trace import impact, trace
from tests.test_lineage_build import delta_input, make_rows, run, version

SHA = "a" * 40
T0 = "2026-11-01T00:00:00+00:00"


# -- lineage: trace and impact answers ----------------------------------------------------------
@pytest.fixture(scope="module")
def small_graph():
    """r1 (git SHA, reads c.gold.f@7, whose upstream is c.silver.s) produced M/1 = M@champion;
    r2 (no SHA, no inputs) produced M/2."""
    rows = make_rows(("dbx", "dbx-ws"), runs=[run("dbx", "r1", sha=SHA), run("dbx", "r2")],
                     run_inputs=[delta_input("dbx", "r1", "c.gold.f", 7)],
                     model_versions=[version("dbx", "M", 1, run_id="r1"), version("dbx", "M", 2, run_id="r2")],
                     model_aliases=[{"source": "dbx", "name": "M", "alias": "champion", "version": "1"}],
                     table_lineage=[{"source": "dbx-ws", "upstream": "c.silver.s", "downstream": "c.gold.f",
                                     "upstream_kind": "table"}])
    return build_graph(rows)


def test_trace_json_keeps_the_contract_keys_and_values(small_graph):
    out = trace(small_graph, "model:M@champion", as_of="now").to_json()
    assert list(out) == ["target", "target_nodes", "question", "as_of", "snapshots", "runs", "git_shas", "inputs",
                         "serving", "nodes", "edges", "gaps"]
    assert (out["target"], out["target_nodes"], out["question"], out["as_of"]) == (
        "model:M@champion", ["alias:databricks:M@champion"], "trace", "now")
    assert out["snapshots"] == {
        "dbx": {"snapshot_id": 7, "finished_at": T0, "platform": "databricks", "scope": "databricks"},
        "dbx-ws": {"snapshot_id": 10, "finished_at": T0, "platform": "databricks", "scope": "databricks"}}
    assert [list(r.items()) for r in out["runs"]] == [[
        ("id", "run:databricks:r1"), ("platform", "databricks"), ("source", "dbx"), ("run_id", "r1"),
        ("run_name", "r1"), ("experiment", None), ("git_sha", SHA), ("lifecycle_stage", "active"),
        ("collected", True)]]
    assert out["git_shas"] == [SHA]
    # A table version a run read has version_known and no via; a table known only by name the reverse.
    assert [list(i.items()) for i in out["inputs"]] == [
        [("id", "table:databricks:c.gold.f@7"), ("type", "table"), ("level", "version"), ("platform", "databricks"),
         ("name", "c.gold.f"), ("version", "7"), ("version_known", True), ("basis", ["run_input"])],
        [("id", "table:databricks:c.silver.s"), ("type", "table"), ("level", "table"), ("platform", "databricks"),
         ("name", "c.silver.s"), ("version", None), ("basis", ["run_input"]), ("via", ["table_lineage"])]]
    assert out["serving"] == [] and out["gaps"] == []
    commit = next(e for e in out["edges"] if e["kind"] == "code_version")
    assert list(commit.items()) == [
        ("source", f"commit:{SHA}"), ("target", "run:databricks:r1"), ("kind", "code_version"),
        ("evidence", {"field": "runs.params.git_sha", "snapshot_id": 7, "source": "dbx", "basis": "convention",
                      "seen_since": 1})]
    alias = next(n for n in out["nodes"] if n["type"] == "alias")
    assert list(alias) == ["id", "type", "platform", "name", "version", "attrs"]
    assert (alias["id"], alias["version"], alias["attrs"]["alias"]) == ("alias:databricks:M@champion", "1", "champion")


def test_trace_gaps_and_impact_json_keep_their_keys(small_graph):
    gaps = trace(small_graph, "model:M/2", as_of="now").to_json()["gaps"]
    assert [(list(g), g["gap"], g["node"]) for g in gaps] == [
        (["gap", "node", "message"], "no_git_sha", "run:databricks:r2"),
        (["gap", "node", "message"], "no_inputs", "run:databricks:r2")]
    out = impact(small_graph, "table:c.gold.f", as_of="now").to_json()
    assert list(out) == ["target", "target_nodes", "question", "as_of", "snapshots", "runs", "model_versions",
                         "aliases", "endpoints", "nodes", "edges", "gaps"]
    assert out["question"] == "impact"
    assert out["model_versions"] == [{"id": "model_version:databricks:M/1", "platform": "databricks", "name": "M",
                                      "version": "1"}]
    assert [list(a.items()) for a in out["aliases"]] == [[
        ("id", "alias:databricks:M@champion"), ("platform", "databricks"), ("name", "M"), ("version", "1"),
        ("alias", "champion")]]
    assert out["endpoints"] == []


def test_a_misspelt_trace_field_raises_instead_of_reading_nothing(small_graph):
    answer = trace(small_graph, "model:M@champion", as_of="now")
    assert answer.runs[0].git_sha == SHA and answer.inputs[1].via == ["table_lineage"]
    for wrong in ("run", "summary", "servings"):
        with pytest.raises(AttributeError):
            getattr(answer, wrong)
    with pytest.raises(AttributeError):
        answer.runs[0].gitsha  # noqa: B018
    with pytest.raises(AttributeError):
        answer.inputs[0].version_kown  # noqa: B018
    with pytest.raises(TypeError):
        answer.runs[0]["git_sha"]  # noqa: B018  (no longer a dict)
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.runs[0].git_sha = "b" * 40
    with pytest.raises(AttributeError):   # an impact answer has no upstream summary
        impact(small_graph, "table:c.gold.f", as_of="now").git_shas  # noqa: B018


# -- gates: the result's target, policy, run, baseline and lineage --------------------------------
from tests.demo_fixture import demo_dir  # noqa: E402,F401  (fixture)


@pytest.fixture(scope="module")
def demo_gate(demo_dir):  # noqa: F811
    """The demo's first Fabric version (rf-baseline, no git SHA) against its @Production v2."""
    from gates.evaluate import Context, evaluate
    from gates.policy import DEFAULT_POLICY, load_policy
    from store import Store

    ctx = Context(Store(demo_dir / "waymark.duckdb"))
    # Each run name is one run in the demo (v2 on Fabric was copied from Databricks' gbm-tuned-depth).
    run_ids = dict(zip(ctx.runs["run_name"], ctx.runs["run_id"]))
    return evaluate(ctx, load_policy(DEFAULT_POLICY), "fabric-churn", "churn_model", "1"), run_ids, ctx


def test_gate_json_keeps_the_contract_keys_and_values(demo_gate):
    import hashlib
    from pathlib import Path

    from gates.policy import DEFAULT_POLICY

    result, run_ids, ctx = demo_gate
    out = result.to_json()
    assert list(out) == ["target", "status", "evaluated_at", "policy", "snapshot_ids", "run", "baseline", "criteria",
                         "metrics", "lineage", "baseline_state", "baseline_summary", "metric_gaps", "counts",
                         "blocking"]
    assert list(out["target"].items()) == [("source", "fabric-churn"), ("platform", "fabric"),
                                           ("name", "churn_model"), ("version", "1"),
                                           ("label", "model:churn_model/1 (fabric, fabric-churn)")]
    text = Path(DEFAULT_POLICY).read_text(encoding="utf-8")
    assert list(out["policy"].items()) == [
        ("path", str(DEFAULT_POLICY)), ("sha256", hashlib.sha256(text.encode("utf-8")).hexdigest()),
        ("baseline_alias", "champion"), ("baseline_rule", "the first alias of @champion, @Production, @prod")]
    assert list(out["run"].items()) == [
        ("source", "fabric-churn"), ("platform", "fabric"), ("run_id", run_ids["rf-baseline"]),
        ("run_name", "rf-baseline"), ("user_id", "unknown"), ("via", "model_versions.run_id (fabric-churn)"),
        ("git_sha", None), ("lifecycle_stage", "active"), ("authors", [])]
    sid = ctx.snapshot_ids["fabric-churn"]
    assert list(out["baseline"].items()) == [
        ("alias", "Production"), ("label", "@Production"), ("basis", "alias"), ("version", "2"),
        ("source", "fabric-churn"), ("run_id", run_ids["gbm-tuned-depth"]), ("run_name", "gbm-tuned-depth"),
        ("via", "model_origins.origin_run_id: the MLmodel file (fabric-churn)"), ("snapshot_id", sid),
        ("evidence", f"model_aliases: churn_model@Production = v2 (snapshot {sid} of fabric-churn)")]
    lineage = out["lineage"]
    run_node = f"run:fabric:{run_ids['rf-baseline']}"
    assert list(lineage) == ["node", "runs", "git_shas", "inputs", "gaps"]
    assert lineage["node"] == "model_version:fabric:churn_model/1" and lineage["git_shas"] == []
    assert [list(r) for r in lineage["runs"]] == [["id", "platform", "source", "run_id", "run_name", "experiment",
                                                    "git_sha", "lifecycle_stage", "collected"]]
    assert (lineage["runs"][0]["id"], lineage["runs"][0]["experiment"]) == (run_node, "customer-churn")
    (table,) = lineage["inputs"]
    assert list(table) == ["id", "type", "level", "platform", "name", "version", "version_known", "basis"]
    assert (table["level"], table["version"], table["version_known"]) == ("version", "3", True)
    assert lineage["gaps"] == [{"gap": "no_git_sha", "node": run_node,
                                "message": f"run {run_ids['rf-baseline']} (rf-baseline) records no git commit: "
                                           "no mlflow.source.git.commit tag, no git SHA param"}]


def test_a_misspelt_gate_field_raises_instead_of_reading_nothing(demo_gate):
    result = demo_gate[0]
    assert (result.target.name, result.baseline.version, result.run.authors) == ("churn_model", "2", [])
    assert result.lineage.gaps[0].kind.value == "no_git_sha" and result.policy.baseline_alias == "champion"
    for record, wrong in ((result.target, "model"), (result.baseline, "alais"), (result.run, "author"),
                          (result.policy, "sha"), (result.lineage, "shas")):
        with pytest.raises(AttributeError):
            getattr(record, wrong)
    with pytest.raises(TypeError):
        result.baseline["version"]  # noqa: B018  (no longer a dict: `.get` cannot hide a typo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.baseline.version = "3"


# -- gates: review log entries --------------------------------------------------------------------
def test_review_entries_are_the_stored_rows_with_every_column(tmp_path):
    import hashlib
    import json

    from gates.reviews import GENESIS, ReviewEntry, append_entry, read_log, verify
    from store import Store

    store = Store(tmp_path / "w.duckdb")
    store.migrate()
    written = append_entry(store, kind="review", source="dbx", platform="databricks", model_name="churn",
                           version="1", decision="approve", reviewer="ana", reviewer_verified=True,
                           identity_source="oidc", note="ok ✓", gate_status="PASS", gate_result='{"status":"PASS"}',
                           snapshot_ids='{"dbx":3}', recorded_at="2026-11-01T00:00:00.000000Z")
    expected = {"entry_id": 1, "recorded_at": "2026-11-01T00:00:00.000000Z", "kind": "review", "source": "dbx",
                "platform": "databricks", "model_name": "churn", "version": "1", "decision": "approve",
                "reviewer": "ana", "reviewer_verified": True, "identity_source": "oidc", "note": "ok ✓",
                "gate_status": "PASS", "gate_result": '{"status":"PASS"}', "snapshot_ids": '{"dbx":3}',
                "ref_entry": None, "prev_hash": GENESIS}
    # The hash as the module docstring defines it: sha256 of the canonical JSON of every other field.
    digest = hashlib.sha256(json.dumps(expected, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False).encode("utf-8")).hexdigest()
    (read,) = read_log(store)
    assert isinstance(written, ReviewEntry) and read == written
    assert list(read.to_dict().items()) == list({**expected, "entry_hash": digest}.items())
    with store.reader() as con:     # the row as stored, read without the module
        cur = con.execute("SELECT * FROM gate_review_log")
        assert dict(zip([d[0] for d in cur.description], cur.fetchone())) == read.to_dict()
    assert verify(store).ok


def test_a_misspelt_review_field_raises_and_a_forged_copy_is_refused(tmp_path):
    import dataclasses

    from gates.reviews import ReviewEntry, append_entry, entry_hash
    from store import Store

    assert tuple(f.name for f in dataclasses.fields(ReviewEntry)) == (
        "entry_id", "recorded_at", "kind", "source", "platform", "model_name", "version", "decision", "reviewer",
        "reviewer_verified", "identity_source", "note", "gate_status", "gate_result", "snapshot_ids", "ref_entry",
        "prev_hash", "entry_hash")
    store = Store(tmp_path / "w.duckdb")
    store.migrate()
    entry = append_entry(store, kind="review", source="dbx", platform="databricks", model_name="churn", version="1",
                         decision="reject", reviewer="ana", reviewer_verified=False, identity_source="local",
                         note="no", snapshot_ids="{}")
    for wrong in ("verified", "reviewer_verifed", "model"):
        with pytest.raises(AttributeError):
            getattr(entry, wrong)
    with pytest.raises(TypeError):
        entry["reviewer_verified"]  # noqa: B018  (no longer a dict: `.get` cannot hide a typo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.reviewer_verified = True
    forged = dataclasses.replace(entry, reviewer_verified=True)
    assert entry_hash(entry) == entry.entry_hash != entry_hash(forged)


# -- health: one row per deployment / served entity ---------------------------------------------
def test_health_rows_keep_the_table_columns_and_values(tmp_path):
    from health.status import COLUMNS, GREY, HealthRow, health_rows, health_table
    from tests.test_health import NOW, _dbx_store

    cpu_only = "# TYPE cpu_usage_percentage gauge\ncpu_usage_percentage{served_entity_name=\"churn-v4\"} 3.0\n"
    store = _dbx_store(tmp_path, {"read_status": "ok"}, cpu_only)
    (row,) = health_rows(store, (), now=NOW)
    expected = {"status": GREY, "platform": "databricks", "source": "dbx", "endpoint": "churn-dbx",
                "deployment": "churn-v4", "state": "DEPLOYMENT_READY", "model": "m", "version": "4",
                "traffic_pct": 100.0, "mirror_pct": 0.0, "should_serve": None, "drift": False,
                "latency_p50_ms": None, "latency_p95_ms": None, "error_rate_pct": None, "requests_per_min": None,
                "last_data": None, "stale": True, "reasons": "no metric data"}
    assert isinstance(row, HealthRow) and list(row.to_dict().items()) == list(expected.items())
    assert [f.name for f in dataclasses.fields(HealthRow)] == COLUMNS
    # The page's table: exactly what a frame of the plain dict holds.
    import pandas as pd

    pd.testing.assert_frame_equal(health_table(store, (), now=NOW), pd.DataFrame([expected], columns=COLUMNS))


def test_a_misspelt_health_field_raises(tmp_path):
    from health.status import health_rows
    from tests.test_health import NOW, _dbx_store

    (row,) = health_rows(_dbx_store(tmp_path, {"read_status": "ok"}, None), (), now=NOW)
    assert row.stale is True and row.drift is False
    for wrong in ("p95", "latency_p95", "reason", "served"):
        with pytest.raises(AttributeError):
            getattr(row, wrong)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.status = "green"


# -- collectors → store: a row field the entity does not store is refused, by name -----------------
def test_frame_of_refuses_a_row_field_that_is_not_a_column():
    from store.entities import ENTITIES, UnknownColumn, frame_of

    aliases = ENTITIES["model_aliases"]
    good = frame_of(aliases, "dbx", [{"name": "m", "alias": "champion", "version": "3"}])
    assert good.loc[0, ["source", "name", "alias", "version"]].tolist() == ["dbx", "m", "champion", "3"]
    with pytest.raises(UnknownColumn) as e:    # a typo used to be dropped, the version stored as NULL
        frame_of(aliases, "dbx", [{"name": "m", "alias": "champion", "verison": "3"}])
    assert "model_aliases" in str(e.value) and "'verison'" in str(e.value) and "source dbx" in str(e.value)


def test_a_batch_with_an_unknown_field_commits_nothing(tmp_path):
    from datetime import datetime, timezone

    from store import Store
    from store.entities import EntityBatch, Scope, UnknownColumn
    from store.history import commit_snapshot
    from tests.conftest import table_dump

    store = Store(tmp_path / "w.duckdb")
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)

    def snapshot(row):
        return commit_snapshot(store, source="dbx", kind="mlflow", platform="databricks", mode="full",
                               started_at=now, finished_at=now, warnings=[], state={},
                               batches={"model_aliases": EntityBatch([row], Scope.ALL)})

    snapshot({"name": "m", "alias": "champion", "version": "3"})
    before = table_dump(tmp_path / "w.duckdb", "model_aliases")
    with pytest.raises(UnknownColumn):
        snapshot({"name": "m", "alias": "champion", "verison": "4"})
    assert table_dump(tmp_path / "w.duckdb", "model_aliases") == before and len(before) == 1
