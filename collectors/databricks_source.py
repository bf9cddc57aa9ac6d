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

import json
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from collectors.config import SourceConfig
from collectors.mlflow_source import parse_models_uri
from collectors.report import SourceReport
from store.db import Store, StoreMissing
from store.history import EntityBatch, Scope

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


class DatabricksSource:
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

    # -- Unity Catalog models ------------------------------------------------------------------
    def _list_models(self) -> tuple[list[Any], set[str]]:
        """The registered models in scope, and the catalogs / `catalog.schema` prefixes that could
        not be listed (their models are left as they were in the store).

        `registered_models.list` takes a catalog and a schema together or neither (SDK docstring;
        the service answers a catalog alone with 400 INVALID_PARAMETER_VALUE), so a configured
        catalog is listed schema by schema."""
        catalogs = list(self.opts.get("catalogs") or [])
        schemas = [tuple(s.split(".", 1)) for s in (self.opts.get("schemas") or [])]
        if not catalogs and not schemas:
            return self._retry(lambda: list(self.w.registered_models.list(max_results=MODELS_PAGE))), set()
        unread: set[str] = set()
        pairs: list[tuple[str, str]] = []
        for catalog in catalogs:
            res = self._read(f"catalog {catalog} schemas (its models are not in this snapshot)",
                             lambda c=catalog: list(self.w.schemas.list(catalog_name=c, max_results=0)))
            if not res.ok:
                unread.add(catalog)
                continue
            pairs += [(catalog, s.name) for s in res.value if s.name and s.name != "information_schema"]
        pairs += [(c, s) for c, s in schemas if c not in catalogs]
        found: dict[str, Any] = {}
        for catalog, schema in dict.fromkeys(pairs):
            res = self._read(f"models in {catalog}.{schema} (not in this snapshot)",
                             lambda c=catalog, s=schema: list(self.w.registered_models.list(
                                 catalog_name=c, schema_name=s, max_results=MODELS_PAGE_SCHEMA)))
            if not res.ok:
                unread.add(f"{catalog}.{schema}")
                continue
            for m in res.value:
                found[m.full_name] = m
        return list(found.values()), unread

    def _models(self) -> dict[str, EntityBatch]:
        self.progress("Unity Catalog models")
        listed, unread_areas = self._list_models()
        listed = [m for m in listed if getattr(m, "full_name", None)]
        self.report.count("registered_models", len(listed))

        def detail(m) -> ReadResult:
            got = self._read(f"model {m.full_name}", lambda: self.w.registered_models.get(m.full_name, include_aliases=True))
            versions = self._read(f"model {m.full_name} versions",
                                  lambda: list(self.w.model_versions.list(m.full_name, max_results=1000)))
            return ReadResult("ok", (m, got, versions))

        models, uc_models, versions, uc_versions, aliases, deps = [], [], [], [], [], []
        no_versions: set[str] = set()   # models whose versions list failed
        no_aliases: set[str] = set()    # models whose details (and so aliases) failed
        for res in self._read_many(listed, detail):
            m, got, vres = res.value
            if not vres.ok:
                no_versions.add(m.full_name)
            if not got.ok:
                no_aliases.add(m.full_name)
            info = got.value if got.ok else m
            models.append({"name": m.full_name, "description": info.comment, "creation_time": _ms(info.created_at),
                           "last_updated_time": _ms(info.updated_at), "tags": {}})
            uc_models.append({"full_name": m.full_name, "catalog_name": info.catalog_name,
                              "schema_name": info.schema_name, "owner": info.owner,
                              "storage_location": info.storage_location, "created_by": info.created_by,
                              "updated_by": info.updated_by, "read_status": got.status, "detail": got.detail})
            by_version: dict[str, list[str]] = {}
            for a in (info.aliases or []) if got.ok else []:
                if a.alias_name is None or a.version_num is None:
                    continue
                aliases.append({"name": m.full_name, "alias": a.alias_name, "version": str(a.version_num)})
                by_version.setdefault(str(a.version_num), []).append(a.alias_name)
            for v in (vres.value or []) if vres.ok else []:
                if v.version is None:
                    continue
                version = str(v.version)
                if got.ok:   # a version row carries its aliases: without the model's details it waits
                    versions.append({
                        "name": m.full_name, "version": version, "run_id": v.run_id or None, "source_uri": v.source,
                        "model_id": parse_models_uri(v.source), "status": _enum(v.status), "stage": None,
                        "user_id": v.created_by, "description": v.comment, "creation_time": _ms(v.created_at),
                        "last_updated_time": _ms(v.updated_at), "tags": {},
                        "aliases": sorted(by_version.get(version, []))})
                uc_versions.append({"name": m.full_name, "version": version, "run_workspace_id": _ms(v.run_workspace_id),
                                    "storage_location": v.storage_location, "created_by": v.created_by,
                                    "updated_by": v.updated_by})
                for d in ((v.model_version_dependencies.dependencies or [])
                          if v.model_version_dependencies else []):
                    dep_type, dep_name = _dependency(d)
                    if dep_name:
                        deps.append({"name": m.full_name, "version": version, "dependency_type": dep_type,
                                     "dependency_name": dep_name})
                        if dep_type == "table":
                            self._want(dep_name, "model_dependency")
        self.report.count("model_versions", len(versions))
        self.report.count("aliases", len(aliases))

        def in_unread_area(name: str) -> bool:
            return any(name.startswith(area + ".") for area in unread_areas)

        def unread_if(failed: set[str]) -> Callable[[str], bool] | None:
            if not unread_areas and not failed:
                return None
            return lambda name: in_unread_area(name) or name in failed

        names = [m.full_name for m in listed]
        model_scope = unread_if(set())
        version_scope = unread_if(no_versions)
        version_row_scope = unread_if(no_versions | no_aliases)
        alias_scope = unread_if(no_aliases)
        return {"registered_models": EntityBatch(models, self._scope("registered_models", "name", names, model_scope)),
                "uc_models": EntityBatch(uc_models, self._scope("uc_models", "full_name", names, model_scope)),
                "model_versions": EntityBatch(versions, self._scope("model_versions", "name", names, version_row_scope)),
                "uc_model_versions": EntityBatch(uc_versions, self._scope("uc_model_versions", "name", names,
                                                                          version_scope)),
                "model_aliases": EntityBatch(aliases, self._scope("model_aliases", "name", names, alias_scope)),
                "model_version_dependencies": EntityBatch(deps, self._scope("model_version_dependencies", "name",
                                                                            names, version_scope))}

    # -- Model Serving -------------------------------------------------------------------------
    def _serving(self) -> dict[str, EntityBatch]:
        from databricks.sdk.errors import PermissionDenied

        self.progress("serving endpoints")
        try:
            listed = self._retry(lambda: list(self.w.serving_endpoints.list()))   # one call, no paging
        except PermissionDenied as e:
            self.report.warn(f"serving endpoints: permission denied (403), not collected: {_short(e)}")
            return {}
        listed = [e for e in listed if getattr(e, "name", None)]
        self.report.count("serving_endpoints", len(listed))
        want_metrics = self.opts.get("metrics", True)

        def detail(e) -> ReadResult:
            got = self._read(f"serving endpoint {e.name}", lambda: self.w.serving_endpoints.get(e.name))
            metrics = (self._read(f"serving endpoint {e.name} metrics",
                                  lambda: self.w.serving_endpoints.export_metrics(e.name).contents.read())
                       if want_metrics else None)
            return ReadResult("ok", (e, got, metrics))

        endpoints, entities, samples = [], [], []
        no_detail: set[str] = set()
        known = self.context.current.get(("served_entities", "endpoint"), set())
        for res in self._read_many(listed, detail):
            e, got, metrics = res.value
            endpoints.append(self._endpoint_row(e, got))
            if not got.ok:
                no_detail.add(e.name)
            # Without the details the list item has no traffic, sizes or states: a known endpoint
            # keeps its last good served entities rather than losing them to a summary.
            if got.ok or e.name not in known:
                entities.extend(self._entity_rows(e, got))
            if metrics is not None and metrics.ok:
                samples.extend(self._metric_rows(e.name, metrics.value))
        self.report.count("endpoint_metric_samples", len(samples))
        names = [e.name for e in listed]
        return {"serving_endpoints": EntityBatch(endpoints, Scope.ALL),
                "served_entities": EntityBatch(entities, self._scope(
                    "served_entities", "endpoint", names, no_detail.__contains__ if no_detail else None)),
                # Samples are append-only: every pass adds its own, nothing is closed.
                "endpoint_metrics": EntityBatch(samples, Scope.NONE)}

    def _endpoint_row(self, e, got: ReadResult) -> dict[str, Any]:
        d = got.value if got.ok else e
        state = getattr(d, "state", None)
        cfg = getattr(d, "config", None)
        pending = getattr(d, "pending_config", None) if got.ok else None
        inference = None
        gw = getattr(getattr(d, "ai_gateway", None), "inference_table_config", None)
        capture = getattr(cfg, "auto_capture_config", None) if got.ok else None
        for kind, c in (("ai_gateway", gw), ("auto_capture", capture)):
            if c is not None and (c.catalog_name or c.table_name_prefix):
                inference = {"kind": kind, "catalog_name": c.catalog_name, "schema_name": c.schema_name,
                             "table_name_prefix": c.table_name_prefix, "enabled": c.enabled}
                break
        return {
            "name": e.name, "endpoint_id": getattr(d, "id", None),
            "ready": _enum(getattr(state, "ready", None)), "config_update": _enum(getattr(state, "config_update", None)),
            "config_version": _ms(getattr(cfg, "config_version", None)) if got.ok else None,
            "pending_config_version": _ms(getattr(pending, "config_version", None)),
            "creator": getattr(d, "creator", None), "creation_timestamp": _ms(getattr(d, "creation_timestamp", None)),
            "last_updated_timestamp": _ms(getattr(d, "last_updated_timestamp", None)), "task": getattr(d, "task", None),
            "tags": {t.key: t.value for t in (getattr(d, "tags", None) or []) if t.key},
            "inference_table": inference, "endpoint_url": getattr(d, "endpoint_url", None) if got.ok else None,
            "read_status": got.status, "detail": got.detail,
        }

    def _entity_rows(self, e, got: ReadResult) -> list[dict[str, Any]]:
        rows = []
        configs = [("active", getattr(got.value if got.ok else e, "config", None))]
        if got.ok:
            configs.append(("pending", getattr(got.value, "pending_config", None)))
        for label, cfg in configs:
            if cfg is None:
                continue
            traffic = {}
            for r in (getattr(getattr(cfg, "traffic_config", None), "routes", None) or []):
                key = r.served_entity_name or r.served_model_name
                if key:
                    traffic[key] = r.traffic_percentage
            has_routes = bool(traffic)
            for se in (getattr(cfg, "served_entities", None) or []):
                if not se.name:
                    continue
                st = getattr(se, "state", None)
                external = getattr(se, "external_model", None) or getattr(se, "foundation_model", None)
                rows.append({
                    "endpoint": e.name, "config": label, "served_entity_name": se.name,
                    "entity_name": se.entity_name or getattr(external, "name", None),
                    "entity_version": str(se.entity_version) if se.entity_version is not None else None,
                    "workload_size": getattr(se, "workload_size", None), "workload_type": _enum(getattr(se, "workload_type", None)),
                    "scale_to_zero_enabled": getattr(se, "scale_to_zero_enabled", None),
                    "deployment_state": _enum(getattr(st, "deployment", None)),
                    "deployment_state_message": getattr(st, "deployment_state_message", None),
                    # No routes at all on a detailed config with one entity means it takes everything.
                    "traffic_pct": traffic.get(se.name) if has_routes else None,
                    "external": external is not None and not se.entity_name,
                })
        return rows

    def _metric_rows(self, endpoint: str, payload: bytes | str) -> list[dict[str, Any]]:
        from prometheus_client.parser import text_string_to_metric_families

        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
        rows = []
        try:
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    rows.append({"endpoint": endpoint, "metric": s.name,
                                 "labels": json.dumps(dict(sorted(s.labels.items())), ensure_ascii=False),
                                 "sampled_at": int(s.timestamp * 1000) if s.timestamp else self.now_ms,
                                 "value": float(s.value)})
        except Exception as e:  # a malformed export is a gap, not a failed pass
            self.report.warn(f"serving endpoint {endpoint} metrics: not Prometheus text ({type(e).__name__}: {_short(e)})")
        return rows

    # -- Vector Search -------------------------------------------------------------------------
    def _vector_search(self) -> dict[str, EntityBatch]:
        from databricks.sdk.errors import NotFound, PermissionDenied

        self.progress("vector search")
        try:
            endpoints = self._retry(lambda: list(self.w.vector_search_endpoints.list_endpoints()))
        except (PermissionDenied, NotFound) as e:   # workspace without vector search, or no access
            self.report.warn(f"vector search endpoints: not collected ({type(e).__name__}: {_short(e)})")
            return {}
        ep_rows, minis, unlisted = [], [], set()
        for ep in endpoints:
            if not ep.name:
                continue
            st = getattr(ep, "endpoint_status", None)
            ep_rows.append({"name": ep.name, "endpoint_id": ep.id, "endpoint_type": _enum(ep.endpoint_type),
                            "endpoint_status": _enum(getattr(st, "state", None)), "num_indexes": ep.num_indexes,
                            "creator": ep.creator, "creation_timestamp": _ms(ep.creation_timestamp),
                            "last_updated_timestamp": _ms(ep.last_updated_timestamp)})
            res = self._read(f"vector search endpoint {ep.name} indexes",
                             lambda n=ep.name: list(self.w.vector_search_indexes.list_indexes(n)))
            if not res.ok:
                unlisted.add(ep.name)
            minis.extend(res.value or [])
        minis = [i for i in minis if i.name]
        details = self._read_many(minis, lambda i: self._read(f"vector index {i.name}",
                                                              lambda: self.w.vector_search_indexes.get_index(i.name)))
        rows = []
        for mini, res in zip(minis, details):
            idx = res.value if res.ok else mini
            spec = getattr(idx, "delta_sync_index_spec", None) if res.ok else None
            status = getattr(idx, "status", None) if res.ok else None
            columns = [{"name": c.name, "embedding_model_endpoint_name": c.embedding_model_endpoint_name}
                       for c in (getattr(spec, "embedding_source_columns", None) or [])]
            source_table = getattr(spec, "source_table", None)
            self._want(source_table, "vector_index")
            rows.append({"name": mini.name, "endpoint_name": mini.endpoint_name, "index_type": _enum(idx.index_type),
                         "primary_key": idx.primary_key, "source_table": source_table,
                         "embedding_source_columns": columns,
                         "embedding_model_endpoints": sorted({c["embedding_model_endpoint_name"] for c in columns
                                                              if c["embedding_model_endpoint_name"]}),
                         "pipeline_id": getattr(spec, "pipeline_id", None),
                         "ready": getattr(status, "ready", None), "indexed_row_count": getattr(status, "indexed_row_count", None),
                         "status_message": getattr(status, "message", None), "creator": idx.creator,
                         "read_status": res.status, "detail": res.detail})
        self.report.count("vector_indexes", len(rows))
        return {"vector_search_endpoints": EntityBatch(ep_rows, Scope.ALL),
                "vector_indexes": EntityBatch(rows, self._scope("vector_indexes", "endpoint_name",
                                                                [r["name"] for r in ep_rows],
                                                                unlisted.__contains__ if unlisted else None))}

    # -- Features ------------------------------------------------------------------------------
    def _feature_schemas(self) -> list[tuple[str, str]]:
        """Configured schemas, plus every schema holding a table a run, model or index reads."""
        out = {tuple(s.split(".", 1)) for s in (self.opts.get("schemas") or [])}
        out |= {tuple(t.split(".")[:2]) for t in self._table_reasons}
        return sorted(out)  # type: ignore[arg-type]

    def _features(self) -> None:
        """Declarative features (Feature Engineering API) of the schemas that matter. Their rows and
        lineage are assembled with the classic feature tables' in `_feature_batches`, after the
        tables are read."""
        self.progress("features")
        features = []
        failed_schemas: set[str] = set()
        for catalog, schema in self._feature_schemas():
            res = self._read(f"features in {catalog}.{schema}",
                             lambda c=catalog, s=schema: list(self.w.feature_engineering.list_features(c, s, page_size=1000)),
                             warn_missing=False)
            if res.status == "not_found":
                continue   # schema gone, or a workspace without the Feature Engineering API
            if not res.ok:
                failed_schemas.add(f"{catalog}.{schema}")
            features.extend(res.value or [])
        rows = []
        for f in features:
            if not f.full_name:
                continue
            src = getattr(getattr(f, "source", None), "delta_table_source", None)
            source_table = getattr(src, "full_name", None)
            self._want(source_table, "feature_source")
            name = f.name or f.full_name.split(".")[-1]
            rows.append({"full_name": f.full_name, "catalog_name": f.catalog_name, "schema_name": f.schema_name,
                         "name": name, "source_table": source_table,
                         "entity_columns": list(getattr(src, "entity_columns", None) or []),
                         "timeseries_column": getattr(src, "timeseries_column", None)
                                              or getattr(getattr(f, "timeseries_column", None), "name", None),
                         "inputs": list(f.inputs or []),
                         "function": f.function.as_dict() if f.function is not None else None,
                         "time_window": f.time_window.as_dict() if f.time_window is not None else None,
                         "description": f.description, "created_by": getattr(f, "created_by", None)})
        self._declarative = (rows, failed_schemas)

    def _classic_features(self) -> list[dict[str, Any]]:
        """Classic UC feature tables among the tables read: a feature table is a Delta table with a
        primary key constraint, and each of its other columns (not a key, not the timeseries
        column) is a feature."""
        rows = []
        for name, t in sorted(self._table_infos.items()):
            pk = next((c.primary_key_constraint for c in (getattr(t, "table_constraints", None) or [])
                       if c.primary_key_constraint is not None), None)
            if pk is None:
                continue
            keys = list(pk.child_columns or [])
            timeseries = list(getattr(pk, "timeseries_columns", None) or [])
            for col in getattr(t, "columns", None) or []:
                if not col.name or col.name in keys or col.name in timeseries:
                    continue
                rows.append({"full_name": f"{name}.{col.name}", "catalog_name": t.catalog_name,
                             "schema_name": t.schema_name, "name": col.name, "source_table": name,
                             "entity_columns": keys, "timeseries_column": timeseries[0] if timeseries else None,
                             "inputs": [col.name], "function": None, "time_window": None,
                             "description": col.comment, "created_by": None, "_feature_table": name})
        return rows

    def _feature_lineage_calls(self, declarative: list[dict[str, Any]],
                               classic: list[dict[str, Any]]) -> tuple[list[tuple[str, str, str, str | None]], set[str]]:
        """(feature, feature table, feature name, source table) per lineage call, and the features
        whose materializations could not be listed. `get_feature_lineage` takes a *feature table's*
        full name: a classic feature's own table, or the table a declarative feature is
        materialized into (`list_materialized_features`); a feature never materialized has none."""
        calls = [(r["full_name"], r["_feature_table"], r["name"], r["source_table"]) for r in classic]
        unread: set[str] = set()
        results = self._read_many(declarative, lambda r: self._read(
            f"feature {r['full_name']} materializations",
            lambda: list(self.w.feature_engineering.list_materialized_features(feature_name=r["full_name"])),
            warn_missing=False))
        for r, res in zip(declarative, results):
            if res.status not in ("ok", "not_found"):
                unread.add(r["full_name"])
            for mf in res.value or []:
                if getattr(mf, "table_name", None):
                    calls.append((r["full_name"], mf.table_name, r["name"], r["source_table"]))
        return list(dict.fromkeys(calls)), unread

    def _feature_batches(self) -> dict[str, EntityBatch]:
        declarative, failed_schemas = self._declarative
        classic = self._classic_features()
        calls, no_lineage = self._feature_lineage_calls(declarative, classic)
        links = []
        for (feature, table, name, source), res in zip(calls, self._read_many(calls, lambda c: self._read(
                f"feature {c[0]} lineage", lambda: self.w.materialized_features.get_feature_lineage(c[1], c[2]),
                warn_missing=False))):
            if res.status not in ("ok", "not_found"):   # a 404 is "no lineage"; anything else is unknown
                no_lineage.add(feature)
            if not res.ok or res.value is None:
                continue
            lin = res.value
            for m in lin.models or []:
                if m.name:
                    links.append({"feature": feature, "target_kind": "model", "target_name": m.name,
                                  "target_version": str(m.version) if m.version is not None else "",
                                  "source_table": source})
            for s in lin.feature_specs or []:
                if s.name:
                    links.append({"feature": feature, "target_kind": "feature_spec", "target_name": s.name,
                                  "target_version": "", "source_table": source})
            for o in lin.online_features or []:
                if o.table_name:
                    links.append({"feature": feature, "target_kind": "online_feature",
                                  "target_name": f"{o.table_name}.{o.feature_name or ''}".rstrip("."),
                                  "target_version": "", "source_table": source})
        rows = declarative + [{k: v for k, v in r.items() if k != "_feature_table"} for r in classic]
        self.report.count("features", len(rows))
        self.report.count("feature_lineage", len(links))
        # What could not be read keeps its rows: a schema whose features failed to list, a table
        # whose details failed (its classic features), a feature whose lineage failed.
        unread_tables = self._unread_tables

        def unread_feature(f: str) -> bool:
            return (f.rsplit(".", 1)[0] in failed_schemas or f.rsplit(".", 1)[0] in unread_tables)

        any_unread = bool(failed_schemas or unread_tables)
        read = [r["full_name"] for r in rows]
        return {"features": EntityBatch(rows, self._scope("features", "full_name", read,
                                                          unread_feature if any_unread else None)),
                "feature_lineage": EntityBatch(links, self._scope(
                    "feature_lineage", "feature", read,
                    (lambda f: unread_feature(f) or f in no_lineage) if any_unread or no_lineage else None))}

    # -- Tables and lineage --------------------------------------------------------------------
    def _table_row(self, t, reasons: Iterable[str], status: str = "ok", detail: str | None = None,
                   full_name: str | None = None) -> dict[str, Any]:
        name = full_name or t.full_name
        parts = name.split(".")
        return {"full_name": name, "catalog_name": getattr(t, "catalog_name", None) or parts[0],
                "schema_name": getattr(t, "schema_name", None) or (parts[1] if len(parts) > 1 else None),
                "table_type": _enum(getattr(t, "table_type", None)),
                "data_source_format": _enum(getattr(t, "data_source_format", None)),
                "storage_location": getattr(t, "storage_location", None), "owner": getattr(t, "owner", None),
                "table_id": getattr(t, "table_id", None), "created_at": _ms(getattr(t, "created_at", None)),
                "updated_at": _ms(getattr(t, "updated_at", None)), "comment": getattr(t, "comment", None),
                "reasons": sorted(reasons), "read_status": status, "detail": detail}

    def _tables(self) -> dict[str, EntityBatch]:
        self.progress("tables")
        rows: dict[str, dict[str, Any]] = {}
        unlisted: set[str] = set()
        for spec in self.opts.get("schemas") or []:
            catalog, schema = spec.split(".", 1)
            res = self._read(f"tables in {spec}", lambda c=catalog, s=schema: list(self.w.tables.list(
                c, s, omit_columns=True, omit_properties=True)))
            if not res.ok:
                unlisted.add(spec)
            for t in res.value or []:
                if t.full_name:
                    rows[t.full_name] = self._table_row(t, self._table_reasons.get(t.full_name, set()) | {"schema"})
        # Lineage first, so the upstream tables it finds are described too.
        lineage_rows, lineage_read = self._lineage(sorted(self._table_reasons))
        # Every referenced table is read with its details (columns and constraints show a classic
        # feature table), also when a configured schema's list already named it.
        wanted = sorted(self._table_reasons)
        for name, res in zip(wanted, self._read_many(wanted, lambda n: self._read(
                f"table {n}", lambda: self.w.tables.get(n)))):
            reasons = self._table_reasons[name]
            if res.ok:
                self._table_infos[name] = res.value
            elif res.status != "not_found":
                self._unread_tables.add(name)
            if name in rows:
                if not res.ok:
                    continue   # listed from its schema: the listing describes it
                reasons = reasons | set(rows[name]["reasons"])
            rows[name] = (self._table_row(res.value, reasons) if res.ok
                          else self._table_row(None, reasons, res.status, res.detail, full_name=name))
        for name, row in rows.items():   # tables listed from schemas that something also references
            row["reasons"] = sorted(set(row["reasons"]) | self._table_reasons.get(name, set()))
        self.report.count("uc_tables", len(rows))
        # A schema whose list failed keeps its tables; a lineage walk with a failed read closes
        # edges only below the tables whose lineage was read (what lies beyond a failure is unknown).
        # Tables found only through lineage may be missing when a lineage read failed: then no table
        # that was not seen is closed.
        def table_unread(name: str) -> bool:
            return name.rsplit(".", 1)[0] in unlisted or (lineage_read is not None and name not in rows)

        table_scope = self._scope("uc_tables", "full_name", rows,
                                  table_unread if unlisted or lineage_read is not None else None)
        lineage_scope = self._scope("table_lineage", "downstream", lineage_read,
                                    (lambda n: n not in lineage_read) if lineage_read is not None else None)
        return {"uc_tables": EntityBatch(list(rows.values()), table_scope),
                "table_lineage": EntityBatch(lineage_rows, lineage_scope)}

    def _lineage(self, seeds: list[str]) -> tuple[list[dict[str, Any]], set[str] | None]:
        """Upstream edges walked from `seeds`, and — when a read failed — the tables whose lineage
        was read (None when every read succeeded)."""
        depth_limit = int(self.opts.get("lineage_depth", DEFAULT_LINEAGE_DEPTH))
        if depth_limit <= 0 or not seeds:
            return [], None
        self.progress(f"table lineage ({len(seeds)} tables, depth {depth_limit})")
        cache: dict[str, ReadResult] = {}   # one call per table per pass
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        frontier, depth = list(seeds), 1
        while frontier and depth <= depth_limit:
            todo = [t for t in dict.fromkeys(frontier) if t not in cache]
            for t, res in zip(todo, self._read_many(todo, lambda t: self._read(
                    f"lineage of {t}", lambda: self.w.api_client.do(
                        "GET", "/api/2.0/lineage-tracking/table-lineage",
                        query={"table_name": t, "include_entity_lineage": True})))):
                cache[t] = res
            nxt = []
            for t in frontier:
                res = cache[t]
                body = res.value if res.ok and isinstance(res.value, dict) else {}
                for up in body.get("upstreams") or []:
                    info, file_info = up.get("tableInfo") or {}, up.get("fileInfo") or {}
                    if info:
                        up_name = ".".join(str(info.get(k) or "") for k in ("catalog_name", "schema_name", "name"))
                        if not _three_part(up_name):
                            continue
                        kind = "table"
                    elif file_info.get("path"):
                        up_name, kind = file_info["path"], "file"
                    else:
                        continue
                    key = (up_name, t)
                    if key in edges:
                        continue
                    edges[key] = {"upstream": up_name, "downstream": t, "upstream_kind": kind,
                                  "upstream_table_type": info.get("table_type"),
                                  "lineage_timestamp": info.get("lineage_timestamp"),
                                  "job_ids": sorted({str(j.get("job_id")) for j in up.get("jobInfos") or [] if j.get("job_id")}),
                                  "notebook_ids": sorted({str(n.get("notebook_id")) for n in up.get("notebookInfos") or []
                                                          if n.get("notebook_id")}),
                                  "pipeline_ids": sorted({str(p.get("pipeline_id")) for p in up.get("pipelineInfos") or []
                                                          if p.get("pipeline_id")}),
                                  "depth": depth}
                    if kind == "table":
                        self._want(up_name, "lineage_upstream")
                        nxt.append(up_name)
            frontier, depth = nxt, depth + 1
        self.report.count("table_lineage", len(edges))
        read = {t for t, res in cache.items() if res.status in ("ok", "not_found")}   # a 404: no table, no lineage
        return list(edges.values()), (read if len(read) < len(cache) else None)

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
