"""The shared DuckLake store against a real PostgreSQL catalog (Debian's `postgresql`, started here
with initdb on 127.0.0.1 and stopped at the end): concurrent collectors, readers during writes, a
killed collector, point-in-time answers equal to the DuckDB file's, and `store copy` both ways.

The catalog requires a password (scram over TCP), given only through PGPASSWORD, as in production.
"""
from __future__ import annotations

import signal
import sys
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.postgres_server import local_postgres, pg_bin
from tests.conftest import (REPO, cli_env, client, delta_input, mlflow_source, new_mlflow_store, start_holding_cli,
                            toml_value, wait_for_file, write_config)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the whole session (tests/postgres_server.py)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql when run as root)")
    with local_postgres(bin_dir) as server:
        yield server


_counter = iter(range(1, 10_000))


@pytest.fixture
def lake(postgres, tmp_path):
    """A new, empty lake: (catalog, data_path)."""
    catalog = postgres.createdb(f"lake{next(_counter)}")
    return catalog, str(tmp_path / "lake-data")


def lake_config(path: Path, sources: list[dict], catalog: str, data_path: str) -> Path:
    lines = ["[store]", 'backend = "ducklake"', f"catalog = {toml_value(catalog)}",
             f"data_path = {toml_value(data_path)}", ""]
    for s in sources:
        lines.append("[[sources]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in s.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class MlflowSource:
    """A small real MLflow sqlite store that can grow between snapshots."""

    def __init__(self, root: Path, template: Path, name: str):
        self.name = name
        self.uri = new_mlflow_store(root / name, template)
        self.client = client(self.uri)
        self.exp = self.client.create_experiment(name, artifact_location=(root / name / "artifacts").as_uri())
        self.n = 0

    def add_runs(self, n: int) -> list[str]:
        now, ids = int(time.time() * 1000), []
        for _ in range(n):
            self.n += 1
            run = self.client.create_run(self.exp, start_time=now + self.n, run_name=f"{self.name}-{self.n}").info.run_id
            self.client.log_param(run, "alpha", self.n / 10)
            self.client.log_metric(run, "roc_auc", 0.7 + self.n / 100)
            self.client.log_inputs(run, datasets=[delta_input("main.t.features", self.n, "training", f"d{self.n}")])
            self.client.set_terminated(run, "FINISHED", end_time=now + 1000 + self.n)
            ids.append(run)
        return ids

    def source(self) -> dict:
        return mlflow_source(self.name, self.uri)


def state(store, source: str) -> tuple[int, int]:
    with store.reader() as con:
        return tuple(con.execute(
            "SELECT (SELECT count(*) FROM snapshots WHERE source = ? AND status = 'ok'), "
            "(SELECT count(*) FROM runs WHERE source = ? AND valid_to IS NULL)", [source, source]).fetchall()[0])


def dump(store, tables=("snapshots", "runs", "run_inputs", "experiments", "model_versions", "model_aliases")):
    with store.reader() as con:
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


# -- config ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("catalog", [
    "host=pg.example.com dbname=waymark user=collector password=hunter2",
    "host=pg.example.com dbname=waymark user=collector PASSWORD = 'hunter 2'",
    "postgresql://collector:hunter2@pg.example.com/waymark",
    "postgresql://collector@pg.example.com/waymark?sslmode=require&password=hunter2",
])
def test_a_catalog_with_a_password_is_refused_naming_the_field(tmp_path, catalog):
    from collectors.config import ConfigError, load_config

    cfg = lake_config(tmp_path / "governance.toml", [], catalog, "lake")
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    assert "[store]" in str(e.value) and "'catalog'" in str(e.value) and "PGPASSWORD" in str(e.value)
    assert "hunter" not in str(e.value)


def test_store_section_defaults_to_the_duckdb_file_and_resolves_a_local_data_path(tmp_path):
    from collectors.config import ConfigError, load_config
    from store import Store
    from store.ducklake import DuckLakeSpec, DuckLakeStore

    plain = load_config(write_config(tmp_path / "a.toml", [], store=None))
    assert isinstance(plain.store_path, Path) and type(Store(plain.store_path)) is Store
    cfg = load_config(lake_config(tmp_path / "b.toml", [], "host=h dbname=w user=u", "lake files"))
    assert cfg.store_path == DuckLakeSpec("host=h dbname=w user=u", str(tmp_path / "lake files"))
    store = Store(str(cfg.store_path))   # the app passes the spec as a string: it must round-trip
    assert isinstance(store, DuckLakeStore) and store.spec == cfg.store_path
    (tmp_path / "c.toml").write_text('[store]\nbackend = "ducklake"\ncatalog = "host=h"\n')
    with pytest.raises(ConfigError, match="'data_path'"):
        load_config(tmp_path / "c.toml")


