"""Runs one snapshot per source: collect (staging rows on disk as they arrive), then commit in one short
write (or record the failure).

Sources are collected in parallel, one thread each, so a stalled source does not delay the others:
each commits its own short write transaction as soon as it is done (writes are serialised by a lock
in this process and by DuckDB's file lock across processes). A kind that joins on what earlier
sources collected (`read_store_context`) waits for the sources listed before it.

An MLflow source with a remote tracking server runs in its own process: MLflow's HTTP timeout and
retry settings are process-global env vars (MLFLOW_HTTP_REQUEST_TIMEOUT, ..._MAX_RETRIES, ...), so
each such source gets its own values there, and a bearer token set for one never reaches another.

A failing source is recorded as a failed snapshot and never touches its last good data; the other
sources still commit.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import traceback
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collectors.azure_common import AzureHttp
from collectors.config import Config, SourceConfig
from collectors.databricks_source import DatabricksSource
from collectors.azureml_source import AzureMlSource
from collectors.fabric_source import FabricSource
from collectors.mlflow_source import MlflowSource
from collectors.search_source import SearchSource
from collectors.report import SourceReport, redact
from store.db import Store, StoreMissing
from store.entities import EntityBatch
from store.history import commit_snapshot, record_failed_snapshot
from store.staging import StageWriter, StagingArea
from store.queries import last_full_passes

# One collector class per source kind. Each offers:
#   previous_state(store, source_name) -> state or None (None: the next pass is full)
#   Cls(config, report, progress).collect(previous, full) -> (mode, {table: EntityBatch}, state)
#   or, with STAGES_ROWS = True, .collect(previous, full, stage_writer) -> (mode, {table: StagedBatch}, state)
#   (rows staged on disk page by page: kinds whose rows grow with the workspace, MLflow's runs)
SOURCE_KINDS = {"mlflow": MlflowSource, "databricks": DatabricksSource}
SOURCE_KINDS.update(azureml=AzureMlSource, fabric=FabricSource, azuresearch=SearchSource)

MAX_PARALLEL_SOURCES = 8
# Defaults that bound a stalled request (seconds): per-request timeout, and how long retries may go on.
# A hung or unreachable server fails its source after about http + retry timeout.
MLFLOW_HTTP_TIMEOUT_SECONDS = 30
MLFLOW_RETRY_TIMEOUT_SECONDS = 90
AZURE_HTTP_TIMEOUT_SECONDS = 60
AZURE_RETRY_TIMEOUT_SECONDS = 120
MLFLOW_BACKOFF_FACTOR = 1   # MLflow parses it as an int
MLFLOW_BACKOFF_JITTER = 0.5
# In this process: one write (or runner read) at a time; DuckDB refuses mixing read-only and
# read-write connections to one file inside a process.
_STORE_LOCK = threading.Lock()


@dataclass
class SnapshotOutcome:
    source: str
    ok: bool
    snapshot_id: int | None
    mode: str
    seconds: float
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    api_calls: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def snapshot_source(store: Store, source: SourceConfig, *, full: bool = False,
                    progress: Callable[[str], None] | None = None,
                    now: Callable[[], datetime] | None = None) -> SnapshotOutcome:
    clock = now or (lambda: datetime.now(timezone.utc))
    started = clock()
    report = SourceReport(source.name)
    mode = "full"
    try:
        source_class = SOURCE_KINDS[source.kind]
        full_reason = "requested" if full else None
        with _STORE_LOCK:
            if not full and full_pass_due(store, source, started):
                full, full_reason = True, "scheduled"
            previous = None if full else source_class.previous_state(store, source.name)
        mode = "full" if previous is None else "incremental"
        # Rows are staged on disk as pages arrive (store/staging.py); the folder goes with the pass.
        with StagingArea() as area:
            if runs_in_own_process(source):
                mode, batches, state = _collect_in_process(source, previous, full, report, progress, area)
            else:
                collector = source_class(source, report, progress)
                apply_http_limits(collector, source)
                if hasattr(collector, "read_store_context"):   # kinds that join on what other sources collected
                    with _STORE_LOCK:
                        collector.read_store_context(store)
                if getattr(source_class, "STAGES_ROWS", False):
                    writer = area.writer(source.name, _redact_row)
                    try:
                        mode, batches, state = collector.collect(previous, full, writer)
                    finally:
                        writer.close()
                else:
                    mode, batches, state = collector.collect(previous, full)
            _redact_details(batches)
            with _STORE_LOCK:
                result = commit_snapshot(store, source=source.name, kind=source.kind, platform=source.platform,
                                         mode=mode, started_at=started, finished_at=clock() if now else None,
                                         batches=batches, warnings=report.capped_warnings(), state=state,
                                         full_reason=full_reason)
        return SnapshotOutcome(source.name, True, result.snapshot_id, mode, report.elapsed, result.counts,
                               report.api_calls, report.capped_warnings())
    except Exception as e:  # one source failing must not stop the others
        if isinstance(e, CollectorProcessFailed):
            report.fail(e.summary)
            report.fail(e.frame)
        else:
            report.fail(f"{type(e).__name__}: {_one_line(e)}")
            report.fail(_last_frame(e))
        errors = report.capped_failures()
        snapshot_id = None
        try:
            with _STORE_LOCK:
                snapshot_id = record_failed_snapshot(store, source=source.name, kind=source.kind,
                                                     platform=source.platform, mode=mode, started_at=started,
                                                     errors=errors, warnings=report.capped_warnings())
        except Exception as store_error:
            errors.append(redact(f"could not record the failure in the store: {_one_line(store_error)}"))
        return SnapshotOutcome(source.name, False, snapshot_id, mode, report.elapsed, {}, report.api_calls,
                               report.capped_warnings(), errors)


def snapshot_all(config: Config, names: list[str] | None = None, *, full: bool = False,
                 progress: Callable[[str, str], None] | None = None,
                 now: Callable[[], datetime] | None = None) -> list[SnapshotOutcome]:
    """One snapshot per source, collected in parallel; outcomes in config order."""
    store = Store(config.store_path)
    sources = [config.source(n) for n in names] if names else list(config.sources)
    if not sources:
        return []
    with _STORE_LOCK:
        store.migrate_if_needed()   # the runner reads the store (previous state, last full pass) first
    finished = [threading.Event() for _ in sources]

    def run(i: int, source: SourceConfig) -> SnapshotOutcome:
        try:
            if hasattr(SOURCE_KINDS.get(source.kind), "read_store_context"):
                for earlier in finished[:i]:   # it joins on what the sources listed before it collected
                    earlier.wait()
            cb = (lambda msg: progress(source.name, msg)) if progress else None
            return snapshot_source(store, source, full=full, progress=cb, now=now)
        finally:
            finished[i].set()

    # Tasks start in submission order, so a source waiting for earlier ones never blocks them.
    with ThreadPoolExecutor(max_workers=min(len(sources), MAX_PARALLEL_SOURCES),
                            thread_name_prefix="waymark-source") as pool:
        futures = [pool.submit(run, i, s) for i, s in enumerate(sources)]
        return [f.result() for f in futures]


def full_pass_due(store: Store, source: SourceConfig, now: datetime) -> bool:
    """True when the source's last good full pass is older than `full_every_hours` (0: always). With no
    full pass at all the collector's own rule applies (no previous state: full)."""
    if source.full_every_hours == 0:
        return True
    try:
        last = last_full_passes(store, source.name)
    except StoreMissing:
        return False
    if last.empty:
        return False
    last_full_at = last["last_full_at"].iloc[0].to_pydatetime()
    if last_full_at.tzinfo is None:
        last_full_at = last_full_at.replace(tzinfo=timezone.utc)
    return (now - last_full_at).total_seconds() >= source.full_every_hours * 3600


