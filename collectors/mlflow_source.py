"""MLflow source: experiments, runs, dataset inputs, LoggedModels, registered models, versions,
aliases and each version's `MLmodel` origin, from any tracking/registry URI (sqlite, file, http
server, `databricks` + `databricks-uc`, Fabric's MLflow endpoint).

Incremental after the first pass: new runs by `attributes.start_time` watermark (minus a
look-back bounded by the measured clock skew, see `lookback_ms`), unfinished runs re-polled by id,
deleted runs re-read; registry listed in full but
versions that did not change are not re-read, and `MLmodel` files are read once per version
(versions are immutable). A full pass (`--full`, or no previous good snapshot) re-reads everything
and records removals. Rows are staged on disk as each page arrives (store/staging.py): a full pass
holds one page of runs in memory, not the workspace. The registry's half is collectors/mlflow_registry.py.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from collectors.config import SourceConfig
from collectors.mlflow_access import bearer_token, require_existing_sqlite
from collectors.mlflow_records import input_records, run_record, tags_dict
from collectors.mlflow_registry import RegistryReading
from collectors.paging import iter_items
from collectors.report import SourceReport
from store.db import Store, StoreMissing
from store.entities import Scope, StagedBatch
from store.staging import StageWriter

RUN_PAGE_SIZE = int(os.environ.get("WAYMARK_RUN_PAGE_SIZE", "1000"))
EXPERIMENT_CHUNK = 50      # experiment ids per runs/search call
RUN_ID_CHUNK = 100         # ids per `run_id IN (...)` re-poll
UNFINISHED = ("RUNNING", "SCHEDULED")
# The incremental look-back is the clock skew measured so far plus this margin, and never more than the
# source's `lookback_seconds`. A fixed hour re-read every run started in the last hour: during a sweep
# (5,000 runs in 83 min) an incremental pass cost 86% of a full one (issue 15).
SKEW_MARGIN_MS = 300_000


@dataclass
class PreviousState:
    """What the store already knows about this source (read before collecting)."""
    run_watermark_ms: int | None
    unfinished_run_ids: list[str]
    versions: dict[tuple[str, str], dict[str, Any]]   # (name, version) -> stored row (current)
    origins_done: set[tuple[str, str]]               # versions whose MLmodel was read or is known missing
    skew_ms: int = 0                # clock skew measured by earlier passes (see MlflowSource.lookback_ms)
    pass_started_ms: int | None = None   # collector clock when the previous pass started
    recent_run_ids: frozenset[str] = frozenset()   # stored runs started within the look-back window


class MlflowSource(RegistryReading):
    STAGES_ROWS = True   # collect() stages its rows in the StageWriter the runner hands it
    def __init__(self, config: SourceConfig, report: SourceReport,
                 progress: Callable[[str], None] | None = None):
        self.config = config
        self.report = report
        self.progress = progress or (lambda _msg: None)
        self._client = None
        self._calls_lock = threading.Lock()   # origins are read from a thread pool

    @staticmethod
    def previous_state(store: Store, source: str) -> PreviousState | None:
        """What the last good snapshot of `source` left, for an incremental pass; None means full."""
        try:
            with store.reader() as con:
                snap = con.execute("""SELECT state FROM snapshots WHERE source = ? AND status = 'ok'
                                      ORDER BY snapshot_id DESC LIMIT 1""", [source]).fetchall()
                snap = snap[0] if snap else None
                if snap is None:
                    return None
                state = json.loads(snap[0]) if snap[0] else {}
                watermark, skew = state.get("run_watermark_ms"), int(state.get("run_skew_ms") or 0)
                recent = frozenset()
                if watermark:
                    # Lets this pass tell a late-clock run (new, yet started before the watermark) from
                    # one already stored: that is how clock skew is measured.
                    recent = frozenset(r[0] for r in con.execute(
                        """SELECT run_id FROM runs WHERE source = ? AND valid_to IS NULL AND start_time >= ?""",
                        [source, int(watermark) - skew - SKEW_MARGIN_MS]).fetchall())
                unfinished = [r[0] for r in con.execute(
                    """SELECT run_id FROM runs WHERE source = ? AND valid_to IS NULL
                       AND status IN ('RUNNING', 'SCHEDULED') AND lifecycle_stage = 'active'""", [source]).fetchall()]
                versions = {}
                for name, version, updated, status, tags, model_id, created in con.execute(
                        """SELECT name, version, last_updated_time, status, tags, model_id, creation_time
                           FROM model_versions WHERE source = ? AND valid_to IS NULL""", [source]).fetchall():
                    versions[(name, version)] = {"last_updated_time": updated, "status": status,
                                                 "tags": json.loads(tags) if tags else {}, "model_id": model_id,
                                                 "creation_time": created}
                origins = {(n, v) for n, v in con.execute(
                    """SELECT name, version FROM model_origins WHERE source = ? AND valid_to IS NULL
                       AND read_status IN ('ok', 'missing')""", [source]).fetchall()}
        except StoreMissing:
            return None
        return PreviousState(state.get("run_watermark_ms"), unfinished, versions, origins, skew,
                             state.get("pass_started_ms"), recent)

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            tracking, registry = self.config.tracking_uri, self.config.effective_registry_uri
            for uri in {tracking, registry}:
                require_existing_sqlite(uri)
            self._client = MlflowClient(tracking_uri=tracking, registry_uri=registry)
        return self._client

    def _call(self, fn, *args, **kwargs):
        with self._calls_lock:
            self.report.api_calls += 1
        return fn(*args, **kwargs)

    # ------------------------------------------------------------------------------------------
    def collect(self, previous: PreviousState | None, full: bool,
                stage: StageWriter) -> tuple[str, dict[str, StagedBatch], dict[str, Any]]:
        """Stage every row in `stage` as its page arrives; return (mode, batches, state for the next pass).
        Runs (and their inputs) are never all in memory: a full pass of 100k runs held 1.7 GB (issue 15)."""
        mode = "full" if full or previous is None or previous.run_watermark_ms is None else "incremental"
        pass_started_ms = int(time.time() * 1000)
        self._skew_seen_ms = 0
        with bearer_token(self.config.token_scope):
            experiments = self._experiments()
            exp_ids = [e["experiment_id"] for e in experiments]
            # The registry (with its MLmodel reads) uses other endpoints than runs/search, so it is read on a
            # side thread while the runs are paged: a runs page is mostly server time with the client idle
            # (bench/collect_mlflow.py, 20k runs: the registry's ~6 s disappear from a full pass).
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="waymark-registry") as side:
                registry = side.submit(self._registry, previous, stage)
                latest_start, run_scope = self._runs(exp_ids, previous if mode == "incremental" else None, stage)
                logged = self._logged_models(exp_ids, stage)
                registry.result()
        watermark = latest_start
        if previous and previous.run_watermark_ms:
            watermark = max(watermark, previous.run_watermark_ms)
        # A client clock ahead of the collector's moves the watermark past runs that start later on a
        # correct clock: that lead is skew too.
        skew = max(self._skew_seen_ms, watermark - pass_started_ms,
                   previous.skew_ms if previous and mode == "incremental" else 0)
        stage.add("experiments", experiments)
        batches = {
            "experiments": stage.batch("experiments", Scope.ALL),
            # A run read twice (paging drift) keeps its last copy, inputs included, as a dict by run id did.
            "runs": stage.batch("runs", Scope.ALL if mode == "full" else Scope.NONE, replace_by="run_id"),
            "run_inputs": stage.batch("run_inputs", run_scope, replace_by="run_id"),
            "logged_models": stage.batch("logged_models", Scope.ALL) if logged else None,
            "registered_models": stage.batch("registered_models", Scope.ALL),
            "model_versions": stage.batch("model_versions", Scope.ALL),
            "model_aliases": stage.batch("model_aliases", Scope.ALL),
            # A full pass re-reads every version's MLmodel, so its origins are complete (removals recorded).
            "model_origins": stage.batch("model_origins", Scope.ALL if previous is None and self.config.read_model_origins
                                         else Scope.NONE),
        }
        state = {"run_watermark_ms": watermark or None, "run_skew_ms": max(0, skew), "pass_started_ms": pass_started_ms}
        return mode, {k: v for k, v in batches.items() if v is not None}, state

    # -- tracking ------------------------------------------------------------------------------
    def _experiments(self) -> list[dict[str, Any]]:
        from mlflow.entities import ViewType

        self.progress("experiments")
        rows = []
        wanted = set(self.config.experiments)
        for e in iter_items(lambda tok: self._call(self.client.search_experiments, view_type=ViewType.ALL,
                                                   max_results=1000, page_token=tok)):
            if wanted and e.name not in wanted:
                continue
            rows.append({
                "experiment_id": e.experiment_id, "name": e.name, "lifecycle_stage": e.lifecycle_stage,
                "artifact_location": e.artifact_location, "creation_time": e.creation_time,
                "last_update_time": e.last_update_time, "tags": tags_dict(e.tags) or {},
            })
        if wanted and len(rows) < len(wanted):
            missing = sorted(wanted - {r["name"] for r in rows})
            self.report.warn(f"configured experiment(s) not found: {', '.join(missing)}")
        self.report.count("experiments", len(rows))
        return rows

    def _search_runs(self, exp_ids: list[str], filter_string: str, view) -> Iterator[Any]:
        for i in range(0, len(exp_ids), EXPERIMENT_CHUNK):
            chunk = exp_ids[i:i + EXPERIMENT_CHUNK]
            yield from iter_items(
                lambda tok, chunk=chunk: self._call(self.client.search_runs, chunk, filter_string=filter_string,
                                                    run_view_type=view, max_results=RUN_PAGE_SIZE, page_token=tok),
                on_page=lambda n: self._runs_progress(n), prefetch=True)

    def _runs_progress(self, n: int) -> None:
        self.report.count("runs", n)
        self.progress(f"runs: {self.report.fetched.get('runs', 0):,} read")

    def _runs(self, exp_ids: list[str], previous: PreviousState | None, stage: StageWriter) -> tuple[int, Scope]:
        """Stage the runs and their inputs a page at a time; return (latest start time seen, the inputs'
        scope). Only an incremental pass keeps the ids it read: they are the partitions its inputs are
        complete for, and a deleted run must not replace a copy read earlier in the pass."""
        from mlflow.entities import ViewType

        page: list[dict[str, Any]] = []
        inputs: list[dict[str, Any]] = []
        page_groups: list[int] = []
        input_groups: list[int] = []
        found: set[str] | None = set() if previous is not None else None
        latest_start = 0
        group = 0
        n_inputs = 0

        def flush() -> None:
            stage.add("runs", page, page_groups)
            stage.add("run_inputs", inputs, input_groups)
            for buffer in (page, inputs, page_groups, input_groups):
                buffer.clear()

        def keep(run: Any, replace: bool = True) -> None:
            nonlocal group, latest_start, n_inputs
            run_id = run.info.run_id
            if found is not None:
                if not replace and run_id in found:
                    return
                found.add(run_id)
            group += 1   # a run's rows are one group: a later copy of the run replaces them all
            page.append(run_record(run, self.config.git_sha_param))
            page_groups.append(group)
            rows = input_records(run, self.report)
            inputs.extend(rows)
            input_groups.extend([group] * len(rows))
            n_inputs += len(rows)
            latest_start = max(latest_start, run.info.start_time or 0)
            if len(page) >= RUN_PAGE_SIZE:
                flush()

        if not exp_ids:
            flush()
            return 0, Scope.ALL
        if previous is None:
            for run in self._search_runs(exp_ids, "", ViewType.ALL):
                keep(run)
        else:
            watermark = previous.run_watermark_ms
            since = watermark - self.lookback_ms(previous)
            for run in self._search_runs(exp_ids, f"attributes.start_time >= {int(since)}", ViewType.ALL):
                keep(run)
                start = run.info.start_time or 0
                if start < watermark and run.info.run_id not in previous.recent_run_ids:
                    self._skew_seen_ms = max(self._skew_seen_ms, watermark - start)   # a late-clock run
            pending = [r for r in previous.unfinished_run_ids if r not in found]
            for i in range(0, len(pending), RUN_ID_CHUNK):
                ids = ", ".join(f"'{r}'" for r in pending[i:i + RUN_ID_CHUNK] if r.replace("-", "").isalnum())
                if ids:
                    for run in self._search_runs(exp_ids, f"attributes.run_id IN ({ids})", ViewType.ALL):
                        keep(run)
                        # Finished, by its own clock, before the previous pass began: that clock lags.
                        end = run.info.end_time
                        if end and previous.pass_started_ms and run.info.status not in UNFINISHED:
                            self._skew_seen_ms = max(self._skew_seen_ms, previous.pass_started_ms - end)
            # Deletions leave start_time untouched, so deleted runs are looked up on their own.
            for run in self._search_runs(exp_ids, "", ViewType.DELETED_ONLY):
                keep(run, replace=False)
        flush()
        self.report.count("dataset_inputs", n_inputs)
        scope = Scope.ALL if found is None else Scope.partitions("run_id", sorted(found))
        return latest_start, scope

    def lookback_ms(self, previous: PreviousState) -> int:
        """How far before the watermark an incremental pass looks for runs that started late.

        Runs carry their logging client's clock, so a run created after the last pass can start before
        its watermark by up to the clock skew. The look-back is the skew measured so far (late-clock runs
        found behind the watermark, runs that ended before the previous pass began, clocks ahead of the
        collector's) plus a margin, capped by `lookback_seconds`; runs later than that are found by the
        next full pass (`full_every_hours`)."""
        return min(self.config.lookback_seconds * 1000, max(0, previous.skew_ms) + SKEW_MARGIN_MS)

    def _logged_models(self, exp_ids: list[str], stage: StageWriter) -> bool:
        """Stage the LoggedModels page by page; False when the server has no LoggedModel API."""
        stage.add("logged_models", [])
        if not exp_ids:
            return True
        self.progress("logged models")
        rows: list[dict[str, Any]] = []
        total = 0
        try:
            for i in range(0, len(exp_ids), EXPERIMENT_CHUNK):
                chunk = exp_ids[i:i + EXPERIMENT_CHUNK]
                for m in iter_items(lambda tok, chunk=chunk: self._call(
                        self.client.search_logged_models, chunk, max_results=100, page_token=tok)):
                    rows.append({
                        "model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name,
                        "source_run_id": m.source_run_id, "artifact_location": m.artifact_location,
                        "status": str(m.status) if m.status is not None else None, "model_type": m.model_type,
                        "creation_time": m.creation_timestamp, "tags": tags_dict(m.tags) or {},
                        "params": dict(m.params or {}), "metrics": {x.key: x.value for x in (m.metrics or [])},
                    })
                    if len(rows) >= RUN_PAGE_SIZE:
                        stage.add("logged_models", rows)
                        total += len(rows)
                        rows = []
        except Exception as e:  # older servers (MLflow 2.x, Fabric today) have no LoggedModel API
            self.report.warn(f"logged models not listed ({type(e).__name__}: {str(e)[:200]}); "
                             "keeping the previous list")
            stage.discard("logged_models")
            return False
        stage.add("logged_models", rows)
        self.report.count("logged_models", total + len(rows))
        return True
