"""Per-pass report: counts, timings and capped warnings/failures (the DataHub source-report idea)."""
from __future__ import annotations

import base64
import os
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import quote

MAX_MESSAGES = 50  # a source with 20k broken runs must not produce a 20k-line report
# Error texts can echo request headers or URLs; these shapes never reach the store or a page.
_SECRET_SHAPES = re.compile(
    r"(dapi[0-9a-f]{8,}(-\d+)?|Bearer\s+[\w.~+/=-]+|(?-i:Basic)\s+[A-Za-z0-9+/]{8,}={0,2}|eyJ[\w-]+\.[\w-]+\.[\w-]+|"
    r"((?:access_)?token|secret|password|sig)=[^&\s]+|"
    r"\"(?:access_token|token|client_secret|secret|password)\"\s*:\s*\"[^\"]*\")", re.IGNORECASE)
# `scheme://user:password@host` in a tracking URI is echoed by every HTTP error MLflow raises.
_URL_USERINFO = re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@")


# Credentials Waymark's clients send, by env var: a server that echoes what it received (a token in an
# error body, a decoded Basic header) would otherwise get it into the store. Shapes alone miss those.
SECRET_ENV_VARS = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_CLIENT_CERT_PASSWORD",
                   "DATABRICKS_TOKEN", "DATABRICKS_PASSWORD", "DATABRICKS_CLIENT_SECRET",
                   "AZURE_CLIENT_SECRET", "AZURE_PASSWORD", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
                   "ARM_CLIENT_SECRET")
# (username var, password var): the Basic header carries base64("user:password").
BASIC_ENV_PAIRS = (("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"),
                   ("DATABRICKS_USERNAME", "DATABRICKS_PASSWORD"),
                   ("AZURE_USERNAME", "AZURE_PASSWORD"))
# Shorter values would blank out ordinary words; no real token or password policy allows them.
MIN_SECRET_LENGTH = 6
_sent: set[str] = set()          # tokens obtained at run time (Entra ID bearer tokens, ...)
_sent_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """A credential this process sends (e.g. a bearer token from a credential): redact it everywhere."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _sent_lock:
            _sent.add(value)


def _encodings(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, quote(value, safe=""), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return forms | {f.rstrip("=") for f in forms}


def secret_values() -> list[str]:
    """Every exact value to redact, longest first (so a value containing another goes whole)."""
    values: set[str] = set()
    for var in SECRET_ENV_VARS:
        if len(os.environ.get(var, "")) >= MIN_SECRET_LENGTH:
            values |= _encodings(os.environ[var])
    for user_var, password_var in BASIC_ENV_PAIRS:
        user, password = os.environ.get(user_var), os.environ.get(password_var)
        if user and password:
            values |= _encodings(f"{user}:{password}")
    with _sent_lock:
        for value in _sent:
            values |= _encodings(value)
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, "[redacted]")
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
