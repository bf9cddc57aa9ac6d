"""The MLflow source's registry: registered models, aliases, model versions and each version's
`MLmodel` origin, staged a page at a time (collectors/mlflow_source.py is the pass around it).

Only the model names and their aliases are kept across pages: every version (50k at 500k runs) held
until its model was walked grew the collecting process with the workspace (bench/scale.py)."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from collectors.mlflow_access import UcModelFiles
from collectors.mlflow_records import parse_models_uri, tags_dict, versions_filter
from collectors.mlmodel import missing_row, origin_row
from collectors.paging import iter_items
from store.staging import StageWriter

VERSION_PAGE_SIZE = 10_000  # model versions per unfiltered search_model_versions page (OSS registries)
ORIGIN_READ_THREADS = 8
REGISTRY_PAGE_ROWS = 1_000   # registry rows staged at a time (models, versions, aliases, origins)


class RegistryReading:
    """The registry half of `MlflowSource` (it supplies `client`, `config`, `report`, `progress`, `_call`)."""

    # -- registry ------------------------------------------------------------------------------
    def _registry(self, previous: Any, stage: StageWriter) -> None:   # collectors.mlflow_source.PreviousState | None
        """Stage the registry's models, aliases, versions and MLmodel origins a page at a time. Only the
        model names and their aliases are kept across pages: holding every version (50k at 500k runs)
        until its model was walked grew the collecting process with the workspace (bench/scale.py)."""
        self.progress("registered models")
        aliases = self._models_and_aliases(stage)
        self.progress("model versions")
        versions = _VersionStager(self, previous, aliases, stage)
        pages = self._all_versions() if self._is_oss_registry() else None
        if pages is not None:
            try:
                for v in pages:
                    versions.add(v)
            except Exception as e:   # e.g. a hosted endpoint that insists on a filter: start again per model
                self.report.warn(f"model versions not listed in one search ({type(e).__name__}: {str(e)[:160]}); "
                                 "listing them per model")
                versions.restart()
                pages = None
        if pages is None:
            for name in aliases:
                for v in iter_items(lambda tok, n=name: self._call(self.client.search_model_versions,
                                                                   versions_filter(n), page_token=tok)):
                    if v.name == name:   # a LIKE filter (see versions_filter) can match other models too
                        versions.add(v)
        versions.finish()

    def _models_and_aliases(self, stage: StageWriter) -> dict[str, dict[str, list[str]]]:
        """Stage the registered models and their aliases; return {model: {version: [aliases]}}, listing
        every model (those without aliases too), in the registry's order."""
        models, alias_rows = [], []
        by_model: dict[str, dict[str, list[str]]] = {}
        n_aliases = 0
        for rm in iter_items(lambda tok: self._call(self.client.search_registered_models, max_results=1000,
                                                    page_token=tok)):
            alias_map = rm.aliases if isinstance(getattr(rm, "aliases", None), dict) else None
            tags = tags_dict(getattr(rm, "tags", None))
            if alias_map is None or tags is None:
                full = self._call(self.client.get_registered_model, rm.name)
                alias_map, tags = dict(full.aliases or {}), tags_dict(full.tags) or {}
            models.append({"name": rm.name, "description": rm.description, "creation_time": rm.creation_timestamp,
                           "last_updated_time": rm.last_updated_timestamp, "tags": tags})
            by_version = by_model.setdefault(rm.name, {})
            for alias, version in alias_map.items():
                alias_rows.append({"name": rm.name, "alias": alias, "version": str(version)})
                by_version.setdefault(str(version), []).append(alias)
            n_aliases += len(alias_map)
            for table, rows in (("registered_models", models), ("model_aliases", alias_rows)):
                if len(rows) >= REGISTRY_PAGE_ROWS:
                    stage.add(table, rows)
                    rows.clear()
        stage.add("registered_models", models)
        stage.add("model_aliases", alias_rows)
        self.report.count("registered_models", len(by_model))
        self.report.count("aliases", n_aliases)
        return by_model

    def _all_versions(self) -> Iterator[Any]:
        """Every version of an OSS registry in a few paged calls (Unity Catalog requires a name filter).
        One call per model was most of an incremental pass's fixed cost (bench/scale.py: 200 models,
        205 API calls for 200 new runs)."""
        return iter_items(lambda tok: self._call(self.client.search_model_versions, None,
                                                 max_results=VERSION_PAGE_SIZE, page_token=tok))

    def _version_row(self, v: Any, stored: dict[str, Any] | None) -> dict[str, Any]:
        unchanged = (stored is not None and stored.get("last_updated_time") == v.last_updated_timestamp
                     and stored.get("status") == str(v.status))
        tags = tags_dict(getattr(v, "tags", None))
        model_id = getattr(v, "model_id", None)
        model_id = model_id if isinstance(model_id, str) else parse_models_uri(v.source)
        if tags is None or (model_id is None and not self._is_oss_registry()):
            if unchanged:
                tags, model_id = stored.get("tags") or {}, stored.get("model_id")
            else:
                # UC search results drop tags and model_id (platform-apis §2.4): read the version itself.
                full = self._call(self.client.get_model_version, v.name, v.version)
                tags = tags_dict(full.tags) or {}
                model_id = full.model_id if isinstance(getattr(full, "model_id", None), str) else parse_models_uri(full.source)
        return {
            "name": v.name, "version": str(v.version), "run_id": v.run_id or None, "source_uri": v.source,
            "model_id": model_id, "status": str(v.status) if v.status is not None else None,
            "stage": getattr(v, "current_stage", None), "user_id": getattr(v, "user_id", None),
            "description": getattr(v, "description", None), "creation_time": v.creation_timestamp,
            "last_updated_time": v.last_updated_timestamp, "tags": tags,
        }

    def _is_oss_registry(self) -> bool:
        return not self.config.effective_registry_uri.startswith("databricks")

    def _read_origins(self, keys: list[tuple[str, str, str | None]], stage: StageWriter) -> None:
        """Read these versions' MLmodel files (a few threads) and stage their origin rows."""
        with ThreadPoolExecutor(max_workers=ORIGIN_READ_THREADS, thread_name_prefix="waymark-mlmodel") as pool:
            stage.add("model_origins", list(pool.map(lambda k: self._read_origin(*k), keys)))

    def _download_uri(self, name: str, version: str, source: str | None) -> str:
        """Where the version's files are. An OSS registry hands back a plain artifact location as
        its own download URI, so that request is spared; `models:/` and `runs:/` sources are asked for."""
        if source and not source.startswith(("models:/", "runs:/")):
            return source
        return self._call(self.client.get_model_version_download_uri, name, version)

    def _download_mlmodel(self, name: str, version: str, source: str | None, dst: str) -> str:
        """Fetch a version's MLmodel into `dst`; return the local path.

        A Unity Catalog version's download URI is a raw cloud storage path that only UC temporary
        credentials open, so it is read as `models:/NAME/VERSION` through MLflow's UC artifact
        repository, which fetches those credentials (or uses the Files API when the workspace
        enables it). It is built around this source's own client (`UcModelFiles`): MLflow's
        `download_artifacts("models:/…", registry_uri=…)` would also work, but its UC repository
        opens an `MlflowClient` on the process-global tracking URI, which creates `mlflow.db` in the
        working folder. Other registries (a tracking server, sqlite, Fabric, the Databricks workspace
        registry) resolve `models:/` through the process-global registry URI
        (`ModelsArtifactRepository._get_model_uri_infos`), so there the version's own location is
        read, asked of this source's client when the source is itself a `models:/` or `runs:/` URI."""
        import mlflow.artifacts
        from mlflow.utils.uri import is_databricks_unity_catalog_uri

        registry = self.config.effective_registry_uri
        if is_databricks_unity_catalog_uri(registry):
            return UcModelFiles.open(self.client, registry, name, version).download_artifacts("MLmodel", dst)
        uri = self._download_uri(name, version, source).rstrip("/") + "/MLmodel"
        return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=dst,
                                                   tracking_uri=self.config.tracking_uri)

    def _read_origin(self, name: str, version: str, source: str | None = None) -> dict[str, Any]:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = self._download_mlmodel(name, version, source, tmp)
                text = Path(local).read_text(encoding="utf-8")
        except Exception as e:
            text = str(e).lower()
            # Local/file stores say "No such artifact", HTTP stores "not found"/404, the OS "no such file".
            missing = isinstance(e, FileNotFoundError) or any(
                m in text for m in ("not found", "no such file", "no such artifact", "does not exist"))
            if not missing:
                self.report.warn(f"{name}/{version}: MLmodel unreadable ({type(e).__name__}: {str(e)[:160]})")
            return missing_row(name, version, "missing" if missing else "unreadable", str(e))
        return origin_row(name, version, text)


