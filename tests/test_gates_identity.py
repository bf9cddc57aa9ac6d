"""Identity in reviews, on a real MLflow sqlite registry (filled by the real client, collected by
the real collector): separation of duties across platform aliases and look-alike names, authors
nobody knows, unverified approvals that never write to the registry, and a tampered log that
takes no new review. Every candidate here passes its gate, so only identity decides."""
from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import client, delta_input, mlflow_source, new_mlflow_store, sha, write_config

MODEL = "churn-id"
BASE = {"roc_auc": 0.85, "f1_score": 0.75, "precision": 0.74}
GOOD = {"roc_auc": 0.87, "f1_score": 0.76, "precision": 0.75}
# Version -> the MLflow user of the run that produced it (None: the client recorded no user).
AUTHORS = {"1": "carol@contoso.com", "2": "alice", "3": "carol@contoso.com", "4": None}

REVIEW = """
[review]
{extra}
[[review.reviewers]]
identity = "alice@contoso.com"
models = ["churn-*"]
[[review.reviewers]]
identity = "carol@contoso.com"
models = ["*"]
[[review.reviewers]]
identity = "bob@contoso.com"
models = ["*"]
"""
ALIASES = '[[review.identities]]\nidentity = "alice@contoso.com"\nalso_known_as = ["alice"]\n'


@dataclass
class Ws:
    root: Path
    uri: str
    config_path: Path

    @property
    def config(self):
        from collectors.config import load_config

        return load_config(self.config_path)

    @property
    def store(self):
        from store.db import Store

        return Store(self.root / "waymark.duckdb")


def _write(root: Path, uri: str, review_extra: str = "", aliases: bool = True,
           name: str = "governance.toml") -> Path:
    cfg = write_config(root / name, [mlflow_source("dbx", uri, "databricks",
                                                                allow_registry_writes=True)])
    text = cfg.read_text(encoding="utf-8") + REVIEW.format(extra=review_extra) + (ALIASES if aliases else "")
    cfg.write_text(text, encoding="utf-8")
    return cfg


@pytest.fixture(scope="module")
def identity_ws(tmp_path_factory, mlflow_template) -> Ws:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.entities import Metric, Param
    from sklearn.linear_model import LogisticRegression

    from collectors.config import load_config
    from collectors.runner import snapshot_all

    root = tmp_path_factory.mktemp("identity")
    uri = new_mlflow_store(root / "dbx", mlflow_template)
    c = client(uri)
    exp = c.create_experiment("/churn/identity", artifact_location=(root / "dbx" / "artifacts").as_uri())
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), [0, 0, 1, 1])
    for version, user in AUTHORS.items():
        tags = {"owner": "churn-team", **({"mlflow.user": user} if user else {})}
        run = c.create_run(exp, run_name=f"run-v{version}", tags=tags).info.run_id
        metrics = BASE if version == "1" else GOOD
        c.log_batch(run, params=[Param("git_sha", sha(version)), Param("delta_feature_version", "7")],
                    metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()])
        c.log_inputs(run, datasets=[delta_input("main.churn.features", 7, "training", f"d-{version}")])
        with mlflow.start_run(run_id=run):
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
        c.set_terminated(run, "FINISHED")
        mlflow.register_model(f"models:/{info.model_id}", MODEL)
    c.set_registered_model_alias(MODEL, "Production", "1")
    cfg = _write(root, uri)
    assert all(o.ok for o in snapshot_all(load_config(cfg)))
    return Ws(root, uri, cfg)


@pytest.fixture()
def ws(identity_ws, tmp_path) -> Ws:
    """A private copy of the registry and the store: these tests write to both."""
    (tmp_path / "dbx").mkdir()
    shutil.copy2(identity_ws.root / "dbx" / "mlflow.db", tmp_path / "dbx" / "mlflow.db")
    shutil.copy2(identity_ws.root / "waymark.duckdb", tmp_path / "waymark.duckdb")
    uri = f"sqlite:///{tmp_path / 'dbx' / 'mlflow.db'}"
    return Ws(tmp_path, uri, _write(tmp_path, uri))


