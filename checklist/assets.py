"""Asset records: every collected ML asset, on any platform, as one small record the classifier
rules and the evidence checks read. Databricks assets are the inventory; assets on Fabric and
Azure ML are the evidence that something moved.

Builders read store frames of one point in time (`estate_assets` is the entry point):
- `mlflow_assets`: experiments and registered models of every MLflow-shaped source. A
  registered model of a `databricks`-kind source that `uc_models` lists is a Unity Catalog model:
  type `uc_model` (so it is never mistaken for the workspace MLflow-registry model trained by the
  same runs: two registries, two workloads, each linked to the other by a `same_runs_as` fact).
  Its key keeps the `registered_model:` prefix it had before the type existed, so manual
  entries recorded against it stay attached.
- `databricks_assets`: serving endpoints (served_entities, active config, each served version's
  producing run looked up in model_versions), feature tables (features grouped by their source
  table, storage location from uc_tables) and vector indexes. AutoML experiments are experiments
  (see the AutoML rules); no table holds Databricks Apps yet (the `app` type and rule wait for one).
- `target_assets_from_platforms`: Azure ML online endpoints (deployments resolved to the runs
  their model versions copy), Azure AI Search indexes, Fabric ML experiment / ML model items (only
  those the workspace's MLflow source did not already report), lakehouse tables and OneLake
  shortcuts.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lineage.conventions import MIGRATED_FROM_TAG, normalise_location, parse_migrated_from, version_order

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
UC_MODEL = "uc_model"                    # Unity Catalog registered model (Databricks)
LAKEHOUSE_TABLE = "lakehouse_table"      # Fabric lakehouse table
ONELAKE_SHORTCUT = "onelake_shortcut"    # Fabric OneLake shortcut (data reachable from Fabric)



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
            "migrated_from": _text(tags.get(MIGRATED_FROM_TAG)),
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
    uc_names = {(u["source"], u["full_name"]) for u in _rows(frames.get("uc_models"))}
    runs_of: dict[tuple[str, str], set[str]] = {}
    for v in version_facts:   # Databricks versions only: the other registry of the same workspace
        if v["run_id"] and v["platform"] == SOURCE_PLATFORM:
            runs_of.setdefault((v["source"], v["model"]), set()).add(v["run_id"])
    for m in models:
        own = [v for v in version_facts if v["source"] == m["source"] and v["model"] == m["name"]]
        is_uc = (m["source"], m["name"]) in uc_names
        facts: dict[str, Any] = {"tags": _dict(m.get("tags")), "versions": sorted(own, key=lambda v: version_order(v["version"])),
                                 "flavors": sorted({f for v in own for f in v["flavors"]}),
                                 "registry": "unity_catalog" if is_uc else "mlflow"}
        if (m.get("platform") or "") == SOURCE_PLATFORM:
            mine = runs_of.get((m["source"], m["name"]), set())
            facts["same_runs_as"] = sorted(
                f"{other_source}:{other}" for (other_source, other), runs in runs_of.items()
                if (other_source, other) != (m["source"], m["name"]) and mine & runs
                and ((other_source, other) in uc_names) != is_uc)
        assets.append(Asset(
            key=asset_key(REGISTERED_MODEL, m["source"], m["name"]), asset_type=UC_MODEL if is_uc else REGISTERED_MODEL,
            source=m["source"], platform=m.get("platform") or "", name=m["name"], facts=facts))
    return assets


def source_assets(assets: Iterable[Asset]) -> list[Asset]:
    """The inventory: assets collected from Databricks."""
    return [a for a in assets if a.platform == SOURCE_PLATFORM]


# -- Databricks platform assets ------------------------------------------------------------------
def _flag(value: Any) -> bool | None:
    """A stored BOOLEAN (Python or numpy bool); None for NULL / NaN."""
    return bool(value) if isinstance(value, (bool, np.bool_)) else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if pd.isna(number) else number


def _run_lookup(frames: Mapping[str, pd.DataFrame]
                ) -> tuple[dict[tuple[str, str, str], str], dict[tuple[str, str], set[str]]]:
    """(source, model, version) → producing run of every Databricks model version; and
    (model, version) → runs, for a served entity whose registry is another Databricks source."""
    own: dict[tuple[str, str, str], str] = {}
    anywhere: dict[tuple[str, str], set[str]] = {}
    for v in _rows(frames.get("model_versions")):
        run = _text(v.get("run_id"))
        if run and (v.get("platform") or "") == SOURCE_PLATFORM:
            own[(v["source"], v["name"], str(v["version"]))] = run
            anywhere.setdefault((v["name"], str(v["version"])), set()).add(run)
    return own, anywhere


def databricks_assets(frames: Mapping[str, pd.DataFrame]) -> list[Asset]:
    """Serving endpoints, feature tables and vector indexes of `databricks`-kind sources."""
    assets: list[Asset] = []
    own_runs, runs_anywhere = _run_lookup(frames)
    entities: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in _rows(frames.get("served_entities")):
        entities.setdefault((e["source"], e["endpoint"]), []).append(e)
    for ep in _rows(frames.get("serving_endpoints")):
        mine = entities.get((ep["source"], ep["name"]), [])
        served, pending = [], []
        for e in mine:
            model, version = _text(e.get("entity_name")), _text(e.get("entity_version"))
            run = own_runs.get((ep["source"], model or "", version or ""))
            if run is None and model and version:
                candidates = runs_anywhere.get((model, version), set())
                run = next(iter(candidates)) if len(candidates) == 1 else None
            record = {"entity": e["served_entity_name"], "model": model, "version": version, "run_id": run,
                      "traffic_pct": _number(e.get("traffic_pct")), "external": bool(_flag(e.get("external"))),
                      "state": _text(e.get("deployment_state"))}
            (pending if e.get("config") == "pending" else served).append(record)
        assets.append(Asset(
            key=asset_key(SERVING_ENDPOINT, ep["source"], ep["name"]), asset_type=SERVING_ENDPOINT,
            source=ep["source"], platform=ep.get("platform") or "", name=ep["name"],
            facts={"served": sorted(served, key=lambda s: s["entity"]), "pending": pending,
                   "ready": _text(ep.get("ready")), "config_update": _text(ep.get("config_update")),
                   "tags": _dict(ep.get("tags")), "task": _text(ep.get("task"))}))

    locations = {(t["source"], t["full_name"]): _text(t.get("storage_location"))
                 for t in _rows(frames.get("uc_tables"))}
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    for f in _rows(frames.get("features")):
        table = _text(f.get("source_table")) or str(f["full_name"])
        entry = tables.setdefault((f["source"], table), {"platform": f.get("platform") or "", "features": [],
                                                         "entity_columns": set()})
        entry["features"].append(str(f.get("name") or f["full_name"]))
        entry["entity_columns"].update(str(c) for c in _list(f.get("entity_columns")))
    for (source, table), entry in sorted(tables.items()):
        assets.append(Asset(
            key=asset_key(FEATURE_TABLE, source, table), asset_type=FEATURE_TABLE, source=source,
            platform=entry["platform"], name=table,
            facts={"features": sorted(entry["features"]), "entity_columns": sorted(entry["entity_columns"]),
                   "storage_location": locations.get((source, table))}))

    for ix in _rows(frames.get("vector_indexes")):
        assets.append(Asset(
            key=asset_key(VECTOR_INDEX, ix["source"], ix["name"]), asset_type=VECTOR_INDEX, source=ix["source"],
            platform=ix.get("platform") or "", name=ix["name"],
            facts={"endpoint": _text(ix.get("endpoint_name")), "index_type": _text(ix.get("index_type")),
                   "source_table": _text(ix.get("source_table")),
                   "embedding_model_endpoints": [str(x) for x in _list(ix.get("embedding_model_endpoints"))],
                   "ready": _flag(ix.get("ready")),
                   "indexed_row_count": _number(ix.get("indexed_row_count"))}))
    return assets


# -- target platform assets ----------------------------------------------------------------------
HEALTHY_PROVISIONING = "succeeded"


def _tag_copy(tags: Mapping[str, Any]) -> str | None:
    """`databricks:<model>/<version>` → `<model>/<version>` (what the copy was made from), by the
    lineage's own parse of the tag; a value not in that form names nothing."""
    parsed = parse_migrated_from(_text(tags.get(MIGRATED_FROM_TAG)) or "")
    return None if parsed is None else f"{parsed[1]}/{parsed[2]}"


