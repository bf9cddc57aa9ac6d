"""Reviews of a gate result (separation of duties, reviewer roles, a baseline moved during review),
the hash-chained review log under tampering, and write-back to the registry; on private copies
(`ws_copy`) of the workspace built in test_gates.py."""
from __future__ import annotations

import json

import duckdb
import pytest

from tests.conftest import client
from tests.test_gates import AUTHOR, MODEL, OUTSIDER, REVIEWER, GatesWs, _policy, _write, gate, gates_cli
from tests.test_gates import gates_ws, ws_copy  # noqa: F401  (fixtures)


# -- reviews -------------------------------------------------------------------------------------------
def test_separation_of_duties_and_reviewer_roles(ws_copy):
    from gates.reviews import Identity, ReviewError, read_log, submit_review

    seen = gate(ws_copy, "2")
    author = Identity(AUTHOR, False, "local")
    with pytest.raises(ReviewError, match="separation of duties"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), author, seen=seen, decision="approve", note="lgtm")
    # The author may still ask for changes; an outsider may not review this model at all.
    submit_review(ws_copy.store, ws_copy.config, _policy(), author, seen=seen, decision="request_changes",
                  note="please add the slice report")
    with pytest.raises(ReviewError, match="not a reviewer of churn-gates"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), Identity(OUTSIDER, True, "oidc"), seen=seen,
                      decision="approve", note="ok")
    with pytest.raises(ReviewError, match="needs a note"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), Identity(REVIEWER, False, "local"), seen=seen,
                      decision="approve", note="   ")
    entry = submit_review(ws_copy.store, ws_copy.config, _policy(), Identity(REVIEWER, True, "oidc"), seen=seen,
                          decision="approve", note="Beats Production on every metric; lineage complete.")
    assert entry.reviewer == REVIEWER and entry.reviewer_verified is True
    assert json.loads(entry.snapshot_ids) == seen.snapshot_ids
    assert json.loads(entry.gate_result)["status"] == "PASS"
    log = read_log(ws_copy.store, MODEL, "2")
    assert [(e.decision, e.reviewer) for e in log] == [("request_changes", AUTHOR), ("approve", REVIEWER)]


def test_a_failing_gate_cannot_be_approved_but_can_be_rejected(ws_copy):
    from gates.reviews import Identity, ReviewError, submit_review

    seen = gate(ws_copy, "3")
    alice = Identity(REVIEWER, False, "local")
    with pytest.raises(ReviewError, match="the gate does not pass"):
        submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=seen, decision="approve", note="ship it")
    entry = submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=seen, decision="reject",
                          note="roc_auc 0.791 below 0.80")
    assert entry.gate_status == "FAIL" and entry.reviewer_verified is False


def test_baseline_moved_during_review_is_refused_as_stale(ws_copy):
    from collectors.runner import snapshot_all
    from gates.reviews import Identity, StaleReview, submit_review

    seen = gate(ws_copy, "5")          # the reviewer looks while Production is v1
    assert seen.baseline.version == "1"
    client(ws_copy.uri).set_registered_model_alias(MODEL, "Production", "2")   # someone promotes v2 meanwhile
    assert all(o.ok for o in snapshot_all(ws_copy.config))
    alice = Identity(REVIEWER, False, "local")
    with pytest.raises(StaleReview) as stale:
        submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=seen, decision="approve", note="ok")
    assert "baseline @Production moved" in str(stale.value) and "was v1, is now v2" in str(stale.value)
    fresh = stale.value.fresh
    assert fresh.baseline.version == "2" and fresh.snapshot_ids != seen.snapshot_ids
    entry = submit_review(ws_copy.store, ws_copy.config, _policy(), alice, seen=fresh, decision="approve",
                          note="re-checked against v2")
    assert json.loads(entry.gate_result)["baseline"]["version"] == "2"
    assert json.loads(entry.snapshot_ids) == fresh.snapshot_ids


# -- the hash chain ----------------------------------------------------------------------------------
def _three_reviews(ws: GatesWs) -> None:
    from gates.reviews import Identity, submit_review

    alice = Identity(REVIEWER, False, "local")
    for version, decision, note in (("2", "approve", "good"), ("3", "reject", "bad"), ("4", "request_changes", "nan")):
        submit_review(ws.store, ws.config, _policy(), alice, seen=gate(ws, version), decision=decision, note=note)


def _tamper(ws: GatesWs, sql: str, params=()) -> None:
    con = duckdb.connect(str(ws.store_path))
    try:
        con.execute(sql, list(params))
    finally:
        con.close()