def _with(ws: Ws, review_extra: str = "", aliases: bool = True) -> Ws:
    """The same registry and store under another config."""
    name = f"governance-{abs(hash((review_extra, aliases)))}.toml"
    return Ws(ws.root, ws.uri, _write(ws.root, ws.uri, review_extra, aliases, name))


def gate(ws: Ws, version: str):
    from gates.artifacts import mlflow_artifact_lister
    from gates.evaluate import Context, evaluate

    result = evaluate(Context(ws.store), _policy(), "dbx", MODEL, version,
                      artifact_lister=mlflow_artifact_lister(ws.config))
    assert result.status == "PASS", [(c.name, c.actual) for c in result.blocking]
    return result


def _policy():
    from gates.policy import DEFAULT_POLICY, load_policy

    return load_policy(DEFAULT_POLICY)


def review(ws: Ws, who, version: str, decision: str = "approve", note: str = "beats Production; lineage complete"):
    from gates.reviews import submit_review

    return submit_review(ws.store, ws.config, _policy(), who, seen=gate(ws, version), decision=decision, note=note)


def production(ws: Ws) -> str:
    return str(client(ws.uri).get_model_version_by_alias(MODEL, "Production").version)


def oidc(name: str):
    from gates.identity import Identity

    return Identity(name, True, "oidc")


def local(name: str, source: str = "config"):
    from gates.identity import Identity

    return Identity(name, False, source)


# -- separation of duties ------------------------------------------------------------------------------
def test_the_author_under_a_platform_alias_cannot_approve(ws):
    from gates.reviews import ReviewError, read_log

    assert gate(ws, "2").run.authors == ["alice"]          # the run's MLflow user is the short name
    with pytest.raises(ReviewError, match="separation of duties: alice@contoso.com authored run run-v2"):
        review(ws, oidc("alice@contoso.com"), "2")
    assert read_log(ws.store) == []
    # Someone else may; the author may still reject or ask for changes.
    review(ws, local("alice@contoso.com"), "2", "request_changes", "add the slice report")
    assert review(ws, oidc("bob@contoso.com"), "2").reviewer == "bob@contoso.com"


@pytest.mark.parametrize("look_alike", ["Carol\u200b@Contoso.com", "\u202ecarol@contoso.com",
                                        "ｃａｒｏｌ@contoso.com", "car\u00adol@CONTOSO.COM"])
def test_a_look_alike_of_the_author_is_the_author(ws, look_alike):
    from gates.reviews import ReviewError, read_log

    with pytest.raises(ReviewError, match="separation of duties: carol@contoso.com authored run run-v3"):
        review(ws, oidc(look_alike), "3")
    assert read_log(ws.store) == []
    # Recorded under the canonical name, whatever form it arrived in.
    assert review(ws, oidc(look_alike), "3", "reject", "needs a second pair of eyes").reviewer \
        == "carol@contoso.com"


def test_an_author_nobody_knows_blocks_approval_unless_the_config_allows_it(ws):
    from gates.reviews import ReviewError, read_log

    assert gate(ws, "4").run.authors == []                  # the client recorded no MLflow user
    with pytest.raises(ReviewError, match="cannot be checked: the author of run run-v4 is not recorded"):
        review(ws, oidc("bob@contoso.com"), "4")
    no_alias = _with(ws, aliases=False)
    with pytest.raises(ReviewError, match="'alice' matches no known identity"):
        review(no_alias, oidc("bob@contoso.com"), "2")
    assert read_log(ws.store) == []
    review(ws, oidc("bob@contoso.com"), "4", "reject", "who trained this?")      # rejecting needs no author
    allowed = _with(ws, "allow_unknown_authors = true", aliases=False)
    assert review(allowed, oidc("bob@contoso.com"), "4").decision == "approve"
    # Allowing unknown authors never lets a known author approve their own run.
    with pytest.raises(ReviewError, match="separation of duties: carol@contoso.com authored run run-v3"):
        review(allowed, oidc("Carol@contoso.com"), "3")


