"""The Databricks source's shared half: the SDK client (unified auth, request counting, 500/504
retries), one-item reads that turn 403/404/errors into a status, the store context other
Databricks sources left, and the scoping that keeps a partial read from recording removals.
The API areas (`collectors.databricks_registry`, `_serving`, `_data`) build on it."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from collectors.config import SourceConfig
from collectors.report import SourceReport
from store.db import Store, StoreMissing
from store.entities import Scope


DEFAULT_LINEAGE_DEPTH = 3
DEFAULT_RETRY_TIMEOUT_SECONDS = 120
DEFAULT_HTTP_TIMEOUT_SECONDS = 60
GET_THREADS = 8                 # per-item GETs (model details, endpoints, indexes, tables) run in parallel
SERVER_ERROR_ATTEMPTS = 4       # 500/504 retried here; the SDK itself retries only 429/503
MODELS_PAGE = 1000              # metastore-wide maximum
MODELS_PAGE_SCHEMA = 10000      # maximum with catalog + schema
TERMINATED = ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")


@dataclass
class StoreContext:
    """What other Databricks-platform sources put in the store: the tables their runs read and the
    job runs that produced them."""
    run_tables: set[str] = field(default_factory=set)
    job_run_ids: set[str] = field(default_factory=set)
    # (table, column) -> the values current in the store for this source (what a scoped batch may close).
    current: dict[tuple[str, str], set[str]] = field(default_factory=dict)


# The columns a batch of this source can be scoped by when an item read fails (see `_scope`).
SCOPE_COLUMNS = (("registered_models", "name"), ("uc_models", "full_name"), ("model_versions", "name"),
                 ("uc_model_versions", "name"), ("model_aliases", "name"), ("model_version_dependencies", "name"),
                 ("serving_endpoints", "name"), ("served_entities", "endpoint"),
                 ("vector_indexes", "endpoint_name"), ("features", "full_name"), ("feature_lineage", "feature"),
                 ("uc_tables", "full_name"), ("table_lineage", "downstream"))


@dataclass
class ReadResult:
    status: str                 # ok | forbidden | not_found | error
    value: Any = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _ms(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _enum(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _three_part(name: Any) -> bool:
    return isinstance(name, str) and len(name.split(".")) == 3 and all(name.split("."))


class DatabricksClient:
    def __init__(self, config: SourceConfig, report: SourceReport,
                 progress: Callable[[str], None] | None = None):
        self.config = config
        self.opts = config.options
        self.report = report
        self.progress = progress or (lambda _msg: None)
        self.context = StoreContext()
        self._w = None
        self._lock = threading.Lock()
        self._table_reasons: dict[str, set[str]] = {}
        self._table_infos: dict[str, Any] = {}      # TableInfo of every table read with its details
        self._unread_tables: set[str] = set()       # tables whose details could not be read
        self._declarative: tuple[list[dict[str, Any]], set[str]] = ([], set())
        self.now_ms = int(time.time() * 1000)

    # -- store side ----------------------------------------------------------------------------
    @staticmethod
    def previous_state(store: Store, source: str) -> dict[str, Any] | None:
        """Job runs already read in a terminal state (immutable); None when there is no good pass."""
        try:
            with store.reader() as con:
                if not con.execute("SELECT 1 FROM snapshots WHERE source = ? AND status = 'ok' LIMIT 1",
                                   [source]).fetchall():
                    return None
                done = [r[0] for r in con.execute(
                    f"""SELECT job_run_id FROM job_runs WHERE source = ? AND valid_to IS NULL
                        AND read_status = 'ok' AND life_cycle_state IN ({', '.join('?' for _ in TERMINATED)})""",
                    [source, *TERMINATED]).fetchall()]
        except StoreMissing:
            return None
        return {"terminated_job_runs": done}

    def read_store_context(self, store: Store) -> None:
        """Tables read by, and job runs behind, the MLflow runs other Databricks sources collected."""
        try:
            with store.reader() as con:
                others = """SELECT DISTINCT source FROM snapshots WHERE platform = 'databricks' AND source <> ?"""
                self.context.run_tables = {r[0] for r in con.execute(
                    f"""SELECT DISTINCT table_name FROM run_inputs WHERE valid_to IS NULL
                        AND table_name IS NOT NULL AND source IN ({others})""", [self.config.name]).fetchall()}
                self.context.job_run_ids = {str(r[0]) for r in con.execute(
                    f"""SELECT DISTINCT job_run_id FROM runs WHERE valid_to IS NULL
                        AND job_run_id IS NOT NULL AND source IN ({others})""", [self.config.name]).fetchall()}
                for table, column in SCOPE_COLUMNS:   # identifiers from the constant above only
                    self.context.current[(table, column)] = {str(r[0]) for r in con.execute(
                        f"SELECT DISTINCT {column} FROM {table} WHERE source = ? AND valid_to IS NULL "
                        f"AND {column} IS NOT NULL", [self.config.name]).fetchall()}
        except StoreMissing:
            pass

    def _scope(self, table: str, column: str, seen: Iterable[Any], unread: Callable[[str], bool] | None) -> Scope:
        """The scope a batch is complete for. With no failed read (`unread` None) that is everything.
        Otherwise it is the keys read this pass plus the keys the store holds, minus every key a
        failed read covers: those rows stay as they were (no removal), and the warning says why."""
        if unread is None:
            return Scope.ALL
        keys = self.context.current.get((table, column), set()) | {str(k) for k in seen if k is not None}
        return Scope.partitions(column, sorted(k for k in keys if not unread(k)))

    # -- client --------------------------------------------------------------------------------
    @property
    def w(self):
        if self._w is None:
            from databricks.sdk import WorkspaceClient
            from databricks.sdk.core import Config

            kwargs = {k: self.opts[k] for k in ("host", "profile", "auth_type") if self.opts.get(k)}
            cfg = Config(**kwargs,
                         retry_timeout_seconds=int(self.opts.get("retry_timeout_seconds", DEFAULT_RETRY_TIMEOUT_SECONDS)),
                         http_timeout_seconds=int(self.opts.get("http_timeout_seconds", DEFAULT_HTTP_TIMEOUT_SECONDS)))
            self._w = WorkspaceClient(config=cfg)
            self._count_requests(self._w)
        return self._w

    def _count_requests(self, w) -> None:
        """Count every HTTP response (retries included) through a requests hook on the SDK session."""
        session = getattr(getattr(w.api_client, "_api_client", None), "_session", None)
        if session is None:
            return

        def hook(response, *args, **kwargs):
            with self._lock:
                self.report.api_calls += 1
            return response
        session.hooks["response"].append(hook)

    def _retry(self, fn: Callable[[], Any]) -> Any:
        """500/504 are retried a few times (the SDK only retries 429/503); the whole call restarts."""
        from databricks.sdk.errors import DeadlineExceeded, InternalError

        for attempt in Retrying(retry=retry_if_exception(lambda e: isinstance(e, (InternalError, DeadlineExceeded))),
                                stop=stop_after_attempt(SERVER_ERROR_ATTEMPTS),
                                wait=wait_exponential(multiplier=0.1, max=2), reraise=True):
            with attempt:
                return fn()

    def _read(self, what: str, fn: Callable[[], Any], *, warn_missing: bool = True) -> ReadResult:
        """One item: 403/404/other errors become a warning and a status, never an exception."""
        from databricks.sdk.errors import NotFound, PermissionDenied, ResourceDoesNotExist

        try:
            return ReadResult("ok", self._retry(fn))
        except PermissionDenied as e:
            self.report.warn(f"{what}: permission denied (403): {_short(e)}")
            return ReadResult("forbidden", detail=_short(e))
        except (NotFound, ResourceDoesNotExist) as e:
            if warn_missing:
                self.report.warn(f"{what}: not found (404): {_short(e)}")
            return ReadResult("not_found", detail=_short(e))
        except Exception as e:  # one item must not sink the pass
            self.report.warn(f"{what}: {type(e).__name__}: {_short(e)}")
            return ReadResult("error", detail=f"{type(e).__name__}: {_short(e)}")

    def _read_many(self, items: Iterable[Any], fn: Callable[[Any], ReadResult]) -> list[ReadResult]:
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=GET_THREADS) as pool:
            return list(pool.map(fn, items))

    def _want(self, table: str | None, reason: str) -> None:
        if _three_part(table):
            self._table_reasons.setdefault(table, set()).add(reason)


def _dependency(d) -> tuple[str, str | None]:
    for kind, attr, name_attr in (("table", "table", "table_full_name"), ("function", "function", "function_full_name"),
                                  ("connection", "connection", "connection_name"),
                                  ("credential", "credential", "credential_name")):
        obj = getattr(d, attr, None)
        if obj is not None:
            return kind, getattr(obj, name_attr, None)
    return "unknown", None


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]
