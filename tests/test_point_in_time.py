"""Point in time: resolve_as_of by time and by snapshot id, entity_as_of, alias_history.

Uses the `evolving` store (conftest): champion → v1 in the first two snapshots, → v2 from `changed` on.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from store.queries import SnapshotNotFound, alias_history, entity_as_of, resolve_as_of, snapshots


def champion(store, as_of) -> list[str]:
    frame = entity_as_of(store, "model_aliases", as_of)
    return frame[(frame["name"] == "evo-model") & (frame["alias"] == "champion")]["version"].tolist()


def finished_at(store, snapshot_id: int) -> datetime:
    hist = snapshots(store)
    return hist.set_index("snapshot_id").loc[snapshot_id, "finished_at"].to_pydatetime()


def test_resolve_by_snapshot_id(evolving):
    first = evolving.steps["first"].snapshot_id
    points = resolve_as_of(evolving.store, first)
    assert list(points) == ["evo"] and points["evo"].snapshot_id == first and points["evo"].platform == "databricks"
    # A snapshot id as it comes out of a query result (a numpy integer) works the same.
    ids = snapshots(evolving.store)["snapshot_id"]
    assert not isinstance(ids.iloc[-1], int)
    assert resolve_as_of(evolving.store, ids.min())["evo"].snapshot_id == first


def test_resolve_now_is_the_latest_good_snapshot(evolving):
    assert resolve_as_of(evolving.store)["evo"].snapshot_id == evolving.steps["full"]["snapshot_id"]


def test_resolve_by_time(evolving):
    store = evolving.store
    unchanged, changed = evolving.steps["unchanged"].snapshot_id, evolving.steps["changed"].snapshot_id
    at = finished_at(store, unchanged)
    assert resolve_as_of(store, at)["evo"].snapshot_id == unchanged                 # at T counts
    just_before_changed = finished_at(store, changed) - timedelta(microseconds=1)
    assert resolve_as_of(store, just_before_changed)["evo"].snapshot_id == unchanged
    # Naive times are UTC.
    naive = at.astimezone(timezone.utc).replace(tzinfo=None)
    assert resolve_as_of(store, naive)["evo"].snapshot_id == unchanged


def test_entity_as_of_shows_the_alias_before_the_move(evolving):
    store = evolving.store
    first, unchanged, changed = (evolving.steps[k].snapshot_id for k in ("first", "unchanged", "changed"))
    assert champion(store, first) == ["1"]
    assert champion(store, finished_at(store, unchanged)) == ["1"]
    assert champion(store, changed) == ["2"]
    assert champion(store, None) == ["2"]
    runs = entity_as_of(store, "runs", first).set_index("run_id")
    assert runs.loc[evolving.ids["long"], "status"] == "RUNNING"
    assert evolving.ids["new"] not in runs.index
    assert entity_as_of(store, "runs").set_index("run_id").loc[evolving.ids["long"], "status"] == "FINISHED"


def test_a_time_before_any_snapshot_returns_nothing(evolving):
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert resolve_as_of(evolving.store, long_ago) == {}
    frame = entity_as_of(evolving.store, "model_aliases", long_ago)
    assert frame.empty and {"source", "name", "alias", "version"} <= set(frame.columns)
    with pytest.raises(SnapshotNotFound, match="snapshot 0 does not exist"):   # an id is never read as "latest"
        resolve_as_of(evolving.store, 0)
    with pytest.raises(SnapshotNotFound, match="snapshot 9999 does not exist"):
        resolve_as_of(evolving.store, 9999)


def test_alias_history(evolving):
    first, changed = evolving.steps["first"].snapshot_id, evolving.steps["changed"].snapshot_id
    hist = alias_history(evolving.store, "evo")
    rows = [(r.alias, r.version, r.valid_from, None if pd.isna(r.valid_to) else int(r.valid_to))
            for r in hist.itertuples()]
    assert rows == [("champion", "1", first, changed), ("champion", "2", changed, None)]
    assert hist["seen_from"].iloc[1] == pd.Timestamp(finished_at(evolving.store, changed))
    assert hist["seen_until"].iloc[0] == hist["seen_from"].iloc[1] and pd.isna(hist["seen_until"].iloc[1])
    assert alias_history(evolving.store, "no-such-source").empty


def test_failed_snapshots_are_never_a_point_in_time(tmp_path, evolving):
    """A failed pass of a source is skipped: as-of its id gives the source's previous good snapshot."""
    import shutil

    from collectors.config import load_config
    from collectors.runner import snapshot_all
    from store.db import Store
    from tests.conftest import mlflow_source, write_config

    store_path = tmp_path / "copy.duckdb"
    shutil.copy(evolving.store_path, store_path)
    cfg = write_config(tmp_path / "g.toml", [mlflow_source("evo", f"sqlite:///{tmp_path}/gone/mlflow.db")],
                       store=store_path)
    [failed] = snapshot_all(load_config(cfg))
    store = Store(store_path)
    assert not failed.ok and failed.snapshot_id is not None
    assert resolve_as_of(store, failed.snapshot_id)["evo"].snapshot_id == evolving.steps["full"]["snapshot_id"]
    assert resolve_as_of(store)["evo"].snapshot_id == evolving.steps["full"]["snapshot_id"]