# -- time limits ----------------------------------------------------------------------------------
def _option(source: SourceConfig, key: str, default: int) -> int:
    value = source.options.get(key)
    return int(value) if value is not None else default


def apply_http_limits(collector: Any, source: SourceConfig) -> None:
    """The Azure kinds' shared HTTP client gets the source's per-request timeout and retry deadline."""
    http = getattr(collector, "http", None)
    if isinstance(http, AzureHttp):
        http.timeout = _option(source, "http_timeout_seconds", AZURE_HTTP_TIMEOUT_SECONDS)
        http.retry_timeout = _option(source, "retry_timeout_seconds", AZURE_RETRY_TIMEOUT_SECONDS)


def runs_in_own_process(source: SourceConfig) -> bool:
    """Remote MLflow servers (http(s), databricks): the ones MLflow's HTTP env settings apply to."""
    uris = (source.tracking_uri or "", source.registry_uri or "")
    return source.kind == "mlflow" and any(u.startswith(("http://", "https://", "databricks")) for u in uris)


def mlflow_retries(timeout: float, retry_timeout: float) -> int:
    """The most retries whose worst case (each a full timeout plus its backoff; urllib3 waits 0, 2f,
    4f, ... before retries 1, 2, 3, ...) fits in `retry_timeout`, so one stalled request gives up after
    about timeout + retry_timeout."""
    retries = 0
    while retries < 10:   # MLflow's own limit (MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT default)
        n = retries + 1
        worst = n * (timeout + MLFLOW_BACKOFF_JITTER) + MLFLOW_BACKOFF_FACTOR * (2 ** n - 2)
        if worst > retry_timeout:
            break
        retries = n
    return retries


