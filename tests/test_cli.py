"""`python -m collectors snapshot …` as scripts and CI call it (real subprocess, cwd = repo root)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, write_config

OUTCOME_KEYS = {"source", "ok", "snapshot_id", "mode", "seconds", "counts", "api_calls", "warnings", "errors"}
ENTITIES = {"experiments", "runs", "run_inputs", "logged_models", "registered_models", "model_versions",
            "model_aliases", "model_origins"}


def test_json_output_shape(workspace, tmp_path):
    cfg = write_config(tmp_path / "governance.toml", workspace.sources())
    proc = run_cli("snapshot", "--config", cfg, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)   # stdout is exactly one JSON object: no progress, no logs
    assert set(doc) == {"store", "sources"} and doc["store"] == str(tmp_path / "waymark.duckdb")
    assert [s["source"] for s in doc["sources"]] == ["dbx", "fab"]
    for s in doc["sources"]:
        assert set(s) == OUTCOME_KEYS
        assert s["ok"] is True and s["mode"] == "full" and isinstance(s["snapshot_id"], int)
        assert s["errors"] == [] and isinstance(s["warnings"], list) and s["api_calls"] > 0
        assert set(s["counts"]) == ENTITIES
        assert all(set(c) == {"seen", "added", "changed", "removed"} for c in s["counts"].values())
    assert doc["sources"][0]["counts"]["runs"]["added"] == 4
    # Sources are collected in parallel: each has its own snapshot, in whichever order they finished.
    assert doc["sources"][0]["snapshot_id"] != doc["sources"][1]["snapshot_id"]


def test_summary_table_and_source_selection(workspace, tmp_path):
    cfg = write_config(tmp_path / "governance.toml", workspace.sources())
    proc = run_cli("snapshot", "--config", cfg, "--source", "fab")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Snapshot summary" in out
    header = next(line for line in out.splitlines() if "source" in line and "status" in line)
    assert "mode" in header and "added" in header
    rows = [line for line in out.splitlines() if "│" in line and "fab" in line]
    assert len(rows) == 1 and "ok" in rows[0] and "full" in rows[0], out
    assert not any("dbx" in line for line in out.splitlines()), out   # only the selected source ran
    assert "fab changes:" in out and "runs +1" in out
    assert "fab:" in proc.stderr                                        # progress goes to stderr
    from store.db import Store
    assert Store(tmp_path / "waymark.duckdb").query("SELECT DISTINCT source FROM snapshots")["source"].tolist() == ["fab"]


def test_unknown_source_is_a_usage_error(workspace, tmp_path):
    cfg = write_config(tmp_path / "governance.toml", workspace.sources())
    proc = run_cli("snapshot", "--config", cfg, "--source", "nope")
    assert proc.returncode == 2
    err = " ".join(proc.stderr.split())
    assert "no source named 'nope'" in err and "dbx, fab" in err
    assert not (tmp_path / "waymark.duckdb").exists()


def test_help_and_usage():
    top = run_cli("--help")
    assert top.returncode == 0 and "snapshot" in top.stdout
    snap = run_cli("snapshot", "--help")
    assert snap.returncode == 0
    for flag in ("--config", "--source", "--full", "--json"):
        assert flag in snap.stdout
    assert "Exit 0" in " ".join(snap.stdout.split())


@pytest.mark.parametrize("argv", [[], ["snapshot", "--bogus"], ["frobnicate"]])
def test_usage_errors_exit_2(argv, capsys):
    from collectors.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "usage:" in capsys.readouterr().err


def test_summary_escapes_markup_in_names_and_messages(capsys):
    """Rich markup in a source name or message is printed as text (it used to raise MarkupError)."""
    from collectors.__main__ import print_summary
    from collectors.runner import SnapshotOutcome

    outcome = SnapshotOutcome("x[/]", False, 3, "full[bold]", 1.0,
                              counts={"runs[/x]": {"added": 1, "changed": 0, "removed": 0, "seen": 1}},
                              warnings=["[red]w[/]"], errors=["[/] e"])
    print_summary([outcome])
    out = capsys.readouterr().out
    assert "x[/]" in out and "runs[/x] +1" in out and "[red]w[/]" in out and "[/] e" in out
