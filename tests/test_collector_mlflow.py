"""The MLflow collector on real sqlite stores filled by the real client (see conftest `workspace`)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import (CSV_PATH, DBX_EXPERIMENT, DBX_MODEL, FAB_MODEL, FEATURES, HOLDOUT, HUGE_TAG,
                            ONELAKE_PATH, SHA_A, SHA_A_PARAM, SHA_B, SHA_C, UNICODE_OWNER, UNICODE_RUN_NAME, client,
                            mlflow_source, write_config)


def current(snap, table: str, source: str | None = None):
    """Current rows of a table as dicts (JSON columns parsed), through the point-in-time reader."""
    from store.queries import entity_as_of

    frame = entity_as_of(snap.store, table)
    if source:
        frame = frame[frame["source"] == source]
    # Missing values as None whatever dtype pandas picked (NaN in str/float columns).
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def run_row(snap, run_id: str) -> dict:
    rows = [r for r in current(snap, "runs") if r["run_id"] == run_id]
    assert len(rows) == 1, rows
    return rows[0]


def test_both_sources_commit_a_full_snapshot(snapshotted):
    from store.queries import snapshots

    assert {s: (o.ok, o.mode, o.errors) for s, o in snapshotted.outcomes.items()} == {
        "dbx": (True, "full", []), "fab": (True, "full", [])}
    hist = snapshots(snapshotted.store)
    assert sorted(zip(hist["source"], hist["status"], hist["mode"])) == [("dbx", "ok", "full"), ("fab", "ok", "full")]
    counts = snapshotted.outcomes["dbx"].counts
    assert counts["runs"] == {"seen": 4, "added": 4, "changed": 0, "removed": 0}
    assert counts["model_versions"]["added"] == 2 and counts["model_origins"]["added"] == 2


def test_params_metrics_tags_and_nan_metric(snapshotted, workspace):
    run = run_row(snapshotted, workspace.ids["run_a"])
    assert run["params"] == {"max_depth": "4", "git_sha": SHA_A_PARAM, "étiquette": "valeur-é"}
    assert run["metrics"]["roc_auc"] == pytest.approx(0.85)
    # NaN is not JSON: stored as null (a gap), and the pass did not crash.
    assert "loss" in run["metrics"] and run["metrics"]["loss"] is None
    with snapshotted.store.reader() as con:
        raw = con.execute("SELECT metrics FROM runs WHERE run_id = ?", [workspace.ids["run_a"]]).fetchall()[0][0]
    assert "NaN" not in raw and json.loads(raw)["loss"] is None
    assert run["tags"]["owner"] == UNICODE_OWNER
    assert run["tags"]["huge"] == HUGE_TAG and len(run["tags"]["huge"]) == 8000
    assert run["status"] == "FINISHED" and run["lifecycle_stage"] == "active"
    assert run["source_type"] == "JOB" and run["platform"] == "databricks"


def test_unicode_names_survive(snapshotted, workspace):
    run = run_row(snapshotted, workspace.ids["run_a"])
    assert run["run_name"] == UNICODE_RUN_NAME
    exps = {e["name"]: e for e in current(snapshotted, "experiments", "dbx")}
    assert DBX_EXPERIMENT in exps and exps[DBX_EXPERIMENT]["tags"]["team"] == "données"


def test_git_sha_from_tag_param_or_absent(snapshotted, workspace):
    ids = workspace.ids
    runs = {r["run_id"]: r for r in current(snapshotted, "runs")}
    got = {k: (runs[ids[k]]["git_sha"], runs[ids[k]]["git_sha_from"]) for k in ("run_a", "run_b", "run_c", "run_d")}
    assert got == {
        # The MLflow git tag wins over a `git_sha` param that disagrees with it.
        "run_a": (SHA_A, "tag:mlflow.source.git.commit"),
        "run_b": (SHA_B, "param:git_sha"),
        "run_c": (None, None),   # `commit_sha` is not a git SHA name unless configured
        "run_d": (None, None),
    }
    assert runs[ids["run_d"]]["status"] == "RUNNING" and runs[ids["run_d"]]["end_time"] is None


@pytest.fixture(scope="module")
def custom_param_snapshot(workspace, tmp_path_factory, monkeypatch_module):
    """dbx collected with `git_sha_param = "commit_sha"` and runs/search pages of one run each."""
    import collectors.mlflow_source as ms
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store

    monkeypatch_module.setattr(ms, "RUN_PAGE_SIZE", 1)
    root = tmp_path_factory.mktemp("custom-param")
    cfg = write_config(root / "governance.toml", [mlflow_source("dbx", workspace.dbx_uri, git_sha_param="commit_sha")])
    [outcome] = snapshot_all(load_config(cfg))
    return outcome, Store(load_config(cfg).store_path)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_configurable_git_sha_param_and_paging(custom_param_snapshot, workspace):
    outcome, store = custom_param_snapshot
    assert outcome.ok, outcome.errors
    with store.reader() as con:
        rows = dict(con.execute("SELECT run_id, git_sha || '|' || git_sha_from FROM runs").fetchall())
    assert rows[workspace.ids["run_c"]] == f"{SHA_C}|param:commit_sha"
    assert rows[workspace.ids["run_a"]] == f"{SHA_A}|tag:mlflow.source.git.commit"   # the tag still wins
    assert rows[workspace.ids["run_b"]] is None                                     # `git_sha` no longer read
    # Four runs read one per page: every page followed, nothing lost.
    assert len(rows) == 4 and outcome.counts["runs"]["seen"] == 4


def test_delta_inputs_versions_and_paths(snapshotted, workspace):
    inputs = {(r["run_id"], r["table_name"] or r["path"]): r for r in current(snapshotted, "run_inputs")}
    a = workspace.ids["run_a"]
    features = inputs[(a, FEATURES)]
    assert (features["source_type"], features["context"], features["table_version"], features["version_known"]) == \
        ("delta_table", "training", 5, True)
    # MLflow drops version 0 from the Delta source JSON: unknown-or-0, never guessed.
    holdout = inputs[(a, HOLDOUT)]
    assert "delta_table_version" not in json.loads(holdout["source_json"])
    assert holdout["version_known"] is False and holdout["table_version"] is None
    with snapshotted.store.reader() as con:
        assert con.execute("SELECT table_version IS NULL, version_known FROM run_inputs WHERE table_name = ?",
                           [HOLDOUT]).fetchall() == [(True, False)]
    csv = inputs[(workspace.ids["run_b"], CSV_PATH)]
    assert csv["source_type"] != "delta_table" and csv["dataset_name"] == "churn_csv"
    assert csv["version_known"] is False and csv["table_version"] is None
    onelake = inputs[(workspace.ids["fab_run"], ONELAKE_PATH)]
    assert (onelake["platform"], onelake["table_version"], onelake["table_name"]) == ("fabric", 3, None)


def test_aliases_read_from_the_registered_model(snapshotted):
    # search_model_versions returns aliases=[] on OSS: the collector must not rely on it.
    aliases = sorted((r["source"], r["name"], r["alias"], r["version"]) for r in current(snapshotted, "model_aliases"))
    assert aliases == [("dbx", DBX_MODEL, "challenger", "2"), ("dbx", DBX_MODEL, "champion", "1"),
                       ("fab", FAB_MODEL, "Production", "1")]
    versions = {(r["source"], r["version"]): r for r in current(snapshotted, "model_versions") if r["name"] in (DBX_MODEL, FAB_MODEL)}
    assert versions[("dbx", "1")]["aliases"] == ["champion"]
    assert versions[("dbx", "2")]["aliases"] == ["challenger"]
    assert versions[("fab", "2")]["aliases"] == []


def test_search_results_really_drop_aliases(workspace):
    """The premise of the test above, checked on the real client (if MLflow changes, revisit)."""
    found = client(workspace.dbx_uri).search_model_versions(f"name='{DBX_MODEL}'")
    assert found and all(v.aliases == [] for v in found)


def test_model_versions_link_to_logged_model(snapshotted, workspace):
    versions = {(r["source"], r["version"]): r for r in current(snapshotted, "model_versions")}
    for v in ("1", "2"):
        row = versions[("dbx", v)]
        assert row["source_uri"] == f"models:/{workspace.ids['model_id']}"
        assert row["model_id"] == workspace.ids["model_id"] and row["model_id"].startswith("m-")
        assert row["run_id"] == workspace.ids["run_a"]
    assert versions[("dbx", "1")]["tags"] == {"validated": "true"}
    # Registered from a path: no model id in any registry field.
    assert versions[("fab", "1")]["model_id"] is None
    logged = {r["model_id"]: r for r in current(snapshotted, "logged_models")}
    assert logged[workspace.ids["model_id"]]["source_run_id"] == workspace.ids["run_a"]
    assert run_row(snapshotted, workspace.ids["run_a"])["output_model_ids"] == [workspace.ids["model_id"]]


def test_copied_artifacts_keep_the_origin_run_across_platforms(snapshotted, workspace):
    origins = {(r["source"], r["version"]): r for r in current(snapshotted, "model_origins")}
    fab = origins[("fab", "1")]
    assert fab["read_status"] == "ok"
    assert fab["origin_run_id"] == workspace.ids["run_a"]          # the Databricks run
    assert fab["origin_model_id"] == workspace.ids["model_id"]     # the Databricks LoggedModel
    assert {"sklearn", "python_function"} <= set(fab["flavors"])
    assert origins[("dbx", "1")]["origin_run_id"] == workspace.ids["run_a"]


def test_artifacts_without_mlmodel_are_missing_not_unreadable(snapshotted):
    origins = {(r["source"], r["version"]): r for r in current(snapshotted, "model_origins")}
    assert origins[("fab", "2")]["read_status"] == "missing"
    assert origins[("fab", "2")]["origin_run_id"] is None
    # "missing" is a known state, not a problem to warn about on every pass.
    assert snapshotted.outcomes["fab"].warnings == []


def test_platform_comes_from_the_source(snapshotted):
    runs = current(snapshotted, "runs")
    assert {(r["source"], r["platform"]) for r in runs} == {("dbx", "databricks"), ("fab", "fabric")}


def test_missing_configured_experiment_is_a_warning(workspace, tmp_path):
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    cfg = write_config(tmp_path / "g.toml", [mlflow_source("fab", workspace.fab_uri, "fabric",
                                                           experiments=["customer-churn", "no-such-exp"])])
    [o] = snapshot_all(load_config(cfg))
    assert o.ok and any("no-such-exp" in w for w in o.warnings)
    assert o.counts["experiments"]["seen"] == 1


def test_paging_follows_tokens_through_empty_pages_and_stops_on_a_repeated_token():
    from mlflow.store.entities.paged_list import PagedList

    from collectors.paging import PagingError, iter_items

    pages = {None: PagedList([1, 2], "t1"), "t1": PagedList([], "t2"), "t2": PagedList([3], None)}
    calls = []
    assert list(iter_items(lambda tok: calls.append(tok) or pages[tok])) == [1, 2, 3]
    assert calls == [None, "t1", "t2"]
    looping = {None: PagedList([1], "same"), "same": PagedList([2], "same")}
    with pytest.raises(PagingError, match="twice"):
        list(iter_items(lambda tok: looping[tok]))
