"""Runs one snapshot per source: collect in memory, then commit in one short write (or record the failure).

A failing source is recorded as a failed snapshot and never touches its last good data; the other
sources still commit.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from collectors.config import Config, SourceConfig
from collectors.databricks_source import DatabricksSource
from collectors.azureml_source import AzureMlSource
from collectors.fabric_source import FabricSource
from collectors.mlflow_source import MlflowSource
from collectors.search_source import SearchSource
from collectors.report import SourceReport
from store.db import Store
from store.history import commit_snapshot, record_failed_snapshot

# One collector class per source kind. Each offers:
#   previous_state(store, source_name) -> state or None (None: the next pass is full)
#   Cls(config, report, progress).collect(previous, full) -> (mode, {table: EntityBatch}, state)
SOURCE_KINDS = {"mlflow": MlflowSource, "databricks": DatabricksSource}
SOURCE_KINDS.update(azureml=AzureMlSource, fabric=FabricSource, azuresearch=SearchSource)


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
        previous = None if full else source_class.previous_state(store, source.name)
        mode = "full" if previous is None else "incremental"
        collector = source_class(source, report, progress)
        if hasattr(collector, "read_store_context"):   # kinds that join on what other sources collected
            collector.read_store_context(store)
        mode, batches, state = collector.collect(previous, full)
        result = commit_snapshot(store, source=source.name, kind=source.kind, platform=source.platform, mode=mode,
                                 started_at=started, finished_at=clock() if now else None, batches=batches,
                                 warnings=report.capped_warnings(), state=state)
        return SnapshotOutcome(source.name, True, result.snapshot_id, mode, report.elapsed, result.counts,
                               report.api_calls, report.capped_warnings())
    except Exception as e:  # one source failing must not stop the others
        report.fail(f"{type(e).__name__}: {_one_line(e)}")
        report.fail(_last_frame(e))
        errors = report.capped_failures()
        snapshot_id = None
        try:
            snapshot_id = record_failed_snapshot(store, source=source.name, kind=source.kind,
                                                 platform=source.platform, mode=mode, started_at=started,
                                                 errors=errors, warnings=report.capped_warnings())
        except Exception as store_error:
            errors.append(f"could not record the failure in the store: {_one_line(store_error)}")
        return SnapshotOutcome(source.name, False, snapshot_id, mode, report.elapsed, {}, report.api_calls,
                               report.capped_warnings(), errors)


def snapshot_all(config: Config, names: list[str] | None = None, *, full: bool = False,
                 progress: Callable[[str, str], None] | None = None,
                 now: Callable[[], datetime] | None = None) -> list[SnapshotOutcome]:
    store = Store(config.store_path)
    sources = [config.source(n) for n in names] if names else list(config.sources)
    outcomes = []
    for source in sources:
        cb = (lambda msg, s=source.name: progress(s, msg)) if progress else None
        outcomes.append(snapshot_source(store, source, full=full, progress=cb, now=now))
    return outcomes


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:500]


def _last_frame(e: BaseException) -> str:
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return "at <unknown>"
    f = tb[-1]
    return f"at {f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}"