def _online_endpoints(frames: Mapping[str, pd.DataFrame]) -> list[Asset]:
    """Azure ML online endpoints; each deployment resolved to the Databricks run its model copies:
    the MLmodel origin run of the deployed workspace version, else the run of the Databricks version
    its `waymark.migrated_from` tag names. Healthy = provisioning state only (see evidence)."""
    origins = {(o["source"], o["name"], str(o["version"])): _text(o.get("origin_run_id"))
               for o in _rows(frames.get("model_origins"))}
    version_tags = {(v["source"], v["name"], str(v["version"])): _dict(v.get("tags"))
                    for v in _rows(frames.get("model_versions"))}
    _, runs_anywhere = _run_lookup(frames)
    deployments: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in _rows(frames.get("aml_deployments")):
        deployments.setdefault((d["source"], d["endpoint"]), []).append(d)
    assets = []
    for ep in _rows(frames.get("aml_endpoints")):
        traffic, mirror = _dict(ep.get("traffic")), _dict(ep.get("mirror_traffic"))
        rows = []
        for d in deployments.get((ep["source"], ep["endpoint"]), []):
            model, version = _text(d.get("model_name")), _text(d.get("model_version"))
            key = (d["source"], model or "", version or "")
            copy_of = _tag_copy(version_tags.get(key, {}))
            run = origins.get(key)
            how = "MLmodel origin run" if run else None
            if run is None and copy_of:
                candidates = runs_anywhere.get(tuple(copy_of.rsplit("/", 1)), set())  # type: ignore[arg-type]
                run = next(iter(candidates)) if len(candidates) == 1 else None
                how = f"{MIGRATED_FROM_TAG} {copy_of}" if run else None
            rows.append({"deployment": d["deployment"], "model": model, "version": version,
                         "registry": _text(d.get("model_registry")), "state": _text(d.get("provisioning_state")),
                         "traffic_pct": _number(traffic.get(d["deployment"])) or 0.0,
                         "mirror_pct": _number(mirror.get(d["deployment"])) or 0.0,
                         "origin_run_id": run, "linked_by": how, "copy_of": copy_of})
        live = [r for r in rows if r["traffic_pct"] > 0]
        unhealthy = [f"endpoint provisioning {ep.get('provisioning_state') or 'unknown'}"] \
            if str(ep.get("provisioning_state") or "").lower() != HEALTHY_PROVISIONING else []
        unhealthy += [f"deployment {r['deployment']} provisioning {r['state'] or 'unknown'}" for r in live
                      if str(r["state"] or "").lower() != HEALTHY_PROVISIONING]
        if not live:
            unhealthy.append("no deployment takes traffic")
        assets.append(Asset(
            key=asset_key(ONLINE_ENDPOINT, ep["source"], ep["endpoint"]), asset_type=ONLINE_ENDPOINT,
            source=ep["source"], platform=ep.get("platform") or "", name=ep["endpoint"],
            facts={"deployments": sorted(rows, key=lambda r: r["deployment"]),
                   "served_origin_run_ids": sorted({r["origin_run_id"] for r in live if r["origin_run_id"]}),
                   "staged_origin_run_ids": sorted({r["origin_run_id"] for r in rows
                                                    if r["origin_run_id"] and r["traffic_pct"] <= 0}),
                   "served_copies_of": sorted({r["copy_of"] for r in live if r["copy_of"]}),
                   "healthy": not unhealthy, "health": "; ".join(unhealthy) or "provisioning Succeeded",
                   "migrated_from": _text(_dict(ep.get("tags")).get(MIGRATED_FROM_TAG))}))
    return assets