def test_an_adls_data_path_loads_azure_from_its_wheel_with_the_credential_chain(lake):
    """No network needed to attach: DuckLake records the data path, and the azure extension and a
    credential-chain secret (managed identity, environment, Azure CLI) are ready for the first write."""
    import duckdb

    from store.ducklake import DuckLakeSpec, attach

    url = "abfss://waymark@examplestore.dfs.core.windows.net/lake/"
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        attach(con, DuckLakeSpec(lake[0], url), "lake", read_only=False)
        assert con.execute("SELECT type, provider FROM duckdb_secrets()").fetchall() == [("azure", "credential_chain")]
        assert {"azure", "ducklake", "postgres_scanner"} <= {r[0] for r in con.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
        assert con.execute("SELECT data_path FROM ducklake_settings('lake')").fetchall() == [(url,)]
    finally:
        con.close()


# -- schema ----------------------------------------------------------------------------------------
def test_migrations_give_both_backends_the_same_columns_types_and_nullability(lake, tmp_path):
    from store import Store
    from store.ducklake import DuckLakeSpec

    sql = ("SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
           "WHERE table_schema = 'main' AND table_name NOT IN ('waymark_write_token') ORDER BY ALL")
    file_store = Store(tmp_path / "w.duckdb")
    file_store.migrate()
    lake_store = Store(DuckLakeSpec(*lake))
    lake_store.migrate()
    with file_store.reader() as con:
        on_file = con.execute(sql).fetchall()
    with lake_store.reader() as con:
        on_lake = con.execute(sql.replace("WHERE", "WHERE table_catalog = 'lake' AND")).fetchall()
    assert len(on_file) > 200 and on_lake == on_file
    assert lake_store.migrate_if_needed() is False


def test_checklist_edits_and_the_review_chain_write_to_ducklake(lake):
    """The app's own writes (manual checklist status, hash-chained reviews) use ids and upserts that
    DuckLake lacks natively (sequences, RETURNING, INSERT OR REPLACE): they go through Store.next_id."""
    from checklist.manual import Identity, manual_log, record_manual_status
    from gates.reviews import append_entry, verify
    from store import Store
    from store.ducklake import DuckLakeSpec

    store = Store(DuckLakeSpec(*lake))
    store.migrate()
    who = Identity("ana", verified=False, source="config")
    ids = [record_manual_status(store, "step:inventory", status=s, owner="ana", due=None, notes=None,
                                kind_override=None, who=who) for s in ("in_progress", "done")]
    assert ids == [1, 2]
    assert manual_log(store)["status"].tolist() == ["in_progress", "done"]
    for decision in ("approve", "reject"):
        append_entry(store, kind="review", source="dbx", platform="databricks", model_name="churn", version="1",
                     decision=decision, reviewer="ana", reviewer_verified=False, identity_source="local", note="",
                     snapshot_ids="{}")
    report = verify(store)
    assert report.ok and report.entries == 2, report.problems


# -- concurrency -----------------------------------------------------------------------------------
def test_two_collectors_commit_concurrently_and_the_conflict_is_retried(lake, tmp_path, mlflow_template):
    """Two real collector processes, each on its own source, into one new lake: both migrate at once,
    then both hold their write open until both are holding, so their commits overlap for sure."""
    from store import Store
    from store.ducklake import DuckLakeSpec

    a, b = (MlflowSource(tmp_path, mlflow_template, n) for n in ("dbx", "fab"))
    a.add_runs(3)
    b.add_runs(4)
    release = tmp_path / "release"
    procs, markers = [], []
    for src in (a, b):
        cfg = lake_config(tmp_path / f"{src.name}.toml", [src.source()], *lake)
        marker = tmp_path / f"{src.name}.holding"
        markers.append(marker)
        procs.append(start_holding_cli("snapshot", "--config", cfg, env={
            "WAYMARK_TEST_HOLD_WRITE_SECONDS": "120", "WAYMARK_TEST_HOLD_MARKER": str(marker),
            "WAYMARK_TEST_HOLD_UNTIL": str(release)}))
    try:
        for marker, proc in zip(markers, procs):
            wait_for_file(marker, proc, timeout=240)
        release.write_text("go")     # both transactions are open now: one commit must conflict
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    assert any("write conflict" in err for _, err in outs), [err for _, err in outs]
    store = Store(DuckLakeSpec(*lake))
    assert state(store, "dbx") == (1, 3) and state(store, "fab") == (1, 4)
    ids = store.query("SELECT snapshot_id FROM snapshots ORDER BY snapshot_id")["snapshot_id"].tolist()
    assert ids == [1, 2]
    versions = store.query("SELECT version, count(*) AS n FROM schema_migrations GROUP BY version")
    assert (versions["n"] == 1).all()   # the racing migrations applied each version once


def test_a_reader_during_a_write_sees_the_old_or_the_new_snapshot_never_part(lake, tmp_path, mlflow_template):
    from store import Store
    from store.ducklake import DuckLakeSpec

    src = MlflowSource(tmp_path, mlflow_template, "dbx")
    src.add_runs(2)
    cfg = lake_config(tmp_path / "governance.toml", [src.source()], *lake)
    assert subprocess.run([sys.executable, "-m", "collectors", "snapshot", "--config", str(cfg)], cwd=REPO,
                          env=cli_env(), capture_output=True, timeout=240).returncode == 0
    store = Store(DuckLakeSpec(*lake))
    old = state(store, "dbx")
    src.add_runs(3)
    new = (old[0] + 1, old[1] + 3)
    marker, release = tmp_path / "holding", tmp_path / "release"
    proc = start_holding_cli("snapshot", "--config", cfg, env={
        "WAYMARK_TEST_HOLD_WRITE_SECONDS": "120", "WAYMARK_TEST_HOLD_MARKER": str(marker),
        "WAYMARK_TEST_HOLD_UNTIL": str(release)})
    seen, errors, stop = [], [], threading.Event()

    def read_continuously():   # an app replica refreshing while the collector writes
        while not stop.is_set():
            try:
                seen.append(state(store, "dbx"))
            except Exception as e:  # noqa: BLE001 - any error breaks the contract
                errors.append(repr(e))
            time.sleep(0.05)

    reader = threading.Thread(target=read_continuously, daemon=True)
    reader.start()
    try:
        wait_for_file(marker, proc, timeout=240)
        assert state(store, "dbx") == old       # DuckLake readers do not wait: they see the last commit
        release.write_text("go")
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert state(store, "dbx") == new       # the same cached attachment sees the new commit
    finally:
        stop.set()
        reader.join(timeout=60)
        if proc.poll() is None:
            proc.kill()
    assert errors == []
    assert set(seen) <= {old, new} and old in seen and new in seen
    assert seen[seen.index(new):] == [new] * (len(seen) - seen.index(new))


def test_a_collector_killed_while_writing_leaves_the_last_good_snapshot(lake, tmp_path, mlflow_template):
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store import Store
    from store.ducklake import DuckLakeSpec
    from store.queries import resolve_as_of

    src = MlflowSource(tmp_path, mlflow_template, "dbx")
    src.add_runs(2)
    cfg = lake_config(tmp_path / "governance.toml", [src.source()], *lake)
    [first] = snapshot_all(load_config(cfg))
    assert first.ok, first.errors
    store = Store(DuckLakeSpec(*lake))
    before, old = dump(store), state(store, "dbx")
    src.add_runs(3)
    marker = tmp_path / "holding"
    proc = start_holding_cli("snapshot", "--config", cfg, env={
        "WAYMARK_TEST_HOLD_WRITE_SECONDS": "300", "WAYMARK_TEST_HOLD_MARKER": str(marker)})
    wait_for_file(marker, proc, timeout=240)
    proc.send_signal(signal.SIGKILL)   # it has written every row of the pass, uncommitted
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert dump(store) == before and state(store, "dbx") == old
    assert resolve_as_of(store)["dbx"].snapshot_id == first.snapshot_id
    [again] = snapshot_all(load_config(cfg))   # the next pass commits normally
    assert again.ok and again.snapshot_id == first.snapshot_id + 1
    assert state(store, "dbx") == (old[0] + 1, old[1] + 3)


# -- same answers as the DuckDB file ---------------------------------------------------------------
@pytest.fixture(scope="module")
def twin(postgres, workspace, mlflow_template, tmp_path_factory):
    """The demo-like workspace plus an evolving source, collected pass by pass into a DuckDB file
    and into DuckLake: (file store, lake store, lake spec)."""
    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store import Store

    root = tmp_path_factory.mktemp("twin")
    evolving = MlflowSource(root, mlflow_template, "evolving")
    runs = evolving.add_runs(3)
    evolving.client.create_registered_model("churn")
    for run in runs[:2]:
        evolving.client.create_model_version("churn", f"runs:/{run}/model", run_id=run)
    evolving.client.set_registered_model_alias("churn", "Production", "1")
    sources = workspace.sources() + [evolving.source()]
    file_cfg = load_config(write_config(root / "file.toml", sources, store=root / "w.duckdb"))
    lake_cfg = load_config(lake_config(root / "lake.toml", sources, postgres.createdb("twin"), str(root / "lake")))

    def collect():
        # One source at a time: sources of one pass are collected concurrently and commit in the
        # order they finish, so only a fixed order gives both stores the same snapshot ids.
        for cfg in (file_cfg, lake_cfg):
            for source in cfg.sources:
                assert all(o.ok for o in snapshot_all(cfg, [source.name]))

    collect()
    evolving.add_runs(2)                                   # new runs
    evolving.client.delete_run(runs[0])                    # a deleted run
    evolving.client.set_registered_model_alias("churn", "Production", "2")   # the alias moves
    evolving.client.set_tag(runs[1], "owner", "ünïcode ✓")
    collect()
    return Twin(Store(file_cfg.store_path), Store(lake_cfg.store_path), root / "file.toml", root / "lake.toml")


@dataclass
class Twin:
    file_store: object
    lake_store: object
    file_config: Path
    lake_config: Path


def _comparable(frame: pd.DataFrame) -> list:
    return sorted(map(repr, frame.astype(object).where(frame.notna(), None).to_dict("records")))


def test_as_of_answers_are_the_same_on_duckdb_and_ducklake(twin):
    from store import queries as q
    from store.entities import ENTITIES

    file_store, lake_store = twin.file_store, twin.lake_store
    file_snaps, lake_snaps = q.snapshots(file_store), q.snapshots(lake_store)
    assert file_snaps["snapshot_id"].tolist() == lake_snaps["snapshot_id"].tolist()
    assert len(file_snaps) >= 4 and (lake_snaps["status"] == "ok").all()
    ids = sorted(file_snaps["snapshot_id"].tolist())
    first_pass_end = ids[len(ids) // 2 - 1]     # the last snapshot of the first pass

    def finished(snaps, sid):
        return snaps.loc[snaps["snapshot_id"] == sid, "finished_at"].iloc[0].to_pydatetime()

    points = {"now": (None, None), "first snapshot": (ids[0], ids[0]),
              "end of pass 1 (id)": (first_pass_end, first_pass_end),
              # by time: each store's own finish time of that snapshot
              "end of pass 1 (time)": (finished(file_snaps, first_pass_end), finished(lake_snaps, first_pass_end))}
    with file_store.reader() as con:   # entities with any history; the others are empty on both sides
        tables = [t for t in ENTITIES if con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]]
    assert {"runs", "run_inputs", "model_versions", "model_aliases"} <= set(tables)
    seen_rows = 0
    for label, (at_file, at_lake) in points.items():
        pins_file, pins_lake = q.resolve_as_of(file_store, at_file), q.resolve_as_of(lake_store, at_lake)
        assert {k: v.snapshot_id for k, v in pins_file.items()} == {k: v.snapshot_id for k, v in pins_lake.items()}, label
        for table in tables:
            on_file = q.entity_as_of(file_store, table, points=pins_file)
            on_lake = q.entity_as_of(lake_store, table, points=pins_lake)
            assert _comparable(on_file) == _comparable(on_lake), (label, table)
            seen_rows += len(on_file)
    assert seen_rows > 50
    now_runs = q.entity_as_of(lake_store, "runs", points=q.resolve_as_of(lake_store))
    then_runs = q.entity_as_of(lake_store, "runs", points=q.resolve_as_of(lake_store, first_pass_end))
    assert len(then_runs[then_runs["source"] == "evolving"]) == 3           # the history differs by point
    assert len(set(now_runs["run_id"]) - set(then_runs["run_id"])) == 2     # the two runs of pass 2
    timeless = ["source", "name", "alias", "version", "valid_from", "valid_to"]
    assert _comparable(q.alias_history(file_store)[timeless]) == _comparable(q.alias_history(lake_store)[timeless])
    moved = q.alias_history(lake_store)
    assert set(moved[moved["source"] == "evolving"]["version"]) == {"1", "2"}


def test_the_app_shows_the_same_overview_from_ducklake(twin, monkeypatch):
    """An app replica on the shared store: the Overview page renders from DuckLake with the same
    figures as from the DuckDB file."""
    from streamlit.testing.v1 import AppTest

    shown = {}
    for name, config in (("file", twin.file_config), ("lake", twin.lake_config)):
        monkeypatch.setenv("WAYMARK_CONFIG", str(config))
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        figures = {m.label: m.value for m in at.metric if m.label != "Data age"}   # seconds since collection
        shown[name] = (figures, sorted(at.dataframe[0].value["source"]))
    assert shown["lake"] == shown["file"]
    assert int(shown["lake"][0]["Runs"]) > 0


# -- copy ------------------------------------------------------------------------------------------
def _all_tables(store) -> dict[str, list]:
    with store.reader() as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_catalog = current_database() AND table_name NOT IN ('schema_migrations', "
            "'waymark_write_token') ORDER BY 1").fetchall()]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}


