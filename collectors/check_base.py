"""What `python -m collectors check` reports and how: the outcome of an area and of a source, the
classification of any client's failure (redacted), and `Probe`, which runs a source's areas in
order. The probes per source kind are in `collectors.check_{mlflow,databricks,azure}`."""
from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from collectors.azure_common import AzureHttpError
from collectors.config import SourceConfig
from collectors.fabric_source import PRINCIPAL_TYPE_REFUSED
from collectors.permissions import areas, grant
from collectors.report import SourceReport, redact

DEFAULT_TIMEOUT = 20.0   # seconds per HTTP call (and for the Databricks SDK's retry budget)
SAMPLE = 100             # items asked for per first page

OK, SKIPPED = "ok", "skipped"
DENIED, UNAUTHENTICATED, UNREACHABLE, NOT_FOUND, ERROR = "denied", "unauthenticated", "unreachable", "not_found", "error"
PASSING = (OK, SKIPPED)


@dataclass
class AreaCheck:
    area: str
    label: str
    status: str
    count: int | None = None
    more: bool = False          # the first page carried a next-page marker
    detail: str | None = None
    grant: str | None = None    # set when the status says a permission is missing

    @property
    def ok(self) -> bool:
        return self.status in PASSING

    @property
    def found(self) -> str:
        if self.count is None:
            return "—"
        return f"≥{self.count}" if self.more else str(self.count)


@dataclass
class SourceCheck:
    source: str
    kind: str
    platform: str
    identity: dict[str, str] = field(default_factory=dict)
    areas: list[AreaCheck] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.areas)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "platform": self.platform, "ok": self.ok,
                "identity": self.identity, "seconds": round(self.seconds, 2),
                "areas": [{"area": a.area, "label": a.label, "status": a.status, "count": a.count, "more": a.more,
                           "found": a.found, "detail": a.detail, "grant": a.grant} for a in self.areas]}


class Skip(Exception):
    """An area that cannot be asked about (not configured, or nothing to ask about): not a failure."""


class Blocked(Exception):
    """A failure already classified: the identity probe failed in a way every area would repeat (no
    route, no credential), or an area summarises several refusals in one detail."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


Page = tuple[int | list, bool]   # (the first page or its length, more pages exist)


# -- outcome of a failed call ----------------------------------------------------------------------
def classify(e: BaseException) -> tuple[str, str]:
    """(status, one-line detail) for any client's exception; the detail is redacted."""
    status = _status_of(e)
    text = " ".join(str(e).split()) or type(e).__name__
    text = text.split(". Config: ")[0]   # the Databricks SDK appends its config and env var names
    if status == UNREACHABLE:   # the root cause, not three layers of connection-pool wrapping
        root = _ROOT_CAUSE.search(text)
        text = f"{_host_of(text)}{root.group(0) if root else text}"
    return status, redact(f"{type(e).__name__}: {text}")[:400]


_ROOT_CAUSE = re.compile(r"\[Errno -?\d+\] [^\"')]+|Read timed out|timed out|Timed out after [\d:.]+")


def _host_of(text: str) -> str:
    m = re.search(r"host='([^']+)', port=(\d+)", text)
    return f"{m.group(1)}:{m.group(2)}: " if m else ""


