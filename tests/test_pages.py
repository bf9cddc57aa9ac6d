"""AppTest of every page, on the real demo workspace (and on broken/empty ones)."""
from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from collectors.config import load_config
from demo.layout import PASSES_FILE
from ui.safe_text import md


TIMEOUT = 90
APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = sorted(str(p.relative_to(Path(APP).parent)) for p in (Path(APP).parent / "pages").glob("*.py"))


def app(monkeypatch, config_path) -> AppTest:
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def demo_estate(workspace: Path) -> tuple[int, int, int]:
    """(sources, runs, model versions) as the demo's platforms hold them, read from the platforms
    themselves (the MLflow stores, the stub workspaces' fixtures), never from Waymark's store."""
    import json

    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    config = load_config(workspace / "governance.toml")
    runs = versions = 0
    for s in (s for s in config.sources if s.kind == "mlflow"):
        client = MlflowClient(tracking_uri=s.tracking_uri, registry_uri=s.effective_registry_uri)
        experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        runs += len(client.search_runs(experiments, run_view_type=ViewType.ALL, max_results=1000))  # deleted too
        versions += len(client.search_model_versions(max_results=1000))
    uc = json.loads((workspace / "databricks" / "stub-workspace.json").read_text(encoding="utf-8"))
    versions += sum(len(v) for v in uc.get("model_versions", {}).values())
    aml = json.loads((workspace / "azure" / "fixture.json").read_text(encoding="utf-8"))
    versions += sum(len(m.get("versions", [])) for m in aml["azureml"]["models"])
    return len(config.sources), runs, versions


def test_overview_shows_sources_counts_and_aliases(monkeypatch, demo_copy):
    at = app(monkeypatch, demo_copy / "governance.toml")
    assert at.title[0].value == "Overview"
    sources, runs, versions = demo_estate(demo_copy)
    assert (metric(at, "Sources"), metric(at, "Runs"), metric(at, "Model versions")) == \
        (str(sources), str(runs), str(versions))
    assert runs > 0 and versions > 0
    sources = at.dataframe[0].value
    assert set(sources["source"]) == {"dbx-churn", "fabric-churn", "dbx-uc", "aml-churn", "fabric-items",
                                      "search-churn"}
    assert set(sources["state"]) == {"OK"}
    aliases = at.dataframe[1].value
    prod = aliases[(aliases["name"] == "churn-prediction-gbm") & (aliases["alias"] == "Production")]
    assert prod["version"].tolist() == ["4"] and prod["run"].tolist() == ["gbm-retrain-nov"]
    # The Fabric copy was registered from artifacts: its run is the Databricks run the MLmodel names.
    fabric_prod = aliases[(aliases["name"] == "churn_model") & (aliases["alias"] == "Production")]
    assert fabric_prod["run"].tolist() == ["gbm-tuned-depth (databricks)"]
    from demo.build import git_sha
    assert fabric_prod["git_sha"].tolist() == [git_sha("tuned")[:10]]
    # A native Fabric run without git metadata is a gap, not a crash.
    challenger = aliases[(aliases["name"] == "churn_model") & (aliases["alias"] == "Challenger")]
    assert challenger["run"].tolist() == ["rf-baseline"] and challenger["git_sha"].tolist() == ["—"]


