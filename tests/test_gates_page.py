"""AppTest of the Promotion gates page on the real demo workspace: the queue and what blocks, an
OIDC reviewer (at.user) approving through the form — a real write to the store from the app
process — and a local, unverified identity that cannot approve a failing gate."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.safe_text import md  # pages show collected text escaped
from tests.test_gates import gates_ws  # noqa: F401  (fixture: real MLflow registry with a never-promoted model)


TIMEOUT = 120
APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/promotion_gates.py"


def without_review(config_path: Path) -> Path:
    """Drop the demo's own [review] block (it sits between [store] and the first [[sources]])."""
    text = config_path.read_text(encoding="utf-8")
    start, end = text.find("[review]"), text.find("[[sources]]")
    if 0 <= start < end:
        config_path.write_text(text[:start] + text[end:], encoding="utf-8")
    return config_path


def with_review(config_path: Path, local_identity: str | None = None) -> Path:
    without_review(config_path)
    extra = "\n[review]\n"
    if local_identity:
        extra += f'local_identity = "{local_identity}"\n'
    extra += ('[[review.reviewers]]\nidentity = "bob@contoso.com"\nmodels = ["churn*"]\n'
              '[[review.reviewers]]\nidentity = "alice@contoso.com"\nmodels = ["churn-*"]\n'
              # The demo's Databricks runs are by the training job's service principal.
              '[[review.identities]]\nidentity = "churn-ci@contoso.com"\nalso_known_as = ["svc-churn-training"]\n')
    config_path.write_text(config_path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return config_path


def open_page(monkeypatch, config_path: Path, user: dict | None = None) -> AppTest:
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if user is not None:   # OIDC configured ([auth] in secrets) and this user signed in
        at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
                              "client_id": "waymark", "client_secret": "not-used",
                              "server_metadata_url": "https://login.example/.well-known/openid-configuration"}
        at.user = user
    at.run()
    assert not at.exception, at.exception
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def choose(at: AppTest, prefix: str) -> None:
    box = at.selectbox[0]
    box.select_index(next(i for i, label in enumerate(box.options) if label.startswith(prefix)))
    at.run()
    assert not at.exception, at.exception


def test_demo_reviewer_can_use_the_form_unverified(monkeypatch, demo_copy):
    at = open_page(monkeypatch, demo_copy / "governance.toml")
    choose(at, "churn_model v3")
    assert not at.button[0].disabled
    page_text = " ".join(str(e.value) for kind in (at.markdown, at.caption, at.info, at.warning) for e in kind)
    assert md("reviewer@waymark.demo") in page_text and "unverified" in page_text


def test_queue_shows_candidates_and_what_blocks(monkeypatch, demo_copy):
    at = open_page(monkeypatch, without_review(demo_copy / "governance.toml"))
    assert at.title[0].value == "Promotion gates"
    queue = at.dataframe[0].value
    # Fabric churn_model v3 (the Databricks November retrain, copied) is newer than Production v2.
    row = queue[(queue["model"] == "churn_model") & (queue["version"] == "3")].iloc[0]
    assert row["gate"].endswith("PASS") and row["baseline"] == "v2 (@Production)" and row["last_decision"] == "not reviewed"
    choose(at, "churn_model v3")
    assert any("Gate PASS" in s.value for s in at.success)
    # Any version can be chosen: the seed's failing v3 on Databricks shows what blocks it.
    choose(at, "churn-prediction-gbm v3")
    assert any("Gate FAIL" in e.value and md("threshold:roc_auc") in e.value for e in at.error)
    criteria = at.dataframe[1].value.set_index("criterion")
    assert criteria.loc["threshold:roc_auc", "actual"] == "0.791"
    assert criteria.loc["threshold:roc_auc", "required"] == "≥ 0.8"
    assert criteria.loc["threshold:roc_auc", "blocks"] == "yes"
    assert "runs.metrics['roc_auc'] of run gbm-new-features" in criteria.loc["threshold:roc_auc", "evidence"]
    # The metrics as figures beside the baseline and the bound; the chart only on request.
    figures = next(d.value for d in at.dataframe if "difference" in d.value.columns).set_index("metric")
    assert figures.loc["roc_auc", "candidate"] == 0.791 and figures.loc["roc_auc", "threshold"] == 0.8
    assert abs(figures.loc["roc_auc", "difference"]
               - (figures.loc["roc_auc", "candidate"] - figures.loc["roc_auc", "baseline"])) < 1e-12
    charts = lambda: at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # noqa: E731
    assert not charts()
    at.toggle[0].set_value(True).run()
    assert not at.exception, at.exception
    assert charts()
    # No [review] in the config: the page says why nobody can review, and the form is disabled.
    assert any("no reviewers are configured" in i.value for i in at.info)
    assert at.button[0].disabled


