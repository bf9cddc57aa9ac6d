"""MLflow entities as store rows: a run (its git commit, params, tags, metrics), its dataset
inputs, a version's source URI, and the registry's search filter for one model name."""
from __future__ import annotations

import json
from typing import Any

from collectors.report import SourceReport

GIT_SHA_TAGS = ("mlflow.source.git.commit", "mlflow.databricks.gitRepoCommit")


def tags_dict(value: Any) -> dict[str, str] | None:
    """Tags as a dict, or None when the client gave something else (UC search results give a method)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for t in value:
            key = getattr(t, "key", None)
            if key is not None:
                out[str(key)] = str(getattr(t, "value", ""))
        return out
    return None


def parse_models_uri(source: str | None) -> str | None:
    """`models:/m-abc123` → `m-abc123` (OSS registries store the LoggedModel link only here)."""
    if source and source.startswith("models:/"):
        rest = source[len("models:/"):].strip("/")
        if rest.startswith("m-") and "/" not in rest:
            return rest
    return None


def git_sha_of(params: dict[str, str], tags: dict[str, str], git_sha_param: str) -> tuple[str | None, str | None]:
    for tag in GIT_SHA_TAGS:
        if tags.get(tag, "").strip():
            return tags[tag].strip(), f"tag:{tag}"
    if params.get(git_sha_param, "").strip():
        return params[git_sha_param].strip(), f"param:{git_sha_param}"
    if tags.get(git_sha_param, "").strip():
        return tags[git_sha_param].strip(), f"tag:{git_sha_param}"
    return None, None


def run_record(run: Any, git_sha_param: str) -> dict[str, Any]:
    info, data = run.info, run.data
    params = dict(data.params or {})
    tags = dict(data.tags or {})
    git_sha, git_sha_from = git_sha_of(params, tags, git_sha_param)
    outputs = getattr(run, "outputs", None)
    model_outputs = [m.model_id for m in (getattr(outputs, "model_outputs", None) or []) if getattr(m, "model_id", None)]
    return {
        "run_id": info.run_id, "experiment_id": info.experiment_id, "run_name": info.run_name,
        "status": info.status, "lifecycle_stage": info.lifecycle_stage, "user_id": info.user_id,
        "start_time": info.start_time, "end_time": info.end_time, "artifact_uri": info.artifact_uri,
        "params": params, "metrics": dict(data.metrics or {}), "tags": tags,
        "git_sha": git_sha, "git_sha_from": git_sha_from,
        "source_name": tags.get("mlflow.source.name"), "source_type": tags.get("mlflow.source.type"),
        "parent_run_id": tags.get("mlflow.parentRunId"), "job_run_id": tags.get("mlflow.databricks.jobRunID"),
        "output_model_ids": sorted(set(model_outputs)),
    }


def input_records(run: Any, report: SourceReport) -> list[dict[str, Any]]:
    """One row per dataset input; Delta sources are parsed for table name and version."""
    rows = []
    inputs = getattr(run, "inputs", None)
    for di in (getattr(inputs, "dataset_inputs", None) or []):
        ds = di.dataset
        context = next((t.value for t in (di.tags or []) if t.key == "mlflow.data.context"), None)
        source_json = ds.source or ""
        table_name = path = None
        version: int | None = None
        version_known = False
        try:
            src = json.loads(source_json) if source_json else {}
        except json.JSONDecodeError:
            src = {}
            report.warn(f"run {run.info.run_id}: dataset {ds.name!r} has a source that is not JSON")
        if not isinstance(src, dict):
            src = {}
        if ds.source_type == "delta_table":
            table_name = src.get("delta_table_name")
            path = src.get("path")
            raw_version = src.get("delta_table_version")
            # MLflow omits a version of 0 from the JSON, so absent means "unknown or 0", not "latest".
            if raw_version is not None:
                try:
                    version, version_known = int(raw_version), True
                except (TypeError, ValueError):
                    report.warn(f"run {run.info.run_id}: dataset {ds.name!r} has a non-integer Delta version")
        else:
            path = src.get("path") or src.get("uri") or src.get("url") or src.get("volume_path")
            table_name = src.get("table_name") or src.get("delta_table_name")
        rows.append({
            "run_id": run.info.run_id, "input_key": f"{ds.digest}|{context or ''}|{ds.name}",
            "dataset_name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "context": context,
            "table_name": table_name, "table_version": version, "version_known": version_known,
            "path": path, "source_json": source_json,
        })
    return rows


def versions_filter(name: str) -> str:
    """search_model_versions' filter for one model. MLflow's filter grammar has no escape for a quote
    inside a string literal (mlflow 3.17.2: `name='a''b'` and `name='a\\'b'` parse but match nothing),
    so a name holding both quote kinds is matched with LIKE, every quote (and LIKE/escape character)
    replaced by the one-character wildcard; the caller keeps only exact-name matches."""
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    pattern = "".join("_" if c in "'\"%\\" else c for c in name)
    return f"name LIKE '{pattern}'"