def test_overview_reports_a_failing_source_and_keeps_its_last_good_data(monkeypatch, demo_copy):
    from collectors.config import load_config
    from collectors.runner import snapshot_all

    config_path = demo_copy / "governance.toml"
    text = config_path.read_text(encoding="utf-8")
    # Point the Fabric source at a tracking server that is not there: its next pass fails.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    fabric_uri = next(line for line in text.splitlines() if "fabric/mlflow.db" in line)
    broken = text.replace(fabric_uri, 'tracking_uri = "http://127.0.0.1:9"')
    config_path.write_text(broken, encoding="utf-8")
    outcomes = {o.source: o for o in snapshot_all(load_config(config_path), ["fabric-churn"])}
    assert not outcomes["fabric-churn"].ok

    at = app(monkeypatch, config_path)
    errors = [e.value for e in at.error]
    assert any("fabric-churn" in e and "last good snapshot" in e for e in errors), errors
    status = at.dataframe[0].value.set_index("source")
    assert status.loc["fabric-churn", "state"] == "Failing"
    assert status.loc["fabric-churn", "failures_since_good"] == 1
    # Its data is still shown: the Fabric aliases come from the last good snapshot.
    aliases = at.dataframe[1].value
    assert "churn_model" in set(aliases["name"])


def test_bad_config_is_reported_not_crashed(monkeypatch, tmp_path):
    bad = tmp_path / "governance.toml"
    bad.write_text('[[sources]]\nname = "x"\nkind = "nope"\nplatform = "fabric"\n', encoding="utf-8")
    at = app(monkeypatch, bad)
    # The config's path and values are shown as text (escaped Markdown), naming the file.
    assert any("unknown kind 'nope'" in e.value and md(bad) in e.value for e in at.error)
    assert not (tmp_path / "data").exists()  # nothing written


def test_empty_store_invites_a_first_snapshot(monkeypatch, tmp_path):
    config = tmp_path / "governance.toml"
    config.write_text(f'[store]\npath = "w.duckdb"\n[[sources]]\nname = "x"\nkind = "mlflow"\n'
                      f'platform = "fabric"\ntracking_uri = "sqlite:///{tmp_path}/m.db"\n', encoding="utf-8")
    at = app(monkeypatch, config)
    assert any("Nothing collected yet" in i.value for i in at.info)
    at.switch_page("pages/snapshots.py").run()
    assert not at.exception
    assert any("No snapshot yet" in i.value for i in at.info)


def test_pages_render_on_a_source_with_nothing_in_it(monkeypatch, tmp_path):
    """A first snapshot of an empty MLflow store: every page shows empty states, none crashes."""
    from mlflow import MlflowClient

    from collectors.config import load_config
    from collectors.runner import snapshot_all

    MlflowClient(f"sqlite:///{tmp_path}/m.db").search_experiments()  # creates the empty store
    config = tmp_path / "governance.toml"
    config.write_text(f'[store]\npath = "w.duckdb"\n[[sources]]\nname = "empty"\nkind = "mlflow"\n'
                      f'platform = "databricks"\ntracking_uri = "sqlite:///{tmp_path}/m.db"\n', encoding="utf-8")
    assert all(o.ok for o in snapshot_all(load_config(config)))
    at = app(monkeypatch, config)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)


def test_snapshots_page_lists_history_and_reports(monkeypatch, demo_dir, demo_copy):
    at = app(monkeypatch, demo_copy / "governance.toml")
    at.switch_page("pages/snapshots.py").run()
    assert not at.exception, at.exception
    history = at.dataframe[0].value
    # Every pass the demo build took (each stage, each source configured by then) is listed, and OK.
    taken = json.loads((demo_dir / PASSES_FILE).read_text(encoding="utf-8"))
    assert len(history) == sum(len(stage["sources"]) for stage in taken) and set(history["status"]) == {"OK"}
    assert sorted(history["source"]) == sorted(s for stage in taken for s in stage["sources"])
    assert set(history["mode"]) == {"Full", "Incremental"}
    # The report of the newest pass is shown by default, with per-entity counts.
    counts = at.dataframe[1].value
    # (the newest pass is dbx-uc, the Databricks stub source, collected after dbx-churn)
    assert {"model_versions", "model_aliases", "served_entities"} <= set(counts["entity"])