def mlflow_http_env(source: SourceConfig, environ: dict[str, str] | None = None) -> dict[str, str]:
    """MLflow's HTTP settings for one source: its config keys win, then the process env, then the
    defaults above."""
    environ = os.environ if environ is None else environ
    configured_timeout = source.options.get("http_timeout_seconds")
    configured_retry = source.options.get("retry_timeout_seconds")
    if configured_timeout is not None:
        timeout = int(configured_timeout)
    else:
        timeout = int(float(environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", MLFLOW_HTTP_TIMEOUT_SECONDS)))
    retry_timeout = int(configured_retry) if configured_retry is not None else MLFLOW_RETRY_TIMEOUT_SECONDS
    env = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout),
           "MLFLOW_DATABRICKS_ENDPOINT_HTTP_RETRY_TIMEOUT": str(retry_timeout)}
    if configured_retry is not None or "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in environ:
        env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES=str(mlflow_retries(timeout, retry_timeout)),
                   MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=str(MLFLOW_BACKOFF_FACTOR),
                   MLFLOW_HTTP_REQUEST_BACKOFF_JITTER=str(MLFLOW_BACKOFF_JITTER))
    return env


# -- MLflow sources in their own process ----------------------------------------------------------
class CollectorProcessFailed(RuntimeError):
    def __init__(self, summary: str, frame: str):
        super().__init__(summary)
        self.summary, self.frame = summary, frame


def _collect_in_process(source: SourceConfig, previous: Any, full: bool, report: SourceReport,
                        progress: Callable[[str], None] | None, area: StagingArea):
    """Collect in a spawned process that stages its rows straight into `area`'s file: only progress,
    the report and small references cross the pipe, so no copy of the rows reaches this process.
    A process that dies leaves a partial file, which the caller's `area` removes."""
    ctx = multiprocessing.get_context("spawn")   # fork would copy this process's threads and locks
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_process_main,
                       args=(send, source, previous, full, mlflow_http_env(source), str(area.path)),
                       name=f"waymark-{source.name}", daemon=True)
    with _no_main_script():
        proc.start()
    send.close()
    try:
        while True:
            try:
                message = receive.recv()
            except EOFError:
                proc.join(5)
                raise CollectorProcessFailed(f"collector process for {source.name} ended (exit code "
                                             f"{proc.exitcode}) without a result", "at runner") from None
            kind = message[0]
            if kind == "progress":
                if progress:
                    progress(message[1])
                continue
            child_report: SourceReport = message[-1]
            report.api_calls += child_report.api_calls
            for entity, n in child_report.fetched.items():
                report.count(entity, n)
            for w in child_report.capped_warnings():
                report.warn(w)
            if kind == "done":
                return message[1]
            raise CollectorProcessFailed(message[1], message[2])
    finally:
        receive.close()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


_MAIN_SWAP = threading.Lock()


@contextlib.contextmanager
def _no_main_script():
    """While a spawned process starts, hide the parent's main script from it. Spawn re-runs the
    parent's `__main__` file in the child (as `__mp_main__`), and inside Streamlit that module is the
    page being run: the collector's process would execute app.py again. The child needs nothing from
    it (its target lives in this module), so it gets a bare main module instead."""
    with _MAIN_SWAP:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _process_main(send, source: SourceConfig, previous: Any, full: bool, env: dict[str, str],
                  stage_path: str) -> None:
    os.environ.update(env)
    lock = threading.Lock()   # the registry side thread reports progress too

    def progress(message: str) -> None:
        with lock:
            send.send(("progress", message))

    report = SourceReport(source.name)
    try:
        # Staged rows are redacted here, where the bearer tokens this process obtained are known.
        writer = StageWriter(Path(stage_path), source.name, _redact_row)
        try:
            result = SOURCE_KINDS[source.kind](source, report, progress).collect(previous, full, writer)
        finally:
            writer.close()   # the parent opens the file once this process says "done"
        with lock:
            send.send(("done", result, report))
    except BaseException as e:
        with lock:
            send.send(("failed", redact(f"{type(e).__name__}: {_one_line(e)}"), _last_frame(e), report))
    finally:
        send.close()


def _redact_details(batches: dict[str, Any]) -> None:
    """Per-row error details (an unreadable MLmodel, a 403) are server text too: redacted like errors.
    Staged batches were redacted row by row as they were staged (`_redact_row`)."""
    for batch in batches.values():
        if isinstance(batch, EntityBatch):
            for row in batch.rows:
                _redact_row(row)


def _redact_row(row: dict[str, Any]) -> None:
    detail = row.get("detail")
    if isinstance(detail, str):
        row["detail"] = redact(detail)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:500]


def _last_frame(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return "at <unknown>"
    f = tb[-1]
    return f"at {f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}"