def test_oidc_reviewer_approves_through_the_form(monkeypatch, demo_copy):
    from gates.reviews import read_log, verify
    from store import Store

    config = with_review(demo_copy / "governance.toml")
    at = open_page(monkeypatch, config, user={"is_logged_in": True, "email": "bob@contoso.com", "name": "Bob"})
    assert any(md("bob@contoso.com") in c.value and "verified, OIDC" in c.value for c in at.caption)
    choose(at, "churn_model v3")
    note = "Checked <b>metrics</b> vs **Production**; lineage complete."
    at.radio[0].set_value("approve")
    at.text_area[0].set_value(note)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any(md("Recorded review #1") in s.value and md("Approve of churn_model v3") in s.value for s in at.success), \
        [e.value for e in at.error]
    history = at.dataframe[-1].value
    assert history["note"].tolist() == [note]                      # user text kept as text
    assert history["who"].tolist() == ["bob@contoso.com (verified)"]
    assert history["what"].tolist() == ["Approve"] and history["gate_status"].tolist() == ["PASS"]
    assert any("Review log intact: 1 entries" in c.value for c in at.caption)
    store = Store(demo_copy / "waymark.duckdb")
    (entry,) = read_log(store)
    assert (entry.model_name, entry.version, entry.platform) == ("churn_model", "3", "fabric")
    assert entry.identity_source == "oidc" and verify(store).ok
    # The queue now shows the decision.
    at.run()
    queue = at.dataframe[0].value
    assert queue.loc[queue["model"] == "churn_model", "last_decision"].tolist() == ["Approve by bob@contoso.com"]


def test_local_identity_is_unverified_and_cannot_approve_a_failing_gate(monkeypatch, demo_copy):
    from gates.reviews import read_log
    from store import Store
    from ui import gates_loaders as gl

    config = with_review(demo_copy / "governance.toml", local_identity="alice@contoso.com")
    at = open_page(monkeypatch, config)
    assert any(md("alice@contoso.com") in c.value and "unverified" in c.value for c in at.caption)
    choose(at, "churn-prediction-gbm v3")
    # Approve is not offered, and the reason stands next to the decision.
    assert at.radio[0].options == ["Reject", "Request changes"]
    assert any("Approve is not offered" in c.value and "gate does not pass" in c.value for c in at.caption)
    # The server refuses it too, whatever a client sends.
    from collectors.config import load_config
    from gates.identity import Identity

    store_key = (str(demo_copy / "waymark.duckdb"), Store(demo_copy / "waymark.duckdb").stamp())
    key = next(k for k, c in gl.queue(*store_key, str(config))["choices"] if c.startswith("churn-prediction-gbm v3"))
    view = gl.gate(*store_key, str(config), key)
    refused = gl.submit(load_config(config), Identity("alice@contoso.com", False, "config"), view.result,
                        "approve", "looks fine", False)
    assert not refused.ok and "the gate does not pass" in refused.message
    assert read_log(Store(demo_copy / "waymark.duckdb")) == []
    at.radio[0].set_value("reject")
    at.text_area[0].set_value("roc_auc 0.791 is below the 0.80 threshold")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any(md("Recorded review #1") in s.value and md("Reject of churn-prediction-gbm v3") in s.value for s in at.success)
    assert not at.info or not any("alias" in i.value for i in at.info)      # a rejection moves nothing
    history = at.dataframe[-1].value
    assert history["who"].tolist() == ["alice@contoso.com (unverified)"] and history["what"].tolist() == ["Reject"]


