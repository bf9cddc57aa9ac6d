"""Re-snapshots: incremental passes see changes and only changes; `--full` records removals.

The `evolving` fixture (conftest) runs: first (full) → unchanged → changed → purged → full (CLI).
"""
from __future__ import annotations

import shutil
import time

from store.db import Store
from tests.conftest import DAY_MS, client, mlflow_source, new_mlflow_store, write_config

ENTITIES = ("experiments", "runs", "run_inputs", "logged_models", "registered_models",
            "model_versions", "model_aliases", "model_origins")


def rows(evolving, sql: str, params=()):
    with evolving.store.reader() as con:
        return con.execute(sql, list(params)).fetchall()


def test_second_pass_is_incremental_and_unchanged_data_changes_nothing(evolving):
    first, again = evolving.steps["first"], evolving.steps["unchanged"]
    assert (first.ok, first.mode, again.ok, again.mode) == (True, "full", True, "incremental")
    assert set(again.counts) == set(ENTITIES)
    assert {e: (c["added"], c["changed"], c["removed"]) for e, c in again.counts.items()} == \
        {e: (0, 0, 0) for e in ENTITIES}
    # The unchanged pass wrote a snapshot row but no entity row.
    assert rows(evolving, "SELECT count(*) FROM runs WHERE valid_from = ?", [again.snapshot_id]) == [(0,)]


def test_versions_mlmodel_is_read_once(evolving):
    first, again, changed = (evolving.steps[k] for k in ("first", "unchanged", "changed"))
    assert first.counts["model_origins"]["seen"] == 2
    assert again.counts["model_origins"]["seen"] == 0          # known versions: not re-read
    assert changed.counts["model_origins"] == {"seen": 1, "added": 1, "changed": 0, "removed": 0}  # only v3
    assert rows(evolving, """SELECT version, read_status FROM model_origins
                             WHERE valid_to IS NULL ORDER BY version""") == [("1", "ok"), ("2", "ok"), ("3", "ok")]


def test_new_run_is_added(evolving):
    changed = evolving.steps["changed"]
    assert changed.mode == "incremental" and changed.counts["runs"]["added"] == 1
    assert rows(evolving, "SELECT run_name, valid_from FROM runs WHERE run_id = ?", [evolving.ids["new"]]) == \
        [("r-new", changed.snapshot_id)]


def test_running_run_outside_the_lookback_is_repolled_and_updated(evolving):
    changed = evolving.steps["changed"]
    history = rows(evolving, """SELECT status, end_time IS NOT NULL, valid_from, valid_to FROM runs
                                WHERE run_id = ? ORDER BY valid_from""", [evolving.ids["long"]])
    first = evolving.steps["first"].snapshot_id
    assert history == [("RUNNING", False, first, changed.snapshot_id), ("FINISHED", True, changed.snapshot_id, None)]


def test_deleted_run_becomes_lifecycle_deleted(evolving):
    changed = evolving.steps["changed"].snapshot_id
    history = rows(evolving, """SELECT lifecycle_stage, valid_from = ?, valid_to FROM runs
                                WHERE run_id = ? ORDER BY valid_from""", [changed, evolving.ids["doomed"]])
    assert history[0][0] == "active" and history[0][2] == changed
    assert history[1][:2] == ("deleted", True)


def test_alias_move_closes_the_old_row_and_opens_a_new_one(evolving):
    first, changed = evolving.steps["first"].snapshot_id, evolving.steps["changed"].snapshot_id
    assert rows(evolving, """SELECT version, valid_from, valid_to FROM model_aliases
                             WHERE name = 'evo-model' AND alias = 'champion' ORDER BY valid_from""") == \
        [("1", first, changed), ("2", changed, None)]
    assert evolving.steps["changed"].counts["model_aliases"]["changed"] == 1


