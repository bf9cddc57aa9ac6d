"""Per-pass report: counts, timings and capped warnings/failures (the DataHub source-report idea)."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

MAX_MESSAGES = 50  # a source with 20k broken runs must not produce a 20k-line report
# Error texts can echo request headers or URLs; these shapes never reach the store or a page.
_SECRET_SHAPES = re.compile(
    r"(dapi[0-9a-f]{8,}(-\d+)?|Bearer\s+[\w.~+/=-]+|(?-i:Basic)\s+[A-Za-z0-9+/]{8,}={0,2}|eyJ[\w-]+\.[\w-]+\.[\w-]+|"
    r"((?:access_)?token|secret|password|sig)=[^&\s]+|"
    r"\"(?:access_token|token|client_secret|secret|password)\"\s*:\s*\"[^\"]*\")", re.IGNORECASE)
# `scheme://user:password@host` in a tracking URI is echoed by every HTTP error MLflow raises.
_URL_USERINFO = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@")


def redact(text: str) -> str:
    return _URL_USERINFO.sub("[redacted]@", _SECRET_SHAPES.sub("[redacted]", text))


@dataclass
class SourceReport:
    source: str
    fetched: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    dropped_warnings: int = 0
    dropped_failures: int = 0
    started: float = field(default_factory=time.monotonic)

    def count(self, entity: str, n: int = 1) -> None:
        self.fetched[entity] = self.fetched.get(entity, 0) + n

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_MESSAGES:
            self.warnings.append(redact(message))
        else:
            self.dropped_warnings += 1

    def fail(self, message: str) -> None:
        if len(self.failures) < MAX_MESSAGES:
            self.failures.append(redact(message))
        else:
            self.dropped_failures += 1

    def capped_warnings(self) -> list[str]:
        extra = [f"… and {self.dropped_warnings} more warnings"] if self.dropped_warnings else []
        return self.warnings + extra

    def capped_failures(self) -> list[str]:
        extra = [f"… and {self.dropped_failures} more failures"] if self.dropped_failures else []
        return self.failures + extra

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
