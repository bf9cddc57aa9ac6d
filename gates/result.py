"""What a gate evaluation returns: one `Criterion` per check and the `GateResult` that holds them.

`actual` and `required` are the words shown (table, CLI, review log); the numbers a criterion was
decided on travel beside them (`value`, `min`, `max`, `baseline`), so a reader never parses text back."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lineage.answer import InputRef, RunRef
from lineage.graph import Gap

PASS, FAIL, UNKNOWN = "PASS", "FAIL", "UNKNOWN"


class TargetNotFound(LookupError):
    def __init__(self, message: str, candidates: list[str] | None = None):
        super().__init__(message)
        self.candidates = candidates or []


@dataclass
class Criterion:
    name: str                 # stable id: threshold:roc_auc, relative:f1_score, tag:owner, lineage:gaps…
    kind: str                 # threshold | relative | required | artifact | lineage | latency | registry | run
    status: str               # PASS | FAIL | UNKNOWN
    actual: str
    required: str
    evidence: str
    blocking: bool = False    # FAIL, or UNKNOWN not allowed by the policy
    # The numbers behind a metric criterion (threshold, relative, latency); None elsewhere or when unusable.
    value: float | None = None        # the candidate's metric
    min: float | None = None          # it must be ≥ this
    max: float | None = None          # it must be ≤ this
    baseline: float | None = None     # the baseline's metric a relative bound was derived from


@dataclass(frozen=True)
class GateTarget:
    """The model version a gate evaluated."""
    source: str
    platform: str
    name: str
    version: str
    label: str


@dataclass(frozen=True)
class PolicyRef:
    """The policy file a gate was evaluated against (its hash pins the exact text)."""
    path: str
    sha256: str
    baseline_alias: str
    baseline_rule: str


@dataclass(frozen=True)
class ProducingRun:
    """The run that produced the candidate (GateResult.run); `authors` feed separation of duties."""
    source: str
    platform: str
    run_id: str
    run_name: str | None
    user_id: str | None
    via: str
    git_sha: str | None
    lifecycle_stage: str | None
    authors: list[str]


@dataclass(frozen=True)
class BaselineRef:
    """The version the candidate is compared with, and how it was found (GateResult.baseline)."""
    alias: str | None
    label: str
    basis: str
    version: str
    source: str
    run_id: str | None
    run_name: str | None
    via: str
    snapshot_id: int | None
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LineageSummary:
    """What the lineage criteria read from the trace of the candidate (GateResult.lineage)."""
    node: str
    runs: list[RunRef]
    git_shas: list[str]
    inputs: list[InputRef]
    gaps: list[Gap]

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "runs": [r.to_dict() for r in self.runs], "git_shas": self.git_shas,
                "inputs": [i.to_dict() for i in self.inputs], "gaps": [g.to_dict() for g in self.gaps]}


@dataclass
class GateResult:
    target: GateTarget
    status: str
    evaluated_at: str
    policy: PolicyRef
    snapshot_ids: dict[str, int]
    run: ProducingRun | None
    baseline: BaselineRef | None
    criteria: list[Criterion]
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    lineage: LineageSummary | None = None
    # found | first_promotion | unknown, and one sentence saying so in plain words
    baseline_state: str = ""
    baseline_summary: str = ""
    # metrics logged but not usable (NaN, ±inf as MLflow stores it): series → metric → why
    metric_gaps: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def blocking(self) -> list[Criterion]:
        return [c for c in self.criteria if c.blocking]

    def counts(self) -> dict[str, int]:
        out = {PASS: 0, FAIL: 0, UNKNOWN: 0}
        for c in self.criteria:
            out[c.status] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)   # the plain records become dicts with their fields in order
        out["lineage"] = self.lineage.to_dict() if self.lineage is not None else None
        out["counts"] = self.counts()
        out["blocking"] = [c.name for c in self.blocking]
        return out
