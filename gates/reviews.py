"""Reviews: approve / reject / request changes, in an append-only, hash-chained log.

Each entry stores `prev_hash` (the previous entry's hash; 64 zeros for the first) and
`entry_hash = sha256(canonical JSON of every other field, prev_hash included)`. Canonical JSON is
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` over exactly the values
stored (times as UTC ISO strings, the gate result as its canonical JSON text). `gate_review_head`
keeps the entry count and head hash in the same transaction, so editing an entry, deleting one in
the middle, or cutting the tail are all detected by `verify()`; pin the printed head hash outside
the store (`python -m gates verify --expect-head`) to detect a rewrite of the whole chain.

Who may review: `[[review.reviewers]]` in the config (identity + model-name globs). Who is who:
gates/identity.py (one resolver, canonical names, `[[review.identities]]` aliases). Separation of
duties: the author of the producing run (its MLflow user, or `mlflow.user` tag, mapped to a known
identity) cannot approve; an author that matches no known identity blocks approval too, unless
`[review] allow_unknown_authors = true`. An approval needs a passing gate, and the gate is
re-evaluated at submission: if the baseline or any criterion changed since the reviewer looked,
the review is refused as stale. No review is added to a log that `verify()` reports as tampered.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from collectors.config import Config
from gates.evaluate import PASS, Context, GateResult, evaluate
from gates.identity import Identity, canonical_identity, directory, normalise
from gates.policy import Policy
from store.db import Store, StoreMissing

DECISIONS = ("approve", "reject", "request_changes")
DECISION_LABELS = {"approve": "Approve", "reject": "Reject", "request_changes": "Request changes"}
GENESIS = "0" * 64
MAX_NOTE = 4000
FIELDS = ("entry_id", "recorded_at", "kind", "source", "platform", "model_name", "version", "decision",
          "reviewer", "reviewer_verified", "identity_source", "note", "gate_status", "gate_result",
          "snapshot_ids", "ref_entry", "prev_hash")
_STORED = FIELDS + ("entry_hash",)
_INSERT_ENTRY = ("INSERT INTO gate_review_log (" + ", ".join(_STORED) + ") VALUES ("
                 + ", ".join("?" for _ in _STORED) + ")")
_SELECT_CHAIN = "SELECT " + ", ".join(_STORED) + " FROM gate_review_log ORDER BY entry_id"


@dataclass(frozen=True)
class ReviewEntry:
    """One entry of the review log as stored: a review, or a write-back attempt or result
    (`ref_entry` names the approval it acted on). `gate_result` and `snapshot_ids` are the
    canonical JSON texts the hash covers."""
    entry_id: int
    recorded_at: str
    kind: str                       # review | writeback_attempt | writeback_result
    source: str
    platform: str
    model_name: str
    version: str
    decision: str                   # a review's decision; attempted | succeeded | failed for a write-back
    reviewer: str
    reviewer_verified: bool
    identity_source: str
    note: str
    gate_status: str | None
    gate_result: str | None
    snapshot_ids: str
    ref_entry: int | None
    prev_hash: str
    entry_hash: str

    def to_dict(self) -> dict[str, Any]:
        """The stored row: every field, in the log's column order."""
        return {k: getattr(self, k) for k in _STORED}


class ReviewError(ValueError):
    """A review that may not be recorded (no permission, separation of duties, no note…)."""


class ReviewLogTampered(ReviewError):
    """The log fails verification: nothing may be added until it is restored; `report` says why."""

    def __init__(self, report: "VerifyReport"):
        super().__init__("the review log fails verification, so no review can be recorded until it is restored "
                         "from a trusted copy (`python -m gates verify` lists the problems): "
                         + "; ".join(report.problems))
        self.report = report


class StaleReview(ReviewError):
    """The gate changed between what the reviewer saw and now; `fresh` is the new result."""

    def __init__(self, message: str, fresh: GateResult):
        super().__init__(message)
        self.fresh = fresh


@dataclass(frozen=True)
class AuthorCheck:
    """The producing run's authors as the config knows them (for separation of duties)."""
    run_label: str
    known: tuple[tuple[str, str], ...]      # (name on the platform, identity it maps to)
    unknown: tuple[str, ...]                # names that match no known identity
    no_author: bool                         # the run records nobody (MLflow user "unknown") or is missing

    @property
    def matched(self) -> bool:
        return not self.unknown and not self.no_author

    def describe(self) -> str:
        if self.no_author:
            return (f"the author of {self.run_label} is not recorded (no MLflow user): it cannot be matched "
                    "to a known identity")
        parts = [f"{raw} = {who}" if normalise(raw) != who else who for raw, who in self.known]
        text = f"author of {self.run_label}: " + ", ".join(parts + [f"{u} (unknown)" for u in self.unknown])
        if self.unknown:
            text += (" — " + ", ".join(repr(u) for u in self.unknown) + " matches no known identity "
                     "([[review.identities]] identity + also_known_as, or [[review.reviewers]])")
        return text