def test_snapshot_now_button_takes_a_snapshot(monkeypatch, demo_copy):
    at = app(monkeypatch, demo_copy / "governance.toml")
    at.switch_page("pages/snapshots.py").run()
    before = len(at.dataframe[0].value)
    at.selectbox[0].set_value("dbx-churn")
    at.button[0].click().run(timeout=180)
    assert not at.exception, at.exception
    # One result per source: its snapshot, mode and counts of added, changed and removed, in words.
    assert any("dbx-churn**: snapshot" in s.value and "incremental" in s.value and " added, " in s.value
               and " removed, " in s.value and "warning(s)" in s.value for s in at.success)
    assert len(at.dataframe[0].value) == before + 1


def test_snapshot_now_reaches_every_demo_source(monkeypatch, demo_copy):
    """The demo's Databricks and Azure ML sides are local stub servers: "Snapshot now" from a
    fresh app process must reach them too, not only the MLflow stores."""
    at = app(monkeypatch, demo_copy / "governance.toml")
    at.switch_page("pages/snapshots.py").run()
    at.button[0].click().run(timeout=300)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    ok = {s.value.split(":")[0].strip("*") for s in at.success}
    assert ok == {s.name for s in load_config(demo_copy / "governance.toml").sources}


# -- issue 13: tables a person reads, links, state in the URL -------------------------------------
def test_display_helper_reads_like_words():
    import pandas as pd

    from ui.format import column_config, readable, title

    frame = pd.DataFrame({"git_sha": [None, "abc"], "traffic_pct": [float("nan"), 10.0], "state": ["ok", "failing"],
                          "at": pd.to_datetime(["2026-10-01 10:00:00.123456", None], utc=True),
                          "flag": [True, None]})
    shown = readable(frame, ["state", "git_sha", "traffic_pct", "at", "flag"], status=("state",))
    assert list(shown.columns) == ["state", "git_sha", "traffic_pct", "at", "flag"]
    assert shown["git_sha"].tolist() == ["—", "abc"] and shown["traffic_pct"].tolist() == ["—", "10"]
    assert shown["state"].tolist() == ["OK", "Failing"] and shown["flag"].tolist() == ["yes", "—"]
    assert shown["at"].iloc[0].microsecond == 0
    config = column_config(shown)
    assert config["state"]["pinned"] is True and not config["git_sha"]["pinned"]
    assert config["git_sha"]["label"] == "Git SHA" and title("traffic_pct") == "Traffic %"


def test_overview_alias_rows_link_to_their_audit_trace(monkeypatch, demo_copy):
    at = app(monkeypatch, demo_copy / "governance.toml")
    aliases = at.dataframe[1].value
    assert list(aliases.columns[:3]) == ["name", "alias", "version"]       # decisive columns first
    link = aliases.loc[(aliases["name"] == "churn_model") & (aliases["alias"] == "Production"), "audit"].iloc[0]
    assert link == "audit_trace?source=fabric-churn&model=churn_model&alias=Production"
    from ui.format import page_url
    assert page_url("audit_trace", model="a&b=c d", alias="x#y") == "audit_trace?model=a%26b%3Dc%20d&alias=x%23y"


def _audit(monkeypatch, config_path, **params) -> AppTest:
    at = app(monkeypatch, config_path)
    at.switch_page("pages/audit_trace.py")
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_audit_trace_opens_the_state_a_link_names(monkeypatch, demo_copy):
    at = _audit(monkeypatch, demo_copy / "governance.toml", source="fabric-churn", model="churn_model",
                alias="Production")
    assert at.selectbox(key="audit_alias").value == "churn_model@Production · fabric"
    assert at.dataframe[0].value["run_name"].tolist() == ["gbm-tuned-depth"]
    # Only the chosen start's picker is there.
    assert not any(s.key == "audit_endpoint" for s in at.selectbox)
    # The state is written back to the URL, the date included once typed (Enter applies a text input).
    at.text_input(key="audit_day").input("2026-11-20").run()
    assert not at.exception, at.exception
    assert at.query_params["as_of"] == "2026-11-20" and at.query_params["alias"] == "Production"