def _search_indexes(frames: Mapping[str, pd.DataFrame]) -> list[Asset]:
    assets = []
    for ix in _rows(frames.get("search_indexes")):
        vector_fields = [str(_dict(f).get("name")) for f in _list(ix.get("vector_fields"))]
        feeds = [{"indexer": _text(_dict(i).get("name")), "data_source": _text(_dict(i).get("data_source")),
                  "container": _text(_dict(i).get("container"))} for i in _list(ix.get("indexers"))]
        count = _number(ix.get("document_count"))
        assets.append(Asset(
            key=asset_key(SEARCH_INDEX, ix["source"], ix["index_name"]), asset_type=SEARCH_INDEX,
            source=ix["source"], platform=ix.get("platform") or "", name=ix["index_name"],
            facts={"vector_fields": vector_fields, "document_count": int(count) if count is not None else None,
                   "feeds": feeds}))
    return assets


def _fabric_assets(frames: Mapping[str, pd.DataFrame], known: Iterable[Asset]) -> list[Asset]:
    """Fabric items (ML experiments, ML models) not already reported by an MLflow source of the
    platform — matched by name, or for experiments by MLflow experiment id — plus lakehouse tables
    and OneLake shortcuts."""
    known_experiments = {(a.name, a.facts.get("experiment_id")) for a in known
                         if a.asset_type == EXPERIMENT and a.platform != SOURCE_PLATFORM}
    known_names = {n for n, _ in known_experiments}
    known_ids = {i for _, i in known_experiments if i}
    known_models = {a.name for a in known if a.asset_type == REGISTERED_MODEL and a.platform != SOURCE_PLATFORM}
    assets: list[Asset] = []
    lakehouses: dict[tuple[str, str], str] = {}
    for item in _rows(frames.get("fabric_items")):
        kind, name = item.get("item_type"), str(item.get("display_name") or item["item_id"])
        base = {"source": item["source"], "platform": item.get("platform") or "", "name": name}
        if kind == "Lakehouse":
            lakehouses[(item["source"], item["item_id"])] = name
        elif kind == "MLExperiment":
            exp_id = _text(item.get("mlflow_experiment_id"))
            if name in known_names or (exp_id and exp_id in known_ids):
                continue
            assets.append(Asset(key=asset_key(EXPERIMENT, item["source"], exp_id or item["item_id"]),
                                asset_type=EXPERIMENT, **base,
                                facts={"experiment_id": exp_id, "fabric_item": True, "runs_known": False,
                                       "finished_runs": 0, "tags": {}}))
        elif kind == "MLModel":
            if name in known_models:
                continue
            assets.append(Asset(key=asset_key(REGISTERED_MODEL, item["source"], name), asset_type=REGISTERED_MODEL,
                                **base, facts={"fabric_item": True, "versions": [], "tags": {}, "flavors": []}))
    for t in _rows(frames.get("fabric_tables")):
        lakehouse = lakehouses.get((t["source"], t["lakehouse_id"]), t["lakehouse_id"])
        parts = [lakehouse] + [p for p in (t.get("schema_name"), t.get("table_name")) if p]
        name = ".".join(str(p) for p in parts)
        assets.append(Asset(key=asset_key(LAKEHOUSE_TABLE, t["source"], f"{t['lakehouse_id']}/{name}"),
                            asset_type=LAKEHOUSE_TABLE, source=t["source"], platform=t.get("platform") or "",
                            name=name, facts={"location": _text(t.get("location")),
                                              "table": str(t.get("table_name") or "")}))
    for s in _rows(frames.get("fabric_shortcuts")):
        lakehouse = lakehouses.get((s["source"], s["item_id"]), s["item_id"])
        name = "/".join(str(p) for p in (lakehouse, s.get("path"), s.get("name")) if p)
        ident = f"{s['item_id']}/{s.get('path')}/{s.get('name')}"
        assets.append(Asset(key=asset_key(ONELAKE_SHORTCUT, s["source"], ident),
                            asset_type=ONELAKE_SHORTCUT, source=s["source"], platform=s.get("platform") or "",
                            name=name, facts={"target_location": _text(s.get("target_location")),
                                              "target_type": _text(s.get("target_type"))}))
    return assets