def _status_of(e: BaseException) -> str:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError
    from databricks.sdk import errors as dbx
    from mlflow.exceptions import MlflowException
    import requests

    if isinstance(e, AzureHttpError):
        # Fabric's user-only lists refuse a service principal with a 400, but it is a refusal all the same.
        return DENIED if e.code == PRINCIPAL_TYPE_REFUSED else _by_http_status(e.status)
    if isinstance(e, ClientAuthenticationError):
        return UNAUTHENTICATED
    if isinstance(e, HttpResponseError):
        return _by_http_status(e.status_code or -1)
    if isinstance(e, ServiceRequestError):
        return UNREACHABLE
    if isinstance(e, dbx.PermissionDenied):
        return DENIED
    if isinstance(e, dbx.Unauthenticated):
        return UNAUTHENTICATED
    if isinstance(e, (dbx.NotFound, dbx.ResourceDoesNotExist)):
        return NOT_FOUND
    if isinstance(e, MlflowException):
        code = str(getattr(e, "error_code", ""))
        if code == "PERMISSION_DENIED":
            return DENIED
        if code == "UNAUTHENTICATED":
            return UNAUTHENTICATED
        if code in ("RESOURCE_DOES_NOT_EXIST", "ENDPOINT_NOT_FOUND"):
            return NOT_FOUND
        if re.search(r"Max retries exceeded|Connection refused|ConnectionError|timed out|Name or service not known",
                     str(e)):
            return UNREACHABLE
        return ERROR
    if isinstance(e, (requests.ConnectionError, requests.Timeout, TimeoutError, ConnectionError)):
        return UNREACHABLE
    if isinstance(e, FileNotFoundError):
        return NOT_FOUND
    return ERROR


def _by_http_status(status: int) -> str:
    return {0: UNREACHABLE, 401: UNAUTHENTICATED, 403: DENIED, 404: NOT_FOUND}.get(status, ERROR)


def token_identity(token: str) -> dict[str, str]:
    """Who an Entra ID access token names: its claims, decoded without verification (this is a
    display, not an authorization decision). The token itself is never returned."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {"token": "not a JWT: identity unknown"}
    out = {"user": claims.get("upn") or claims.get("unique_name") or claims.get("preferred_username"),
           "app_id": claims.get("appid") or claims.get("azp"), "object_id": claims.get("oid"),
           "tenant": claims.get("tid")}
    if claims.get("idtyp") == "app" or (not out["user"] and out["app_id"]):
        out["kind"] = "service principal or managed identity"
    elif out["user"]:
        out["kind"] = "user"
    return {k: str(v) for k, v in out.items() if v}



class Probe:
    """One source: `identity()` first, then one method `area_<key>()` per API area, in order."""

    def __init__(self, source: SourceConfig, timeout: float, sample: int):
        self.source, self.timeout, self.sample = source, timeout, sample
        self.report = SourceReport(source.name)   # the collectors' call counter; never persisted

    def identity(self) -> dict[str, str]:
        raise NotImplementedError

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def run(self) -> SourceCheck:
        started = time.monotonic()
        result = SourceCheck(self.source.name, self.source.kind, self.source.platform)
        blocked: Blocked | None = None
        try:
            result.identity = self.identity()
        except Blocked as b:
            blocked = b
            result.identity = {"error": b.detail}
        except Exception as e:
            status, detail = classify(e)
            result.identity = {"error": detail}
            if status in (UNREACHABLE, UNAUTHENTICATED):
                blocked = Blocked(status, detail)
        with contextlib.ExitStack() as stack:
            if blocked is None:
                try:
                    stack.enter_context(self.context())
                except Exception as e:   # e.g. the bearer token for an MLflow server cannot be fetched
                    blocked = Blocked(*classify(e))
            for area in areas(self.source.kind):
                if blocked is not None:
                    result.areas.append(AreaCheck(area.key, area.label, blocked.status, detail=blocked.detail))
                    continue
                result.areas.append(self._area(area.key, area.label))
        result.seconds = time.monotonic() - started
        return result

    def _area(self, key: str, label: str) -> AreaCheck:
        try:
            got = getattr(self, f"area_{key}")()
        except Skip as s:
            return AreaCheck(key, label, SKIPPED, detail=str(s))
        except Exception as e:
            status, detail = (e.status, e.detail) if isinstance(e, Blocked) else classify(e)
            needs = grant(self.source.kind, key, self.source.platform) if status in (DENIED, UNAUTHENTICATED) else None
            return AreaCheck(key, label, status, detail=detail, grant=needs)
        found, more, *note = got
        count = len(found) if isinstance(found, list) else found
        return AreaCheck(key, label, OK, count, more, detail=note[0] if note else None)
