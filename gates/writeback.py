"""Optional write-back of an approval to the source registry (off unless the source allows it).

Only for a source with `allow_registry_writes = true`, and only for an approval signed by a
verified (OIDC) identity: a name typed into a config or an environment variable is recorded as an
unverified review and never changes a registry. The approval must be the entry stored in a log
that verifies (so a forged or edited approval is refused). One registry write per approval — move the
policy's alias to the approved version, or set an approval tag on it — so there is never a
half-done promotion. The alias move is compare-and-set: if the alias no longer points where the
approval saw it (the baseline), nothing is written. The log records the attempt *before* the call
and the outcome after it, so a crash in between leaves "attempted, no outcome" — a visible state
that says "check the registry", never a silent one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from collectors.config import Config
from gates.policy import Policy
from gates.identity import OIDC
from gates.reviews import ReviewEntry, append_entry, canonical, entry_hash, read_log, verify
from store.db import Store


@dataclass
class WritebackOutcome:
    attempted: bool
    ok: bool
    message: str
    entries: list[ReviewEntry] = field(default_factory=list)


def write_back(store: Store, config: Config, policy: Policy, approval: ReviewEntry) -> WritebackOutcome:
    """Act on an approval entry in its source registry; every attempt and outcome is logged."""
    if approval.kind != "review" or approval.decision != "approve":
        return WritebackOutcome(False, False, "only an approval can be written back to a registry")
    if not (approval.reviewer_verified is True and approval.identity_source == OIDC):
        return WritebackOutcome(False, False, f"the approval by {approval.reviewer} is unverified (not an OIDC "
                                "sign-in): it is recorded in the review log but never written to a registry; "
                                "the registry was not changed")
    src = config.source(approval.source)
    if not src.allow_registry_writes:
        return WritebackOutcome(False, False, f"source {src.name} does not allow registry writes "
                                "(allow_registry_writes = false): the registry was not changed")
    chain = verify(store)
    if not chain.ok:
        return WritebackOutcome(False, False, "the review log fails verification: nothing is written to a "
                                "registry until it is restored; the registry was not changed")
    stored = [e for e in read_log(store) if e.entry_id == approval.entry_id]
    if not stored or stored[0].entry_hash != approval.entry_hash or entry_hash(approval) != approval.entry_hash:
        return WritebackOutcome(False, False, "this approval is not the entry stored in the review log: "
                                "the registry was not changed")
    import json

    name, version = approval.model_name, str(approval.version)
    # The gate result as the reviewer saw it: the JSON text the entry's hash covers.
    seen = json.loads(approval.gate_result) if approval.gate_result else {}
    expected = (seen.get("baseline") or {}).get("version")
    alias = policy.alias_to_move((seen.get("baseline") or {}).get("alias"), approval.platform)
    if policy.writeback_action == "alias":
        plan = f"move {name}@{alias} to version {version} (expected at {('v' + expected) if expected else 'none'})"
    else:
        plan = f"set tag {policy.writeback_tag} on {name}/{version}"
    common = dict(source=approval.source, platform=approval.platform, model_name=name, version=version,
                  reviewer=approval.reviewer, reviewer_verified=approval.reviewer_verified,
                  identity_source=approval.identity_source, gate_status=approval.gate_status,
                  gate_result=None, snapshot_ids=approval.snapshot_ids, ref_entry=approval.entry_id)
    attempt = append_entry(store, kind="writeback_attempt", decision="attempted",
                           note=f"{plan} in {src.effective_registry_uri}", **common)
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=src.tracking_uri, registry_uri=src.effective_registry_uri)
        if policy.writeback_action == "alias":
            current = _alias_version(client, name, alias)
            if current != expected:
                raise RuntimeError(f"{name}@{alias} is at {('v' + current) if current else 'no version'} in the "
                                   f"registry, the approval saw {('v' + expected) if expected else 'none'}: "
                                   "not moved (re-review against the new baseline)")
            client.set_registered_model_alias(name, alias, version)
            detail = f"{name}@{alias} now points at version {version}"
        else:
            client.set_model_version_tag(name, version, policy.writeback_tag,
                                         canonical({"entry": approval.entry_id, "hash": approval.entry_hash,
                                                    "reviewer": approval.reviewer}))
            detail = f"tag {policy.writeback_tag} set on {name}/{version}"
    except Exception as e:  # noqa: BLE001 — any registry failure is recorded as the outcome
        message = f"write-back failed, the registry was not changed: {type(e).__name__}: {str(e)[:300]}"
        result = append_entry(store, kind="writeback_result", decision="failed", note=message, **common)
        return WritebackOutcome(True, False, message, [attempt, result])
    result = append_entry(store, kind="writeback_result", decision="succeeded", note=detail, **common)
    return WritebackOutcome(True, True, detail, [attempt, result])


def _alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as e:
        if getattr(e, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
