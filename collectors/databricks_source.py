"""Databricks source: the workspace's ML estate through the real `databricks-sdk` (platform-apis.md §1).

Unity Catalog registered models, versions (aliases via `include_aliases`, run, run workspace,
source, status, model-version dependencies); the UC tables that matter (read by runs, model
versions, features and vector indexes, plus every table of the configured schemas) and their
upstream table lineage (one hop per `api_client.do` call, walked to `lineage_depth`, cached per
pass); Feature Engineering features and feature → model lineage; serving endpoints (list, then get
per endpoint: state, config update, served entities with traffic, inference table, tags) and their
Prometheus metrics export as time-stamped samples; vector search endpoints and indexes; and the
job runs that produced the MLflow runs other sources collected (`mlflow.databricks.jobRunID`).

Auth is Databricks unified auth (env vars, a profile, OAuth M2M, Azure CLI): the config file holds
at most `host`, `profile` and `auth_type`. Failure on one item (a 403 on a catalog, a 404 on an
endpoint's metrics, a table that vanished) is a warning plus a recorded gap, never a failed pass;
failure of a top-level listing fails the pass. A partial read never records a removal: when an item
read fails (a catalog's schemas, a schema's models, a model's versions, an endpoint's indexes, a
schema's tables or features, a table's lineage), every batch it feeds is scoped to the keys that
*were* read, plus the keys already in the store that no failed read covers (`_scope`).

Every pass re-reads the estate (it is small next to MLflow runs) except job runs, which are
immutable once terminated: an incremental pass reads only job runs it has not seen finished.
"""
from __future__ import annotations

from typing import Any

from collectors.databricks_client import _enum, _ms
from collectors.databricks_data import DataArea
from collectors.databricks_registry import RegistryArea
from collectors.databricks_serving import ServingArea
from store.entities import EntityBatch, Scope


class DatabricksSource(RegistryArea, ServingArea, DataArea):
    """One pass over the workspace: each API area reads its batches; job runs come last because
    they depend on the MLflow runs other sources collected."""

    # ------------------------------------------------------------------------------------------
    def collect(self, previous: dict[str, Any] | None, full: bool) -> tuple[str, dict[str, EntityBatch], dict[str, Any]]:
        mode = "full" if full or previous is None else "incremental"
        batches: dict[str, EntityBatch] = {}
        batches.update(self._models())
        batches.update(self._serving())
        batches.update(self._vector_search())
        for t in self.context.run_tables:
            self._want(t, "run_input")
        self._features()
        batches.update(self._tables())
        batches.update(self._feature_batches())
        batches.update(self._jobs(previous if mode == "incremental" else None))
        return mode, batches, {"collected_at_ms": self.now_ms}

    # -- Jobs ----------------------------------------------------------------------------------
    def _jobs(self, previous: dict[str, Any] | None) -> dict[str, EntityBatch]:
        ids = sorted(i for i in self.context.job_run_ids if str(i).strip().isdigit())
        skipped = set(previous.get("terminated_job_runs") or []) if previous else set()
        todo = [i for i in ids if i not in skipped]
        if todo:
            self.progress(f"job runs ({len(todo)})")
        rows = []
        for job_run_id, res in zip(todo, self._read_many(todo, lambda i: self._read(
                f"job run {i}", lambda: self.w.jobs.get_run(int(i)), warn_missing=True))):
            if not res.ok:
                rows.append({"job_run_id": job_run_id, "read_status": res.status, "detail": res.detail})
                continue
            r = res.value
            state, git = r.state, r.git_source
            rows.append({
                "job_run_id": job_run_id, "job_id": _ms(r.job_id), "run_name": r.run_name,
                "life_cycle_state": _enum(getattr(state, "life_cycle_state", None)),
                "result_state": _enum(getattr(state, "result_state", None)),
                "state_message": getattr(state, "state_message", None),
                "start_time": _ms(r.start_time), "end_time": _ms(r.end_time),
                "creator_user_name": r.creator_user_name, "run_page_url": r.run_page_url,
                "git_url": getattr(git, "git_url", None), "git_provider": _enum(getattr(git, "git_provider", None)),
                "git_branch": getattr(git, "git_branch", None), "git_tag": getattr(git, "git_tag", None),
                "git_commit": getattr(git, "git_commit", None),
                "git_used_commit": getattr(getattr(git, "git_snapshot", None), "used_commit", None),
                "read_status": "ok", "detail": None})
        self.report.count("job_runs", len(rows))
        scope = Scope.ALL if previous is None else Scope.partitions("job_run_id", todo)
        return {"job_runs": EntityBatch(rows, scope)}
