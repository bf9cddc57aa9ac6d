"""Azure plumbing written once for the Azure ML, Fabric and AI Search collectors: credentials, a
JSON-over-HTTP client with bearer tokens, bounded retries (429 honouring Retry-After, 5xx), and
every paging envelope these APIs use (`nextLink`, `continuationUri`/`continuationToken`,
`next_page_token`, `@odata.nextLink`).

Plain `requests` instead of the azure-core pipeline: the collectors need the raw envelope (Fabric's
lakehouse tables page under `data`, not `value`), one retry policy that reports what it did, and
the same code against https services and http stubs on 127.0.0.1. Bearer tokens are sent over
plain http only to a loopback host (tests and the demo); anywhere else http is refused.
Tokens never reach a log, a report or the store: errors are reported by status, code and message.
"""
from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from collectors.report import SourceReport, redact, register_secret

ARM_SCOPE = "https://management.azure.com/.default"
FABRIC_SCOPE = "https://api.fabric.microsoft.com/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"
SEARCH_SCOPE = "https://search.azure.com/.default"
MAX_ATTEMPTS = 5            # per request: first try + 4 retries
MAX_RETRY_AFTER = 60.0      # seconds; a longer Retry-After fails the call instead of stalling a pass
DEFAULT_TIMEOUT = 60.0


class AzureHttpError(RuntimeError):
    """A non-retryable (or retries exhausted) HTTP error; carries status and the service's error code."""

    def __init__(self, status: int, code: str | None, message: str, url: str):
        self.status, self.code = status, code
        path = urlsplit(url).path
        super().__init__(redact(f"HTTP {status}{f' {code}' if code else ''} on {path}: {message}"[:600]))


class PagingLoop(RuntimeError):
    pass


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def enforce_https_for(url: str) -> bool:
    """azure-sdk clients get `enforce_https=False` only for a loopback stub, never for a real host."""
    return not (url.startswith("http://") and is_loopback(url))


def default_credential():
    """DefaultAzureCredential (env vars, managed identity, Azure CLI, …); imported lazily."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


@dataclass
class _Token:
    value: str
    expires_on: float


class AzureHttp:
    """GET/POST JSON with a bearer token per scope, retries and paging; counts calls in the report."""

    def __init__(self, credential: Any, report: SourceReport, *, timeout: float = DEFAULT_TIMEOUT,
                 sleep: Callable[[float], None] = time.sleep):
        self.credential = credential
        self.report = report
        self.timeout = timeout
        # Seconds one request may keep being retried (None: MAX_ATTEMPTS only); the runner sets it per source.
        self.retry_timeout: float | None = None
        self.sleep = sleep
        self.session = requests.Session()
        self._tokens: dict[str, _Token] = {}
        self._lock = threading.Lock()
        self.retries = 0

    # -- auth --------------------------------------------------------------------------------------
    def _bearer(self, scope: str) -> str:
        with self._lock:
            tok = self._tokens.get(scope)
            if tok is None or tok.expires_on - 120 < time.time():
                access = self.credential.get_token(scope)
                tok = _Token(access.token, float(access.expires_on))
                register_secret(access.token)   # a service echoing it in an error must not store it
                self._tokens[scope] = tok
            return tok.value

    @staticmethod
    def _check_transport(url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(url)):
            return
        raise ValueError(f"refusing to send a bearer token to {parts.scheme}://{parts.hostname}: "
                         "only https (or http to a loopback stub) is allowed")

    # -- requests ----------------------------------------------------------------------------------
    def request(self, method: str, url: str, scope: str, *, params: dict[str, Any] | None = None,
                json_body: Any = None) -> dict[str, Any]:
        self._check_transport(url)
        if params:
            url = url + ("&" if "?" in url else "?") + urlencode({k: v for k, v in params.items() if v is not None})
        first_try = time.monotonic()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            headers = {"Authorization": f"Bearer {self._bearer(scope)}", "Accept": "application/json"}
            with self._lock:
                self.report.api_calls += 1
            try:
                resp = self.session.request(method, url, headers=headers, json=json_body, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as e:
                if attempt == MAX_ATTEMPTS or not self._may_retry(first_try, attempt, None):
                    raise AzureHttpError(0, type(e).__name__, str(e)[:300], url) from None
                self._backoff(attempt, None)
                continue
            if resp.status_code < 400:
                if not resp.content:
                    return {}
                return resp.json()
            retryable = resp.status_code == 429 or resp.status_code >= 500
            if retryable and attempt < MAX_ATTEMPTS:
                wait = _retry_after(resp)
                if (wait is not None and wait > MAX_RETRY_AFTER) or not self._may_retry(first_try, attempt, wait):
                    raise _error(resp, url)
                self.retries += 1
                self._backoff(attempt, wait)
                continue
            raise _error(resp, url)
        raise AssertionError("unreachable")

    @staticmethod
    def _wait(attempt: int, retry_after: float | None) -> float:
        return retry_after if retry_after is not None else min(0.5 * 2 ** (attempt - 1), 8.0)

    def _may_retry(self, first_try: float, attempt: int, retry_after: float | None) -> bool:
        """False when the wait plus another full request would pass the retry deadline."""
        if self.retry_timeout is None:
            return True
        spent = time.monotonic() - first_try
        return spent + self._wait(attempt, retry_after) + self.timeout <= self.timeout + self.retry_timeout

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        self.sleep(self._wait(attempt, retry_after))

    def get(self, url: str, scope: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", url, scope, params=params)

    # -- paging ------------------------------------------------------------------------------------
    def pages(self, url: str, scope: str, *, params: dict[str, Any] | None = None,
              items_key: str = "value") -> Iterator[list[dict[str, Any]]]:
        """Follow every page: `nextLink` / `@odata.nextLink` / `continuationUri` (absolute URLs),
        else `continuationToken` or `next_page_token` passed back as a query parameter."""
        seen: set[str] = set()
        next_url, next_params = url, dict(params or {})
        while True:
            body = self.get(next_url, scope, next_params)
            items = body.get(items_key)
            yield list(items or [])
            link = body.get("nextLink") or body.get("@odata.nextLink") or body.get("continuationUri")
            token = body.get("continuationToken")
            page_token = body.get("next_page_token")
            if link:
                marker = link
                next_url, next_params = urljoin(next_url, link), {}
            elif token:
                marker = token
                next_params = {**(params or {}), "continuationToken": token}
                next_url = url
            elif page_token:
                marker = page_token
                next_params = {**(params or {}), "page_token": page_token}
                next_url = url
            else:
                return
            if marker in seen:
                raise PagingLoop(f"server repeated the page marker {marker[:40]!r}; stopping to avoid a loop")
            seen.add(marker)

    def items(self, url: str, scope: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [item for page in self.pages(url, scope, **kwargs) for item in page]


def _retry_after(resp: requests.Response) -> float | None:
    for header in ("Retry-After", "retry-after-ms", "x-ms-retry-after-ms"):
        raw = resp.headers.get(header)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue  # an HTTP date: fall back to exponential backoff
        return value / 1000.0 if header.endswith("-ms") else value
    return None


def _error(resp: requests.Response, url: str) -> AzureHttpError:
    code, message = None, resp.reason or ""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        code = err.get("code") or err.get("errorCode") or err.get("error_code")
        message = err.get("message") or message
    # Fabric also names the error in a header (the body may be empty or not JSON).
    code = code or resp.headers.get("x-ms-public-api-error-code")
    return AzureHttpError(resp.status_code, code, str(message), url)