def test_incremental_misses_a_purged_run_and_full_records_the_removal(evolving):
    purged, full = evolving.steps["purged"], evolving.steps["full"]
    doomed = evolving.ids["doomed"]
    # After `mlflow gc` the run is gone from MLflow; an incremental pass cannot notice an absence ...
    assert purged.ok and sum(c["removed"] for c in purged.counts.values()) == 0
    # ... a full pass does, and closes the run and its inputs (history is kept).
    assert (full["ok"], full["mode"]) == (True, "full")
    assert full["counts"]["runs"]["removed"] == 1 and full["counts"]["run_inputs"]["removed"] == 1
    assert full["counts"]["runs"]["added"] == 0 and full["counts"]["model_versions"]["removed"] == 0
    assert rows(evolving, "SELECT count(*) FROM runs WHERE run_id = ? AND valid_to IS NULL", [doomed]) == [(0,)]
    assert rows(evolving, "SELECT max(valid_to) FROM runs WHERE run_id = ?", [doomed]) == [(full["snapshot_id"],)]
    assert rows(evolving, "SELECT count(*) FROM runs WHERE valid_to IS NULL") == [(3,)]


def test_recreated_model_version_is_reread_and_full_closes_origins_of_removed_versions(
        tmp_path, mlflow_template, workspace):
    """Version numbers restart at 1 when a model is deleted and re-created: the stored origin of the
    old v1 must not be reused for the new one. A full pass also closes origins of deleted versions."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store

    uri = new_mlflow_store(tmp_path / "mlflow", mlflow_template)
    c = client(uri)
    good = tmp_path / "mlflow" / "artifacts" / "good"
    shutil.copytree(workspace.model_artifacts, good)
    bare = tmp_path / "mlflow" / "artifacts" / "bare"
    bare.mkdir()
    c.create_registered_model("phoenix")
    c.create_model_version("phoenix", source=str(good))
    c.create_model_version("phoenix", source=str(good))
    config = load_config(write_config(tmp_path / "g.toml", [mlflow_source("src", uri)]))
    [first] = snapshot_all(config)
    c.delete_registered_model("phoenix")
    c.create_registered_model("phoenix")
    c.create_model_version("phoenix", source=str(bare))
    [second] = snapshot_all(config)
    assert first.ok and second.ok, (first.errors, second.errors)
    store = Store(config.store_path)
    with store.reader() as con:
        current = dict(con.execute("""SELECT version, read_status FROM model_origins
                                       WHERE valid_to IS NULL""").fetchall())
    assert current["1"] == "missing"      # re-read: the new v1 has no MLmodel
    assert second.counts["model_versions"]["removed"] == 1   # v2 is gone (registry listed in full)
    [full] = snapshot_all(config, full=True)
    assert full.ok and full.counts["model_origins"]["removed"] == 1
    with store.reader() as con:
        assert con.execute("SELECT version FROM model_origins WHERE valid_to IS NULL").fetchall() == [("1",)]


def test_full_every_hours_catches_what_incremental_passes_cannot_see(tmp_path, mlflow_template):
    scheduled_full_scenario(tmp_path, mlflow_template)


def scheduled_full_scenario(tmp_path, mlflow_template):
    """A tag changed on a finished run and a deleted run restored stay invisible to incremental passes
    (neither moves the start-time watermark nor shows in the deleted list); the scheduled full pass sees both."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.queries import entity_as_of, last_full_passes

    uri = new_mlflow_store(tmp_path / "mlflow", mlflow_template)
    c = client(uri)
    now = int(time.time() * 1000)
    exp = c.create_experiment("sched", artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri())
    old = c.create_run(exp, start_time=now - 10 * DAY_MS, tags={"stage": "draft"}).info.run_id
    c.set_terminated(old, "FINISHED", end_time=now - 10 * DAY_MS + 1000)
    gone = c.create_run(exp, start_time=now - 9 * DAY_MS).info.run_id
    c.set_terminated(gone, "FINISHED", end_time=now - 9 * DAY_MS + 1000)
    c.delete_run(gone)
    c.set_terminated(c.create_run(exp, start_time=now).info.run_id, "FINISHED")   # moves the watermark to now
    config = load_config(write_config(tmp_path / "g.toml", [mlflow_source("src", uri, full_every_hours=24)]))
    store = Store(config.store_path)

    def current(run_id):
        runs = entity_as_of(store, "runs").set_index("run_id")
        return runs.loc[run_id, "tags"], runs.loc[run_id, "lifecycle_stage"]

    [first] = snapshot_all(config)
    assert first.ok and first.mode == "full"
    c.set_tag(old, "stage", "approved")
    c.restore_run(gone)
    [second] = snapshot_all(config)
    assert second.ok and second.mode == "incremental"
    assert "draft" in str(current(old)[0]) and current(gone)[1] == "deleted"   # what incremental cannot see

    # 25 hours later (the last full pass back-dated): the pass is full, and sees both.
    with store.writer() as con:
        con.execute("UPDATE snapshots SET finished_at = finished_at - INTERVAL 25 HOUR, "
                    "started_at = started_at - INTERVAL 25 HOUR WHERE snapshot_id = ?", [first.snapshot_id])
    [third] = snapshot_all(config)
    assert third.ok and third.mode == "full", third
    assert "approved" in str(current(old)[0]) and current(gone)[1] == "active"
    last = last_full_passes(store).set_index("source")
    assert last.loc["src", "snapshot_id"] == third.snapshot_id and last.loc["src", "full_reason"] == "scheduled"
    [fourth] = snapshot_all(config)
    assert fourth.mode == "incremental"   # the full pass just ran: not due again