def test_the_decision_has_no_default_and_is_required(monkeypatch, demo_copy):
    from gates.reviews import read_log
    from store import Store

    config = with_review(demo_copy / "governance.toml", local_identity="bob@contoso.com")
    at = open_page(monkeypatch, config)
    choose(at, "churn_model v3")
    assert at.radio[0].value is None and at.radio[0].index is None
    at.text_area[0].set_value("metrics checked")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("Choose a decision" in e.value and "nothing was recorded" in e.value for e in at.error)
    assert read_log(Store(demo_copy / "waymark.duckdb")) == []
    assert at.text_area[0].value == "metrics checked"          # a refused review keeps what was typed


def reject_v3_as_bob(monkeypatch, demo_copy):
    """The page after bob@contoso.com recorded a rejection of churn-prediction-gbm v3."""
    config = with_review(demo_copy / "governance.toml", local_identity="bob@contoso.com")
    at = open_page(monkeypatch, config)
    choose(at, "churn-prediction-gbm v3")
    at.radio[0].set_value("reject")
    at.text_area[0].set_value("roc_auc below 0.80")
    at.button[0].click().run()
    return at, config


def test_the_form_clears_and_a_repeat_review_asks_first(monkeypatch, demo_copy):
    from datetime import datetime, timezone

    from gates.reviews import read_log
    from store import Store

    at, config = reject_v3_as_bob(monkeypatch, demo_copy)
    assert any(md("Recorded review #1") in s.value and md("Reject of churn-prediction-gbm v3") in s.value for s in at.success)
    assert at.radio[0].value is None and at.text_area[0].value == ""     # cleared after recording
    # The same review again: asked first, nothing written until confirmed.
    at.radio[0].set_value("reject")
    at.text_area[0].set_value("still below 0.80")
    at.button[0].click().run()
    assert not at.exception, at.exception
    today = datetime.now(timezone.utc).date().isoformat()
    assert any(f"You already recorded Reject for v3 on {today}. Record again?" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    assert len(read_log(Store(demo_copy / "waymark.duckdb"))) == 1
    # Cancel writes nothing and the question goes away.
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert not any("Record again?" in w.value for w in at.warning)
    assert len(read_log(Store(demo_copy / "waymark.duckdb"))) == 1
    # Asked again, and confirmed: written once, with the note typed.
    at.button[0].click().run()
    next(b for b in at.button if b.label == "Record again").click().run()
    assert not at.exception, at.exception
    assert any(md("review #2") in s.value for s in at.success)
    log = read_log(Store(demo_copy / "waymark.duckdb"))
    assert [(e.decision, e.note) for e in log] == [("reject", "roc_auc below 0.80"), ("reject", "still below 0.80")]
    # A different decision is not a repeat: recorded at once.
    at.radio[0].set_value("request_changes")
    at.text_area[0].set_value("retrain with the new features")
    at.button[0].click().run()
    assert any(md("review #3") in s.value for s in at.success) and not any("Record again?" in w.value
                                                                            for w in at.warning)


def _private_fabric_registry(demo_copy: Path, config_path: Path) -> str:
    """Copy the demo's Fabric MLflow store into this test's folder, let the config write to it, and
    return its URI (the shared demo stores must never be written)."""
    import re
    import shutil

    text = config_path.read_text(encoding="utf-8")
    block = re.search(r'name = "fabric-churn"\nkind = "mlflow"\nplatform = "fabric"\ntracking_uri = "sqlite:///(.+?)"\n',
                      text)
    assert block, text
    target = demo_copy / "fabric-registry" / "mlflow.db"
    target.parent.mkdir()
    shutil.copy2(block.group(1), target)
    uri = f"sqlite:///{target}"
    config_path.write_text(text.replace(block.group(0), block.group(0).replace(block.group(1), str(target))
                                        + "allow_registry_writes = true\n"), encoding="utf-8")
    return uri


def _production(uri: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias("churn_model",
                                                                                           "Production").version)


def test_an_unverified_approval_is_said_plainly_to_never_move_the_registry(monkeypatch, demo_copy):
    from gates.reviews import read_log
    from store import Store

    config = with_review(demo_copy / "governance.toml", local_identity="bob@contoso.com")
    uri = _private_fabric_registry(demo_copy, config)
    before = _production(uri)
    at = open_page(monkeypatch, config)
    choose(at, "churn_model v3")
    assert any("unverified" in c.value and "does **not** move the alias" in c.value for c in at.caption)
    assert not [c for c in at.checkbox if "also move" in c.label]       # no write-back offered
    at.radio[0].set_value("approve")
    at.text_area[0].set_value("metrics and lineage checked")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any(md("Recorded review #1") in s.value and md("Approve of churn_model v3") in s.value for s in at.success), \
        [e.value for e in at.error]
    assert any(i.value == md("The alias did not move: churn_model@Production is unchanged (an unverified approval "
                             "is recorded but never changes a registry).") for i in at.info), [i.value for i in at.info]
    (entry,) = read_log(Store(demo_copy / "waymark.duckdb"))
    assert (entry.reviewer, entry.reviewer_verified, entry.identity_source) == ("bob@contoso.com", False,
                                                                                        "config")
    assert _production(uri) == before


def test_a_verified_reviewer_may_write_back_from_the_page(monkeypatch, demo_copy):
    config = with_review(demo_copy / "governance.toml")
    uri = _private_fabric_registry(demo_copy, config)
    at = open_page(monkeypatch, config, user={"is_logged_in": True, "email": "bob@contoso.com"})
    choose(at, "churn_model v3")
    assert not any("does **not** move the alias" in c.value for c in at.caption)
    at.radio[0].set_value("approve")
    at.text_area[0].set_value("metrics and lineage checked")
    next(c for c in at.checkbox if "also move @Production" in c.label).check()
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any(s.value == md("The alias moved: churn_model@Production now points at version 3 in the fabric-churn "
                             "registry.") for s in at.success), [e.value for e in at.error + at.success]
    assert _production(uri) == "3"


def test_the_run_author_is_shown_and_an_unknown_one_blocks_approval(monkeypatch, demo_copy):
    mapped = with_review(demo_copy / "governance.toml").read_text(encoding="utf-8")
    config = demo_copy / "unmapped.toml"          # the same, but nobody maps the run's user
    config.write_text(mapped[:mapped.index("[[review.identities]]")], encoding="utf-8")
    at = open_page(monkeypatch, config, user={"is_logged_in": True, "email": "bob@contoso.com"})
    choose(at, "churn_model v3")
    authors = next(d.value for d in at.dataframe if "known" in d.value.columns)
    assert authors["name"].tolist() == ["svc-churn-training"] and authors["known"].iloc[0].startswith("no")
    assert any("Approve is not offered" in c.value and "separation of duties cannot be checked" in c.value
               and "'svc-churn-training' matches no known identity" in c.value for c in at.caption)
    assert "Approve" not in at.radio[0].options
    # With the mapping of the demo's own config, the same run has a known author.
    at = open_page(monkeypatch, demo_copy / "governance.toml", user={"is_logged_in": True, "email": "bob@contoso.com"})
    choose(at, "churn_model v3")
    authors = next(d.value for d in at.dataframe if "known" in d.value.columns)
    assert authors.iloc[0].tolist() == ["svc-churn-training", "churn-ci@contoso.com", "yes"]
    assert not any("Approve is not offered" in c.value for c in at.caption) and "Approve" in at.radio[0].options


def test_a_tampered_log_disables_the_review_form(monkeypatch, demo_copy):
    import duckdb

    from gates.reviews import read_log
    from store import Store

    at, config = reject_v3_as_bob(monkeypatch, demo_copy)
    assert any(md("review #1") in s.value for s in at.success)
    con = duckdb.connect(str(demo_copy / "waymark.duckdb"))
    con.execute("UPDATE gate_review_log SET decision = 'approve' WHERE entry_id = 1")
    con.close()
    at = open_page(monkeypatch, config)
    choose(at, "churn_model v3")
    assert at.button[0].disabled and at.radio[0].disabled and at.text_area[0].disabled
    assert any("fails verification" in e.value and "no review can be recorded" in e.value for e in at.error)
    assert any("Review log tampered with" in e.value and "entry 1 was edited" in e.value for e in at.error)
    assert len(read_log(Store(demo_copy / "waymark.duckdb"))) == 1


def test_baselines_per_platform_are_shown_in_plain_words(monkeypatch, demo_copy):
    at = open_page(monkeypatch, without_review(demo_copy / "governance.toml"))
    queue = at.dataframe[0].value
    # Unity Catalog: v4 holds @champion, so no UC version is queued; Azure ML: v3 beside v2 (90 % traffic).
    assert not (queue["model"] == "churn.ml.churn_gbm").any()
    aml = queue[queue["model"] == "churn-model"]
    assert aml["version"].tolist() == ["3"] and aml["baseline"].tolist() == ["v2 (most traffic (90%))"]
    choose(at, "churn-model v3")
    assert any(m.label == "Baseline now" and m.value == "v2" for m in at.metric)
    inputs = next(d.value for d in at.dataframe if "input" in d.value.columns)
    assert inputs["version"].map(lambda v: v is not None and v == v).all(), inputs   # "—", never None
    assert any(md("the version taking the most traffic (90%)") in c.value for c in at.caption)


def test_a_first_promotion_says_so(monkeypatch, gates_ws):
    from tests.test_gates import FRESH

    at = open_page(monkeypatch, gates_ws.config_path)
    queue = at.dataframe[0].value
    assert queue.loc[queue["model"] == FRESH, "baseline"].tolist() == ["none: first promotion"]
    choose(at, f"{FRESH} v1")
    assert any("First promotion" in i.value and "never had an alias" in i.value for i in at.info)
    assert any(m.label == "Baseline now" and m.value == "none" for m in at.metric)


def test_what_blocks_and_the_evidence_are_shown_in_full(monkeypatch, gates_ws):
    """A table cell cuts long text: what blocks each queued candidate, and every criterion's
    evidence, are also written out in full (escaped) below their tables."""
    from ui import gates_loaders as gl
    from ui.loaders import store_stamp

    at = open_page(monkeypatch, gates_ws.config_path)
    blocks = next(m.value for m in at.markdown if m.value.startswith("**What blocks**"))
    store = gates_ws.store_path
    q = gl.queue(str(store), store_stamp(store), str(gates_ws.config_path))
    failing = [k for k, c in q["choices"] if "FAIL" in c]
    assert len(failing) >= 2
    for k in failing:
        result = gl.gate(str(store), store_stamp(store), str(gates_ws.config_path), k).result
        assert result.blocking
        for c in result.blocking:       # each blocking criterion, whole: found, required, evidence
            assert md(gl.criterion_line(c), one_line=True) in blocks
            assert len(c.evidence) > 30
    assert md("runs.metrics['roc_auc'] of run bad") in blocks
    choose(at, "churn-gates v3")
    evidence = next(m.value for e in at.expander if e.label.startswith("Evidence of each criterion")
                    for m in e.markdown)
    for c in at.dataframe[1].value.itertuples():
        assert md(c.evidence, one_line=True) in evidence, c.criterion


def test_the_policy_shows_as_its_name_and_hash_not_a_path(monkeypatch, demo_copy):
    import hashlib

    from gates.policy import DEFAULT_POLICY

    at = open_page(monkeypatch, without_review(demo_copy / "governance.toml"))
    choose(at, "churn_model v3")
    digest = hashlib.sha256(DEFAULT_POLICY.read_text(encoding="utf-8").encode("utf-8")).hexdigest()[:12]
    caption = next(c.value for c in at.caption if c.value.startswith("Policy "))
    assert caption.startswith(f"Policy **built-in default** (sha256 {digest}…)"), caption
    assert "default_policy.toml" not in caption and "/" not in caption.split("·")[0]
    # A named policy file in the config's policy_dir shows its [policy] name (escaped, it is config text).
    policies = demo_copy / "policies"
    policies.mkdir()
    (policies / "churn_model.toml").write_text('[policy]\nname = "Churn *strict* gate"\n', encoding="utf-8")
    text = without_review(demo_copy / "governance.toml").read_text(encoding="utf-8")
    config = demo_copy / "named.toml"
    config.write_text(text.replace("[[sources]]", f'[review]\npolicy_dir = "{policies}"\n\n[[sources]]', 1),
                      encoding="utf-8")
    at = open_page(monkeypatch, config)
    choose(at, "churn_model v3")
    caption = next(c.value for c in at.caption if c.value.startswith("Policy "))
    assert caption.startswith(f"Policy **{md('Churn *strict* gate')}** (sha256 "), caption
    assert str(policies) not in caption


def test_the_chosen_version_lives_in_the_url(monkeypatch, demo_copy):
    monkeypatch.setenv("WAYMARK_CONFIG", str(without_review(demo_copy / "governance.toml")))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"source": "dbx-churn", "model": "churn-prediction-gbm", "version": "3"})
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value.startswith("churn-prediction-gbm v3 · databricks (dbx-churn)")
    assert any("Gate FAIL" in e.value for e in at.error)
    choose(at, "churn_model v3")
    assert {k: at.query_params[k] for k in ("source", "model", "version")} in (
        {"source": "fabric-churn", "model": "churn_model", "version": "3"},
        {"source": ["fabric-churn"], "model": ["churn_model"], "version": ["3"]})