def same_location(a: str | None, b: str | None) -> bool:
    """Storage URLs naming the same place: case of scheme and host, and a trailing slash, ignored."""
    if not a or not b:
        return False
    return normalise_location(a) == normalise_location(b)


# Entity tables the builders read, with the columns they need (the burn-up reads these too).
PLATFORM_COLUMNS: dict[str, tuple[str, ...]] = {
    "uc_models": ("full_name",),
    "uc_tables": ("full_name", "storage_location"),
    "serving_endpoints": ("name", "ready", "config_update", "task", "tags"),
    "served_entities": ("endpoint", "config", "served_entity_name", "entity_name", "entity_version", "traffic_pct",
                        "external", "deployment_state"),
    "features": ("full_name", "name", "source_table", "entity_columns"),
    "vector_indexes": ("name", "endpoint_name", "index_type", "source_table", "embedding_model_endpoints", "ready",
                       "indexed_row_count"),
    "aml_endpoints": ("endpoint", "provisioning_state", "traffic", "mirror_traffic", "tags"),
    "aml_deployments": ("endpoint", "deployment", "provisioning_state", "model_name", "model_version",
                        "model_registry"),
    "search_indexes": ("index_name", "vector_fields", "document_count", "indexers"),
    "fabric_items": ("item_id", "item_type", "display_name", "mlflow_experiment_id"),
    "fabric_tables": ("lakehouse_id", "schema_name", "table_name", "location"),
    "fabric_shortcuts": ("item_id", "path", "name", "target_type", "target_location"),
}


def estate_assets(frames: Mapping[str, pd.DataFrame]) -> list[Asset]:
    """Every asset of one point in time: MLflow entities, Databricks platform assets and the
    target-side records (Azure ML endpoints, AI Search indexes, Fabric items, tables, shortcuts)."""
    assets = mlflow_assets(frames) + databricks_assets(frames)
    assets += _online_endpoints(frames) + _search_indexes(frames)
    assets += _fabric_assets(frames, assets)
    return assets
