"""`python -m store export`: current state and history as Parquet files and Delta tables, read back
with the readers a reporting tool would use (pyarrow, deltalake)."""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from store.entities import ENTITIES
from store.queries import entity_as_of
from tests.conftest import REPO, cli_env, table_dump


def _export(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "store", "export", *map(str, args)], cwd=REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def parquet_export(evolving, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "parquet"
    proc = _export("--config", evolving.config_path, "--format", "parquet", "--to", out, "--json")
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_parquet_export_has_every_entity_current_and_history(evolving, parquet_export):
    out, doc = parquet_export
    names = {t["name"] for t in doc["tables"]}
    assert names == {"snapshots"} | set(ENTITIES) | {f"{t}_history" for t in ENTITIES}
    for table in ("runs", "model_versions", "model_aliases"):
        history = pq.read_table(out / f"{table}_history.parquet")
        assert history.num_rows == len(table_dump(evolving.store_path, table))
        current = pq.read_table(out / f"{table}.parquet")
        assert current.num_rows == len(entity_as_of(evolving.store, table))
    snapshots = pq.read_table(out / "snapshots.parquet")
    assert snapshots.num_rows == len(table_dump(evolving.store_path, "snapshots"))


def test_history_keeps_the_alias_move_with_its_times(parquet_export):
    out, _ = parquet_export
    aliases = pq.read_table(out / "model_aliases_history.parquet").to_pylist()
    champion = sorted((r for r in aliases if r["name"] == "evo-model" and r["alias"] == "champion"),
                      key=lambda r: r["valid_from"])
    assert [r["version"] for r in champion] == ["1", "2"]
    moved = champion[0]
    assert moved["valid_to"] == champion[1]["valid_from"]
    assert moved["valid_to_time"] is not None and moved["valid_from_time"] < moved["valid_to_time"]
    assert champion[1]["valid_to"] is None and champion[1]["valid_to_time"] is None
    current = pq.read_table(out / "model_aliases.parquet").to_pylist()
    assert [r["version"] for r in current if r["alias"] == "champion"] == ["2"]


def test_json_columns_stay_json_text(parquet_export, evolving):
    out, _ = parquet_export
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    r1 = next(r for r in runs if r["run_id"] == evolving.ids["r1"])
    assert json.loads(r1["params"])["git_sha"]


def test_delta_export_reads_back_with_deltalake(evolving, tmp_path):
    out = tmp_path / "delta"
    proc = _export("--config", evolving.config_path, "--format", "delta", "--to", out)
    assert proc.returncode == 0, proc.stderr
    versions = DeltaTable(str(out / "model_versions_history")).to_pyarrow_table()
    assert versions.num_rows == len(table_dump(evolving.store_path, "model_versions"))
    # an empty entity (no Databricks source here) is still a table with its typed columns
    endpoints = DeltaTable(str(out / "serving_endpoints"))
    assert endpoints.to_pyarrow_table().num_rows == 0
    assert "name" in endpoints.schema().to_arrow().names
    # exporting again replaces the tables in place
    assert _export("--config", evolving.config_path, "--format", "delta", "--to", out).returncode == 0
    assert not list(out.glob("*.tmp"))


def test_missing_store_or_bad_format_exit_2(tmp_path):
    proc = _export("--store", tmp_path / "nothing.duckdb", "--format", "parquet", "--to", tmp_path / "out")
    assert proc.returncode == 2 and "no store" in proc.stderr
    assert not (tmp_path / "out").exists()
    assert _export("--store", tmp_path / "x", "--format", "csv", "--to", tmp_path / "out").returncode == 2