def test_audit_trace_says_plainly_when_an_alias_did_not_exist(monkeypatch, demo_copy):
    at = _audit(monkeypatch, demo_copy / "governance.toml", source="fabric-churn", model="churn_model",
                alias="Production", as_of="2020-01-15")
    warning = " ".join(w.value for w in at.warning).replace("\u2060", "")
    assert "churn\\_model@Production did not exist on 2020-01-15; first seen 20" in warning, warning
    assert "usage" not in warning and "target" not in warning
    at.text_input(key="audit_day").input("15/10/2026").run()
    assert any("is not a date" in e.value and "YYYY-MM-DD" in e.value for e in at.error)


def test_evidence_pack_is_stamped_and_printable(monkeypatch, demo_copy):
    import hashlib
    import json

    from ui import lineage_loaders as ll
    from ui.loaders import store_stamp

    store = demo_copy / "waymark.duckdb"
    graph = ll.lineage_graph(str(store), store_stamp(store), None)
    choices = ll.alias_choices(graph)
    node = choices.loc[choices["label"] == "churn_model@Production · fabric", "node_id"].iloc[0]
    answer, _ = ll.audit_trace(str(store), store_stamp(store), node, None)
    pack_json, pack_md, pack_html = ll.evidence_pack(answer, "dana <script>")
    pack = json.loads(pack_json)
    assert pack["generated_by"] == "dana <script>" and pack["generated_at"]
    content = {k: v for k, v in pack.items() if k not in ("generated_at", "generated_by", "sha256")}
    assert pack["sha256"] == hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()
    stamp = [line for line in pack_md.splitlines() if line.startswith(("- Generated at", "- Generated by", "- sha256"))]
    assert len(stamp) == 3
    body = "\n".join(line for line in pack_md.split("\n") if line not in stamp)
    assert stamp[2].split("`")[1] == hashlib.sha256(body.encode()).hexdigest()
    assert pack_html.startswith("<!doctype html>") and "<table>" in pack_html and "@media print" in pack_html
    assert "<script>" not in pack_html and "http" not in pack_html.split("<body>")[0]


def test_snapshot_outcomes_count_added_changed_removed():
    import json

    from ui.loaders import snapshot_outcomes

    out = snapshot_outcomes(json.dumps({"sources": [{"source": "a", "ok": True, "snapshot_id": 3, "mode": "full",
                                                     "seconds": 1.5, "counts": {"runs": {"added": 2, "changed": 1},
                                                                                "models": {"removed": 4}},
                                                     "warnings": ["w"], "errors": []}]}))
    assert out[0]["added"] == 2 and out[0]["changed"] == 1 and out[0]["removed"] == 4 and out[0]["warnings"] == ["w"]
    assert snapshot_outcomes("usage: collectors ...") is None


def test_the_chosen_snapshot_pass_lives_in_the_url(monkeypatch, demo_copy):
    """A link with ?snapshot= opens that pass's report (and its source filter); choosing another
    pass writes it to the URL."""
    at = app(monkeypatch, demo_copy / "governance.toml")
    at.switch_page("pages/snapshots.py").run()
    history = at.dataframe[0].value
    oldest = int(history["Snapshot"].min()) if "Snapshot" in history else int(at.selectbox[1].options[-1].split()[0][1:])
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["snapshot"] = str(oldest)
    at.run()
    at.switch_page("pages/snapshots.py").run()
    assert not at.exception, at.exception
    box = next(b for b in at.selectbox if b.label == "Snapshot")
    assert box.value == oldest
    assert at.query_params["snapshot"] == [str(oldest)] or at.query_params["snapshot"] == str(oldest)
    newest = box.options[0]
    box.set_value(int(newest.split()[0][1:])).run()
    assert at.query_params["snapshot"] in ([newest.split()[0][1:]], newest.split()[0][1:])
