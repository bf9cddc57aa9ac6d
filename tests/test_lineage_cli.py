"""`python -m lineage` as a pipeline runs it: exit codes 0/1/2, the --json shape, --as-of."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lineage", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def config(demo_dir) -> str:  # noqa: F811
    return str(demo_dir / "governance.toml")


def test_trace_json_has_the_contract_shape(config):
    done = cli("trace", "model:churn_model@Production", "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"target", "as_of", "nodes", "edges", "runs", "git_shas", "inputs", "gaps", "snapshots"} <= set(out)
    assert out["target"] == "model:churn_model@Production"
    assert {"id", "type", "platform", "name", "version", "attrs"} <= set(out["nodes"][0])
    assert {"source", "target", "kind", "evidence"} <= set(out["edges"][0])
    assert {"field", "snapshot_id", "source"} <= set(out["edges"][0]["evidence"])
    assert {"platform", "run_id", "experiment", "git_sha"} <= set(out["runs"][0])
    assert out["runs"][0]["platform"] == "databricks"          # crossed platforms
    assert {"platform", "name", "version"} <= set(out["inputs"][0])


def test_human_output_is_one_hop_per_line_with_evidence(config):
    done = cli("trace", "model:churn_model@Production", "--config", config)
    assert done.returncode == 0, done.stderr
    hops = [line for line in done.stdout.splitlines() if line.strip().startswith("←")]
    assert hops and all("snapshot" in line and "[" in line for line in hops)


def test_as_of_before_an_alias_move_gives_the_old_version(config):
    from store import Store
    from tests.test_lineage_trace import first_production_snapshot

    sid = first_production_snapshot(Store(Path(config).parent / "waymark.duckdb"))
    done = cli("trace", "model:churn-prediction-gbm@Production", "--config", config, "--as-of", str(sid), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "model_version:databricks:churn-prediction-gbm/1" in {n["id"] for n in out["nodes"]}
    assert "alias_moved_after" in {g["gap"] for g in out["gaps"]}
    iso = cli("trace", "model:churn-prediction-gbm@Production", "--config", config, "--as-of", "2000-01-01")
    assert iso.returncode == 1 and "not found" in iso.stderr


def test_not_found_ambiguous_and_usage_exit_codes(config, tmp_path):
    missing = cli("trace", "model:churn_model@Nope", "--config", config)
    assert missing.returncode == 1 and "not found" in missing.stderr
    endpoint = cli("trace", "endpoint:churn", "--config", config)
    assert endpoint.returncode == 1 and "endpoint 'churn' not found" in endpoint.stderr
    assert "candidate: endpoint:databricks:churn-scoring" in endpoint.stderr
    assert "candidate: endpoint:azureml:churn-aml" in endpoint.stderr
    ambiguous = cli("impact", "commit:" + "0" * 3, "--config", config)   # too short a SHA: not found
    assert ambiguous.returncode == 1
    assert cli("trace", "table:x", "--config", config).returncode == 2      # not a trace target
    assert cli("trace", "model:x@y", "--config", str(tmp_path / "none.toml")).returncode == 2
    assert cli("trace", "model:x@y", "--config", config, "--as-of", "yesterday-ish").returncode == 2
    assert cli("trace", "--config", config).returncode == 2
    assert cli("trace", "model:x@y", "--config", config, "--platform", "aws").returncode == 2


def test_ambiguous_target_lists_candidates(config, tmp_path):
    # A run id registered on both platforms is only ambiguous across sources; a model name shared by
    # two platforms is the realistic case: rename the Fabric model in a copy of the store.
    import shutil

    import duckdb

    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy2(Path(config).parent / "waymark.duckdb", ws / "waymark.duckdb")
    (ws / "governance.toml").write_text(Path(config).read_text(encoding="utf-8"), encoding="utf-8")
    con = duckdb.connect(str(ws / "waymark.duckdb"))
    con.execute("UPDATE model_aliases SET name = 'churn-prediction-gbm' WHERE name = 'churn_model'")
    con.close()
    done = cli("trace", "model:churn-prediction-gbm@Production", "--config", str(ws / "governance.toml"))
    assert done.returncode == 1 and "ambiguous" in done.stderr
    assert "alias:databricks:churn-prediction-gbm@Production" in done.stderr
    assert "alias:fabric:churn-prediction-gbm@Production" in done.stderr
    picked = cli("trace", "model:churn-prediction-gbm@Production", "--config", str(ws / "governance.toml"),
                 "--platform", "fabric", "--json")
    assert picked.returncode == 0, picked.stderr


def test_impact_cli(config):
    done = cli("impact", "table:churn.gold.features@14", "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "alias:fabric:churn_model@Production" in {a["id"] for a in out["aliases"]}


@pytest.mark.parametrize("endpoint", ["churn-scoring", "churn-aml"])
def test_endpoint_trace_json_reaches_runs_shas_and_upstream_inputs(config, endpoint):
    from demo.build import git_sha

    done = cli("trace", f"endpoint:{endpoint}", "--config", config, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out["git_shas"]) == {git_sha("tuned"), git_sha("retrain-nov")}
    assert sorted(x["traffic_pct"] for x in out["serving"]) == [10, 90]
    assert {"churn.silver.customer_events", "churn.bronze.events"} <= {i["name"] for i in out["inputs"]}
    assert any(e["kind"] == "serves" and e["attrs"]["traffic_pct"] == 90 for e in out["edges"])