class _VersionStager:
    """Turns listed model versions into staged rows, and reads the MLmodel of each new version, a page
    of rows at a time (origins on a few threads: each read is a download)."""

    # source: the MlflowSource; previous: its PreviousState or None (not imported: mlflow_source imports this)
    def __init__(self, source: Any, previous: Any,
                 aliases: dict[str, dict[str, list[str]]], stage: StageWriter):
        self.source, self.previous, self.aliases, self.stage = source, previous, aliases, stage
        self.known = previous.versions if previous else {}
        self.rows: list[dict[str, Any]] = []
        self.to_read: list[tuple[str, str, str | None]] = []
        self.restart()

    def restart(self) -> None:
        """Forget what was staged: the versions are about to be listed again another way."""
        for table in ("model_versions", "model_origins"):
            self.stage.discard(table)
            self.stage.add(table, [])
        self.rows.clear()
        self.to_read.clear()
        self.n_versions = self.n_origins = 0

    def add(self, v: Any) -> None:
        by_version = self.aliases.get(v.name)
        if by_version is None:   # its model was created after the models were listed: the next pass has both
            return
        key = (v.name, str(v.version))
        stored = self.known.get(key)
        row = self.source._version_row(v, stored)
        row["aliases"] = sorted(by_version.get(key[1], []))
        self.rows.append(row)
        self.n_versions += 1
        # Versions are immutable, so an MLmodel is read once, unless the number now names a different
        # version (model deleted and re-created: version numbers start again at 1).
        recreated = stored is None or stored.get("creation_time") != v.creation_timestamp
        previous = self.previous
        if self.source.config.read_model_origins and (previous is None or key not in previous.origins_done
                                                      or recreated):
            self.to_read.append((*key, v.source))
        self._flush(REGISTRY_PAGE_ROWS)

    def _flush(self, at_least: int) -> None:
        if len(self.rows) >= at_least:
            self.stage.add("model_versions", self.rows)
            self.rows.clear()
        if self.to_read and len(self.to_read) >= at_least:
            self.source._read_origins(self.to_read, self.stage)
            self.n_origins += len(self.to_read)
            self.to_read.clear()
            self.source.progress(f"MLmodel origins: {self.n_origins:,} read")

    def finish(self) -> None:
        self._flush(0)
        self.source.report.count("model_versions", self.n_versions)
        if self.n_origins:
            self.source.report.count("model_origins", self.n_origins)