def _store_cli(*args: str):
    return subprocess.run([sys.executable, "-m", "store", *map(str, args)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


def test_copy_round_trip_duckdb_to_ducklake_to_duckdb_keeps_every_row(twin, postgres, tmp_path):
    from store import Store
    from store.ducklake import DuckLakeSpec

    file_store = twin.file_store
    original = _all_tables(file_store)
    assert len(original) > 30 and all(original[t] for t in ("snapshots", "runs", "model_versions", "model_aliases"))
    spec = DuckLakeSpec(postgres.createdb("copied"), str(tmp_path / "copied-lake"))
    to_lake = _store_cli("copy", "--from", file_store.path, "--to", str(spec), "--json")
    assert to_lake.returncode == 0, to_lake.stderr
    assert _all_tables(Store(spec)) == original
    back = tmp_path / "back.duckdb"
    cfg = write_config(tmp_path / "back.toml", [], store=back)
    to_file = _store_cli("copy", "--from", str(spec), "--to", cfg)
    assert to_file.returncode == 0, to_file.stderr
    assert _all_tables(Store(back)) == original
    # The copied file goes on: its next snapshot id follows the copied ones (sequence moved past them).
    from store.history import record_failed_snapshot
    from datetime import datetime, timezone
    top = max(r[0] for r in original["snapshots"])
    assert record_failed_snapshot(Store(back), source="x", kind="mlflow", platform="fabric", mode="full",
                                  started_at=datetime.now(timezone.utc), errors=["e"], warnings=[]) == top + 1
    # The lake exports like the file does (the report tables read the same rows).
    from store.export import export_store
    lake_tables = {t.name: t.rows for t in export_store(Store(spec), tmp_path / "from-lake", "parquet")}
    file_tables = {t.name: t.rows for t in export_store(file_store, tmp_path / "from-file", "parquet")}
    assert lake_tables == file_tables and lake_tables["runs_history"] > 0
    # A destination that holds data is refused, and left as it was.
    again = _store_cli("copy", "--from", file_store.path, "--to", str(spec))
    assert again.returncode == 2 and "already holds data" in again.stderr
    assert _all_tables(Store(spec)) == original


def test_copy_of_a_missing_store_is_a_usage_error(tmp_path):
    result = _store_cli("copy", "--from", tmp_path / "none.duckdb", "--to", tmp_path / "dst.duckdb")
    assert result.returncode == 2 and "no store" in result.stderr
    assert not (tmp_path / "dst.duckdb").exists()