def test_snapshots_page_shows_the_last_full_pass_per_source(tmp_path, mlflow_template, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    scheduled_full_scenario(tmp_path, mlflow_template)
    monkeypatch.setenv("WAYMARK_CONFIG", str(tmp_path / "g.toml"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/snapshots.py").run()
    assert not at.exception, at.exception
    assert any(h.value == "Last full pass" for h in at.subheader)
    last = at.dataframe[-1].value.set_index("source")
    assert last.loc["src", "full_reason"] == "scheduled" and last.loc["src", "ago"].endswith(("ago", "just now"))


def test_full_every_hours_zero_makes_every_pass_full(tmp_path, mlflow_template):
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    uri = new_mlflow_store(tmp_path / "mlflow", mlflow_template)
    client(uri).create_experiment("e", artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri())
    config = load_config(write_config(tmp_path / "g.toml", [mlflow_source("src", uri, full_every_hours=0)]))
    assert [snapshot_all(config)[0].mode for _ in range(2)] == ["full", "full"]


def test_incremental_during_a_sweep_reads_only_new_and_changed_runs(tmp_path, mlflow_template):
    """A sweep of 120 finished runs started over the last hour, then 1% new: the incremental pass reads
    the new run, the run that finished since the last pass and a late-clock run, not the sweep (a fixed
    one-hour look-back re-read all of it). A later late-clock run, further behind than the margin, is
    still seen because the first one's lateness was measured and widens the look-back."""
    from mlflow.entities import Param

    from collectors.config import load_config
    from collectors.mlflow_source import SKEW_MARGIN_MS
    from collectors.runner import snapshot_all

    uri = new_mlflow_store(tmp_path / "mlflow", mlflow_template)
    c = client(uri)
    now = int(time.time() * 1000)
    minute = 60_000
    exp = c.create_experiment("sweep", artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri())
    sweep = []
    for i in range(120):   # every 25 s from 60 min ago to 10 min ago
        start = now - 60 * minute + i * 25_000
        run_id = c.create_run(exp, start_time=start, run_name=f"trial-{i}").info.run_id
        c.log_batch(run_id, params=[Param("lr", str(i / 1000))])
        c.set_terminated(run_id, "FINISHED", end_time=start + 20_000)
        sweep.append(run_id)
    slow = c.create_run(exp, start_time=now - 30 * minute, run_name="slow").info.run_id   # still running
    config = load_config(write_config(tmp_path / "g.toml", [mlflow_source("src", uri)]))
    [first] = snapshot_all(config)
    assert first.ok and first.mode == "full" and first.counts["runs"]["seen"] == 121
    watermark = max(r.info.start_time for r in c.search_runs([exp], max_results=1000))

    new = c.create_run(exp, start_time=int(time.time() * 1000), run_name="new").info.run_id
    c.set_terminated(slow, "FINISHED")
    late = c.create_run(exp, start_time=watermark - 2 * minute, run_name="late-clock").info.run_id
    [second] = snapshot_all(config)
    assert second.ok and second.mode == "incremental", second.errors
    runs = second.counts["runs"]
    assert (runs["added"], runs["changed"]) == (2, 1)
    # Read: new, late, slow (re-polled), and the sweep runs within the margin of the watermark only.
    window = SKEW_MARGIN_MS
    in_window = sum(1 for i in range(120) if now - 60 * minute + i * 25_000 >= watermark - window)
    assert runs["seen"] == 3 + in_window < 40, runs
    current = {r.info.run_id: r.info.status for r in c.search_runs([exp], max_results=1000)}
    assert current[slow] == "FINISHED"
    with Store(config.store_path).reader() as con:
        stored = dict(con.execute("SELECT run_id, status FROM runs WHERE valid_to IS NULL").fetchall())
    assert stored[new] == "RUNNING"
    assert stored[late] == "RUNNING" and stored[slow] == "FINISHED"

    # 6 minutes late: beyond the bare margin, within the lateness measured above plus the margin.
    watermark = c.get_run(new).info.start_time
    later = c.create_run(exp, start_time=watermark - 6 * minute, run_name="later-clock").info.run_id
    [third] = snapshot_all(config)
    assert third.ok and third.counts["runs"]["added"] == 1, third.counts["runs"]
    with Store(config.store_path).reader() as con:
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ? AND valid_to IS NULL", [later]).fetchall() == [(1,)]


def test_lookback_never_exceeds_lookback_seconds(tmp_path, mlflow_template):
    """A run imported with an old start time (days 'late') is seen when inside `lookback_seconds`
    of the watermark, and the measured skew never widens the look-back past that bound."""
    from collectors.config import SourceConfig
    from collectors.mlflow_source import MlflowSource, PreviousState
    from collectors.report import SourceReport

    source = MlflowSource(SourceConfig(name="s", kind="mlflow", platform="databricks", lookback_seconds=3600),
                          SourceReport("s"))
    state = PreviousState(1_000_000_000, [], {}, set(), skew_ms=10 * DAY_MS)
    assert source.lookback_ms(state) == 3_600_000
    assert source.lookback_ms(PreviousState(1_000_000_000, [], {}, set())) == 300_000


def test_registry_listing_does_not_cost_a_call_per_model(tmp_path, mlflow_template):
    """An OSS registry's versions come from a few paged searches, so an incremental pass with nothing
    new costs the same few API calls with 1 model or 40 (one search per model made it grow with them)."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    uri = new_mlflow_store(tmp_path / "mlflow", mlflow_template)
    c = client(uri)
    exp = c.create_experiment("reg", artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri())
    run_id = c.create_run(exp).info.run_id
    c.set_terminated(run_id, "FINISHED")
    for m in range(40):
        c.create_registered_model(f"m-{m:02d}")
        c.create_model_version(f"m-{m:02d}", source=str(tmp_path / "nowhere"), run_id=run_id)
    config = load_config(write_config(tmp_path / "g.toml", [mlflow_source("src", uri, read_model_origins=False)]))
    [first] = snapshot_all(config)
    [second] = snapshot_all(config)
    assert first.ok and second.ok and second.mode == "incremental", (first.errors, second.errors)
    assert second.counts["model_versions"]["seen"] == 40
    assert second.api_calls < 10, second.api_calls
