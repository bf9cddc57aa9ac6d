"""The origin row of a model version, from its MLmodel file: one parse for every registry kind.

An MLmodel is YAML written by MLflow when the model is logged; its `run_id`, `model_uuid` and
`model_id` name where the files came from, also when they were copied to another registry.
"""
from __future__ import annotations

from typing import Any

import yaml


def origin_row(name: str, version: str, text: str) -> dict[str, Any]:
    """`model_origins` row for `name`/`version` from the MLmodel's text: `read_status` ok, or
    unreadable with the reason in `detail` (never an exception: one bad file is a gap)."""
    row: dict[str, Any] = {"name": name, "version": version}
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        return {**row, "read_status": "unreadable", "detail": f"MLmodel is not YAML: {e}"[:500]}
    if not isinstance(doc, dict):
        return {**row, "read_status": "unreadable", "detail": "MLmodel is not a mapping"}
    return {**row, "read_status": "ok", "origin_run_id": doc.get("run_id"),
            "origin_model_uuid": doc.get("model_uuid"), "origin_model_id": doc.get("model_id"),
            "artifact_path": doc.get("artifact_path"), "created_utc": str(doc.get("utc_time_created") or "") or None,
            "flavors": sorted((doc.get("flavors") or {}).keys()) if isinstance(doc.get("flavors"), dict) else []}


def missing_row(name: str, version: str, status: str, detail: str) -> dict[str, Any]:
    """A version whose MLmodel could not be read (`missing` or `unreadable`), with why."""
    return {"name": name, "version": version, "read_status": status, "detail": detail[:500]}