def test_chain_verifies_then_detects_an_edited_entry(ws_copy):
    from gates.reviews import verify

    _three_reviews(ws_copy)
    report = verify(ws_copy.store)
    assert report.ok and report.entries == 3
    ok = gates_cli("verify", "--config", ws_copy.config_path, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["head_hash"] == report.head_hash
    _tamper(ws_copy, "UPDATE gate_review_log SET decision = 'approve', note = 'fine' WHERE entry_id = 2")
    bad = verify(ws_copy.store)
    assert not bad.ok and any("entry 2 was edited" in p for p in bad.problems)
    out = gates_cli("verify", "--config", ws_copy.config_path)
    assert out.returncode == 1 and "TAMPERED" in out.stdout and "entry 2 was edited" in out.stdout


def test_chain_detects_a_deleted_entry_and_a_cut_tail(ws_copy):
    from gates.reviews import verify

    _three_reviews(ws_copy)
    head = verify(ws_copy.store).head_hash
    _tamper(ws_copy, "DELETE FROM gate_review_log WHERE entry_id = 3")
    cut = verify(ws_copy.store)
    assert not cut.ok and any("deleted from the end" in p for p in cut.problems)
    # Even with the head record "repaired" to match, a pinned head hash exposes the cut.
    _tamper(ws_copy, "UPDATE gate_review_head SET entries = 2, head_hash = "
                     "(SELECT entry_hash FROM gate_review_log WHERE entry_id = 2)")
    assert verify(ws_copy.store).ok
    pinned = gates_cli("verify", "--config", ws_copy.config_path, "--expect-head", head)
    assert pinned.returncode == 1 and "not the expected" in pinned.stdout
    _tamper(ws_copy, "DELETE FROM gate_review_log WHERE entry_id = 1")
    middle = verify(ws_copy.store)
    assert not middle.ok and any("entry 1 is missing" in p for p in middle.problems)
    assert any("prev_hash does not match" in p for p in middle.problems)


def test_entries_are_appended_with_linked_hashes(ws_copy):
    from gates.reviews import GENESIS, entry_hash, read_log

    _three_reviews(ws_copy)
    log = read_log(ws_copy.store)
    assert [e.entry_id for e in log] == [1, 2, 3] and log[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(log, log[1:]))
    assert all(entry_hash(e) == e.entry_hash for e in log)


# -- write-back ----------------------------------------------------------------------------------------
def _approve(ws: GatesWs, version: str = "2") -> dict:
    from gates.reviews import Identity, submit_review

    return submit_review(ws.store, ws.config, _policy(), Identity(REVIEWER, True, "oidc"), seen=gate(ws, version),
                         decision="approve", note="approved for Production")


def test_write_back_is_off_by_default(ws_copy):
    from gates.reviews import read_log
    from gates.writeback import write_back

    approval = _approve(ws_copy)
    outcome = write_back(ws_copy.store, ws_copy.config, _policy(), approval)
    assert not outcome.attempted and "allow_registry_writes = false" in outcome.message
    assert str(client(ws_copy.uri).get_model_version_by_alias(MODEL, "Production").version) == "1"
    assert [e.kind for e in read_log(ws_copy.store)] == ["review"]


def test_write_back_moves_the_alias_and_records_the_outcome(ws_copy):
    from gates.reviews import read_log, verify
    from gates.writeback import write_back

    cfg = _write(ws_copy.root, ws_copy.uri, allow_writes=True)
    ws = GatesWs(ws_copy.root, ws_copy.uri, cfg, ws_copy.store_path, ws_copy.runs)
    approval = _approve(ws)
    outcome = write_back(ws.store, ws.config, _policy(), approval)
    assert outcome.attempted and outcome.ok, outcome.message
    assert str(client(ws.uri).get_model_version_by_alias(MODEL, "Production").version) == "2"
    log = read_log(ws.store)
    assert [(e.kind, e.decision) for e in log] == [("review", "approve"), ("writeback_attempt", "attempted"),
                                                         ("writeback_result", "succeeded")]
    assert log[2].ref_entry == approval.entry_id and verify(ws.store).ok


def test_write_back_refuses_when_the_alias_moved_and_leaves_the_registry_alone(ws_copy):
    from gates.reviews import read_log, verify
    from gates.writeback import write_back

    cfg = _write(ws_copy.root, ws_copy.uri, allow_writes=True)
    ws = GatesWs(ws_copy.root, ws_copy.uri, cfg, ws_copy.store_path, ws_copy.runs)
    approval = _approve(ws, "2")
    client(ws.uri).set_registered_model_alias(MODEL, "Production", "5")   # moved by someone else, not yet snapshotted
    outcome = write_back(ws.store, ws.config, _policy(), approval)
    assert outcome.attempted and not outcome.ok
    assert "is at v5 in the registry, the approval saw v1" in outcome.message
    assert str(client(ws.uri).get_model_version_by_alias(MODEL, "Production").version) == "5"
    last = read_log(ws.store)[-1]
    assert (last.kind, last.decision) == ("writeback_result", "failed") and verify(ws.store).ok

