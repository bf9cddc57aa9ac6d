"""What a gate evaluation returns: one `Criterion` per check and the `GateResult` that holds them.

`actual` and `required` are the words shown (table, CLI, review log); the numbers a criterion was
decided on travel beside them (`value`, `min`, `max`, `baseline`), so a reader never parses text back."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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


@dataclass
class GateResult:
    target: dict[str, Any]
    status: str
    evaluated_at: str
    policy: dict[str, Any]
    snapshot_ids: dict[str, int]
    run: dict[str, Any] | None
    baseline: dict[str, Any] | None
    criteria: list[Criterion]
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    lineage: dict[str, Any] | None = None
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
        out = asdict(self)
        out["counts"] = self.counts()
        out["blocking"] = [c.name for c in self.blocking]
        return out