def author_check(config: Config, result: GateResult) -> AuthorCheck:
    run = result.run
    label = f"run {(run.run_name or run.run_id) if run else '(no producing run found)'}"
    names = directory(config)
    known, unknown = [], []
    for raw in (run.authors if run else []):
        who = names.lookup(raw)
        if who is None:
            unknown.append(raw)
        else:
            known.append((raw, who))
    return AuthorCheck(label, tuple(known), tuple(unknown), no_author=not known and not unknown)


def may_review(config: Config, identity: Identity | None, model_name: str) -> tuple[bool, str]:
    if not config.review.reviewers:
        return False, "no reviewers are configured ([[review.reviewers]] in the config): nobody may review"
    if identity is None:
        return False, ("no reviewer identity: sign in (OIDC) or set [review] local_identity in the config")
    names = directory(config)
    for r in config.review.reviewers:
        if names.same_person(r.identity, identity.name) and any(fnmatch.fnmatchcase(model_name, g) for g in r.models):
            return True, f"{identity.name} may review {model_name}"
    return False, f"{identity.name} is not a reviewer of {model_name} ([[review.reviewers]] in the config)"


def approval_block(config: Config, identity: Identity, result: GateResult) -> str | None:
    """Why this identity may not approve this result (None: it may)."""
    names = directory(config)
    authors = result.run.authors if result.run else []
    if any(names.same_person(a, identity.name) for a in authors):
        return (f"separation of duties: {names.canonical(identity.name)} authored run "
                f"{(result.run.run_name if result.run else None) or ''} and cannot approve it")
    check = author_check(config, result)
    if not check.matched and not config.review.allow_unknown_authors:
        return (f"separation of duties cannot be checked: {check.describe()}. Map the run's user to a person "
                "with also_known_as in [[review.identities]], or set [review] allow_unknown_authors = true")
    if result.status != PASS:
        blocking = ", ".join(c.name for c in result.blocking)
        return f"the gate does not pass ({blocking}): reject or request changes instead"
    return None