# -- unverified identities never write to a registry -------------------------------------------------------
def test_an_unverified_approval_is_recorded_but_never_moves_the_alias(ws):
    from gates.reviews import read_log, verify
    from gates.writeback import write_back

    for source in ("config", "env", "os", "local"):
        approval = review(ws, local("bob@contoso.com", source), "3")
        assert approval.reviewer_verified is False and approval.identity_source == source
        outcome = write_back(ws.store, ws.config, _policy(), approval)
        assert not outcome.attempted and not outcome.ok and "unverified" in outcome.message
        assert production(ws) == "1"
    # A forged copy of the entry that claims to be verified is not the stored approval.
    forged = dataclasses.replace(approval, reviewer_verified=True, identity_source="oidc")
    outcome = write_back(ws.store, ws.config, _policy(), forged)
    assert not outcome.attempted and "not the entry stored" in outcome.message and production(ws) == "1"
    assert [e.kind for e in read_log(ws.store)] == ["review"] * 4 and verify(ws.store).ok
    # The same approval by a reviewer signed in with OIDC moves @Production in the real registry.
    verified = review(ws, oidc("bob@contoso.com"), "3")
    outcome = write_back(ws.store, ws.config, _policy(), verified)
    assert outcome.attempted and outcome.ok, outcome.message
    assert production(ws) == "3"
    assert [e.kind for e in read_log(ws.store)][-2:] == ["writeback_attempt", "writeback_result"]


def test_unverified_write_back_through_the_page_loader_leaves_the_registry_alone(ws):
    from ui import gates_loaders as gl

    chain = gl.chain(str(ws.store.path), 0)
    perm = gl.review_permission(ws.config, local("bob@contoso.com"), gate(ws, "3"), chain)
    assert perm["may_review"] and perm["writeback_unverified"] and not perm["writeback_allowed"]
    outcome = gl.submit(ws.config, local("bob@contoso.com"), gate(ws, "3"), "approve", "ok", writeback=True)
    assert outcome.ok and outcome.writeback is not None and not outcome.writeback.attempted
    assert "unverified" in outcome.registry and production(ws) == "1"   # the page says it beside the entry


# -- a tampered log takes no new review --------------------------------------------------------------------
def _tamper(ws: Ws, sql: str) -> None:
    con = duckdb.connect(str(ws.root / "waymark.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


def test_a_tampered_log_refuses_new_reviews_and_write_backs(ws):
    from gates.reviews import ReviewLogTampered, read_log
    from gates.writeback import write_back

    approval = review(ws, oidc("bob@contoso.com"), "3")
    _tamper(ws, "UPDATE gate_review_log SET note = 'rubber stamp' WHERE entry_id = 1")
    with pytest.raises(ReviewLogTampered, match="fails verification.*entry 1 was edited"):
        review(ws, oidc("bob@contoso.com"), "2", "reject", "too late")
    assert len(read_log(ws.store)) == 1
    outcome = write_back(ws.store, ws.config, _policy(), approval)
    assert not outcome.attempted and "fails verification" in outcome.message and production(ws) == "1"


# -- old entries still verify ---------------------------------------------------------------------------------
def test_the_hash_of_an_entry_is_unchanged_so_old_logs_still_verify():
    """An entry as the first release wrote it (identity_source "local"): its hash, computed then,
    must still be what entry_hash gives — otherwise every existing log would read as tampered."""
    from gates.reviews import GENESIS, entry_hash

    old = {"entry_id": 1, "recorded_at": "2026-10-01T09:00:00.000000Z", "kind": "review", "source": "dbx",
           "platform": "databricks", "model_name": "churn", "version": "2", "decision": "approve",
           "reviewer": "Alice@Contoso.com", "reviewer_verified": False, "identity_source": "local",
           "note": "ok", "gate_status": "PASS", "gate_result": "{}", "snapshot_ids": "{\"dbx\":3}",
           "ref_entry": None, "prev_hash": GENESIS}
    assert entry_hash(old) == "327ea4b95dbc4699aa1ef48252b5fd7b6d3740d3b889da75dd26caee33d37e3f"