def test_a_queue_row_opens_its_version_in_the_lineage_explorer(monkeypatch, demo_copy):
    """Issue 13: a queue row opens its lineage — a link to the explorer focused on that version."""
    from urllib.parse import parse_qs, urlsplit

    from lineage.load import load_graph
    from store import Store

    at = open_page(monkeypatch, without_review(demo_copy / "governance.toml"))
    queue = at.dataframe[0].value
    assert not queue.empty and queue["lineage"].notna().all()
    graph = load_graph(Store(demo_copy / "waymark.duckdb"))
    for row in queue.itertuples():
        link = urlsplit(row.lineage)
        assert link.path.endswith("lineage_explorer")
        node = parse_qs(link.query)["node"][0]
        data = graph.node_data(node)              # a real node of the graph: that very version
        assert (data["name"], str(data["version"]), data["attrs"].get("source")) == (row.model, str(row.version),
                                                                                   row.source)
    # The explorer opens on it.
    node = parse_qs(urlsplit(queue["lineage"].iloc[0]).query)["node"][0]
    at.query_params["node"] = node
    at.switch_page("pages/lineage_explorer.py").run()
    assert not at.exception, at.exception
    focused = at.query_params["node"]
    assert (focused[0] if isinstance(focused, list) else focused) == node   # the page kept that focus
