"""Asset records: every collected ML asset, on any platform, as one small record the classifier
rules and the evidence checks read. Databricks assets are the inventory; assets on Fabric and
Azure ML are the evidence that something moved.

Today the store holds MLflow entities, so experiments and registered models are built here from
store frames. Collectors that land later (serving endpoints, feature tables, vector indexes,
Azure ML endpoints, search indexes) plug in by adding a builder that yields `Asset`s with the
facts their rules and evidence checks document (see `checklist.rules` and `checklist.evidence`).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

SOURCE_PLATFORM = "databricks"

# Asset types. Source side (inventoried): the first seven; target side adds its own.
EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
SERVING_ENDPOINT = "serving_endpoint"
FEATURE_TABLE = "feature_table"
VECTOR_INDEX = "vector_index"
APP = "app"
ONLINE_ENDPOINT = "online_endpoint"      # Azure ML managed online endpoint
SEARCH_INDEX = "search_index"            # Azure AI Search index
FEATURE_SET = "feature_set"              # Fabric feature engineering
CONTAINER_APP = "container_app"          # Azure Container Apps


@dataclass(frozen=True)
class Asset:
    key: str                 # stable across snapshots: "<type>:<source>:<id>"
    asset_type: str
    source: str
    platform: str
    name: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        """Last segment of a path-like or dotted name: `/team/churn` → `churn`, `c.s.m` → `m`."""
        return self.name.rstrip("/").split("/")[-1].split(".")[-1]


def asset_key(asset_type: str, source: str, ident: str) -> str:
    return f"{asset_type}:{source}:{ident}"


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return []
        return parsed if isinstance(parsed, list) else []
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return []


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value)
    return text or None


def _rows(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    return frame.to_dict("records")


def mlflow_assets(frames: Mapping[str, pd.DataFrame]) -> list[Asset]:
    """Experiments and registered models of every source, from frames of one point in time.

    `frames` holds the entity tables (experiments, runs, model_versions, model_aliases,
    model_origins, registered_models) as `store.queries.entity_as_of` returns them; columns a
    frame lacks (the light frames of the burn-up history) simply yield fewer facts.
    """
    runs = [r for r in _rows(frames.get("runs")) if (r.get("lifecycle_stage") or "active") == "active"]
    versions = _rows(frames.get("model_versions"))
    origins = {(o["source"], o["name"], str(o["version"])): o for o in _rows(frames.get("model_origins"))}
    aliases: dict[tuple[str, str, str], list[str]] = {}
    for a in _rows(frames.get("model_aliases")):
        aliases.setdefault((a["source"], a["name"], str(a["version"])), []).append(a["alias"])

    run_experiment = {(r["source"], r["run_id"]): str(r.get("experiment_id")) for r in runs}
    # Facts of each registered version, shared by the experiment and the model that own it.
    version_facts: list[dict[str, Any]] = []
    for v in versions:
        key = (v["source"], v["name"], str(v["version"]))
        origin = origins.get(key, {})
        tags = _dict(v.get("tags"))
        version_facts.append({
            "source": v["source"], "platform": v.get("platform"), "model": v["name"], "version": str(v["version"]),
            "run_id": _text(v.get("run_id")), "model_id": _text(v.get("model_id")),
            "experiment_id": run_experiment.get((v["source"], _text(v.get("run_id")) or "")),
            "aliases": sorted(aliases.get(key, [])),
            "flavors": [str(f) for f in _list(origin.get("flavors"))],
            "origin_run_id": _text(origin.get("origin_run_id")),
            "origin_model_id": _text(origin.get("origin_model_id")),
            "migrated_from": _text(tags.get("waymark.migrated_from")),
            "status": _text(v.get("status")),
        })

    assets: list[Asset] = []
    runs_by_experiment: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        runs_by_experiment.setdefault((r["source"], str(r.get("experiment_id"))), []).append(r)
    for e in _rows(frames.get("experiments")):
        exp_id = str(e["experiment_id"])
        exp_runs = runs_by_experiment.get((e["source"], exp_id), [])
        exp_versions = [v for v in version_facts if v["source"] == e["source"] and v["experiment_id"] == exp_id]
        tag_keys: set[str] = set(_dict(e.get("tags")))
        param_items: list[tuple[str, str]] = []
        flavors: set[str] = {f for v in exp_versions for f in v["flavors"]}
        for r in exp_runs:
            tags = _dict(r.get("tags"))
            tag_keys.update(tags)
            if tags.get("mlflow.autologging"):
                flavors.add(str(tags["mlflow.autologging"]))
            for entry in _list(tags.get("mlflow.log-model.history")):
                flavors.update(_dict(entry.get("flavors") if isinstance(entry, dict) else None))
            param_items.extend((str(k), str(v)) for k, v in _dict(r.get("params")).items())
        starts = [int(r["start_time"]) for r in exp_runs if _text(r.get("start_time")) is not None]
        assets.append(Asset(
            key=asset_key(EXPERIMENT, e["source"], exp_id), asset_type=EXPERIMENT, source=e["source"],
            platform=e.get("platform") or "", name=str(e.get("name") or exp_id),
            facts={
                "experiment_id": exp_id,
                "lifecycle_stage": _text(e.get("lifecycle_stage")) or "active",
                "tags": _dict(e.get("tags")),
                "tag_keys": sorted(tag_keys),
                "params": param_items,
                "flavors": sorted(flavors),
                "run_count": len(exp_runs),
                "finished_runs": sum(1 for r in exp_runs if r.get("status") == "FINISHED"),
                "last_run_ms": max(starts) if starts else None,
                "run_ids": sorted(r["run_id"] for r in exp_runs),
                "models": sorted({v["model"] for v in exp_versions}),
            }))
    models = _rows(frames.get("registered_models"))
    for m in models:
        own = [v for v in version_facts if v["source"] == m["source"] and v["model"] == m["name"]]
        assets.append(Asset(
            key=asset_key(REGISTERED_MODEL, m["source"], m["name"]), asset_type=REGISTERED_MODEL,
            source=m["source"], platform=m.get("platform") or "", name=m["name"],
            facts={"tags": _dict(m.get("tags")), "versions": sorted(own, key=_version_order),
                   "flavors": sorted({f for v in own for f in v["flavors"]})}))
    return assets


def _version_order(v: Mapping[str, Any]) -> tuple[int, str]:
    text = str(v["version"])
    return (int(text), text) if text.isdigit() else (0, text)


def source_assets(assets: Iterable[Asset]) -> list[Asset]:
    """The inventory: assets collected from Databricks."""
    return [a for a in assets if a.platform == SOURCE_PLATFORM]