# -- the chain -------------------------------------------------------------------------------------
def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(entry: ReviewEntry | dict[str, Any]) -> str:
    values = entry.to_dict() if isinstance(entry, ReviewEntry) else entry
    return hashlib.sha256(canonical({k: values.get(k) for k in FIELDS}).encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append_entry(store: Store, **values: Any) -> ReviewEntry:
    """Append one entry in one short write transaction; returns it with its id and hashes."""
    def write(con) -> ReviewEntry:   # re-run from the start on a concurrent conflict (DuckLake)
        last = con.execute("SELECT entry_id, entry_hash FROM gate_review_log ORDER BY entry_id DESC LIMIT 1").fetchall()
        entry = {k: values.get(k) for k in FIELDS}
        entry["entry_id"] = last[0][0] + 1 if last else 1
        entry["prev_hash"] = last[0][1] if last else GENESIS
        entry["recorded_at"] = values.get("recorded_at") or _now()
        entry["entry_hash"] = entry_hash(entry)
        con.execute(_INSERT_ENTRY, [entry[c] for c in _STORED])
        # Delete + insert rather than INSERT OR REPLACE: DuckLake has no primary keys.
        con.execute("DELETE FROM gate_review_head WHERE id = 1")
        con.execute("INSERT INTO gate_review_head (id, entries, head_hash) VALUES (1, ?, ?)",
                    [entry["entry_id"], entry["entry_hash"]])
        return ReviewEntry(**entry)

    return store.write(write)


def read_log(store: Store, model_name: str | None = None, version: str | None = None) -> list[ReviewEntry]:
    """Entries oldest first (optionally of one model / version)."""
    try:
        with store.reader() as con:
            cur = con.execute(
                f"SELECT {', '.join(FIELDS)}, entry_hash FROM gate_review_log "
                "WHERE (? IS NULL OR model_name = ?) AND (? IS NULL OR version = ?) ORDER BY entry_id",
                [model_name, model_name, version, version])
            names = [d[0] for d in cur.description]
            return [ReviewEntry(**dict(zip(names, row))) for row in cur.fetchall()]
    except StoreMissing:
        return []


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head_hash": self.head_hash, "problems": self.problems}


def verify(store: Store, expect_head: str | None = None) -> VerifyReport:
    """Walk the chain: every hash recomputed, every link and id checked, the head compared."""
    with store.reader() as con:
        cur = con.execute(_SELECT_CHAIN)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        head = con.execute("SELECT entries, head_hash FROM gate_review_head WHERE id = 1").fetchall()
    problems: list[str] = []
    prev = GENESIS
    for expected_id, row in enumerate(rows, start=1):
        eid = row["entry_id"]
        if eid != expected_id:
            problems.append(f"entry {expected_id} is missing (the next entry is {eid}): an entry was deleted")
        if row["prev_hash"] != prev:
            problems.append(f"entry {eid}: prev_hash does not match the entry before it: "
                            "an entry before it was deleted, edited or reordered")
        recomputed = entry_hash(row)
        if recomputed != row["entry_hash"]:
            problems.append(f"entry {eid} was edited: its content no longer matches its hash "
                            f"(stored {row['entry_hash'][:12]}…, recomputed {recomputed[:12]}…)")
        prev = row["entry_hash"]
    last_hash = rows[-1]["entry_hash"] if rows else GENESIS
    if head:
        n, h = head[0]
        if n != len(rows) or (rows and rows[-1]["entry_id"] != n):
            problems.append(f"the head records {n} entries but the log holds {len(rows)}"
                            + (": entries were deleted from the end" if n > len(rows) else ""))
        if h != last_hash:
            problems.append(f"the head hash {h[:12]}… is not the last entry's hash {last_hash[:12]}…")
    elif rows:
        problems.append("the head record is missing")
    if expect_head and expect_head != last_hash:
        problems.append(f"the head hash {last_hash[:12]}… is not the expected {expect_head[:12]}…: "
                        "the log was rewritten or cut since that hash was pinned")
    return VerifyReport(not problems, len(rows), last_hash, problems)


# -- submitting a review ---------------------------------------------------------------------------
def _fingerprint(result: GateResult) -> tuple:
    return (result.baseline.version if result.baseline else None, result.status,
            tuple((c.name, c.status) for c in result.criteria))


def submit_review(store: Store, config: Config, policy: Policy, identity: Identity | None, *,
                  seen: GateResult, decision: str, note: str,
                  artifact_lister: Callable | None = None) -> ReviewEntry:
    """Check and append one review of the version `seen` describes; returns the log entry.

    Raises ReviewError (not permitted, separation of duties, empty note, failing gate on approve),
    ReviewLogTampered (the log fails verification) or StaleReview (the gate changed since the
    reviewer saw it — the baseline moved, say). The entry records the identity as verified only
    when it came from OIDC; only such an approval may be written back to a registry.
    """
    target = seen.target
    if identity is not None:    # compare and record the canonical name, however it was built
        identity = canonical_identity(config, identity)
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    note = (note or "").strip()
    if not note:
        raise ReviewError("a review needs a note: say what you checked and why")
    if len(note) > MAX_NOTE:
        raise ReviewError(f"the note is {len(note)} characters; keep it under {MAX_NOTE}")
    ok, why = may_review(config, identity, target.name)
    if not ok:
        raise ReviewError(why)
    assert identity is not None
    chain = verify(store)
    if not chain.ok:
        raise ReviewLogTampered(chain)
    fresh = evaluate(Context(store), policy, target.source, target.name, target.version,
                     artifact_lister=artifact_lister)
    if _fingerprint(fresh) != _fingerprint(seen):
        before = seen.baseline.version if seen.baseline else None
        after = fresh.baseline.version if fresh.baseline else None
        # Name the baseline as it was found (an alias on one platform, traffic on Azure ML).
        either = seen.baseline or fresh.baseline
        named = either.alias if either else None
        what = (f"the baseline{' @' + named if named else ''} moved: it was v{before}, is now v{after}"
                if before != after
                else f"the gate result changed ({seen.status} → {fresh.status})")
        raise StaleReview(f"{what} since you looked; the gate was re-evaluated — review it again", fresh)
    if decision == "approve":
        block = approval_block(config, identity, fresh)
        if block:
            raise ReviewError(block)
    return append_entry(store, kind="review", source=target.source, platform=target.platform,
                        model_name=target.name, version=target.version, decision=decision,
                        reviewer=identity.name, reviewer_verified=identity.verified,
                        identity_source=identity.source, note=note, gate_status=seen.status,
                        gate_result=canonical(seen.to_json()), snapshot_ids=canonical(seen.snapshot_ids),
                        ref_entry=None)
