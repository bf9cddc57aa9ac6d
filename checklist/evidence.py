"""Progress from evidence: what the collected target platforms prove about one Databricks workload.

Each check takes the Databricks asset and the assets of the platforms its decision-matrix row
targets, and returns the status the store supports (not_started / in_progress / done) with the
link that proves it — or None when nothing collected can say (no collector for that target yet).

- experiment → a target experiment linked to it, with finished runs = done; linked but no
  finished run, or only copied models on the target = in progress. Links, strongest first: a
  `waymark.migrated_from` tag naming it, the same short name, or a target registered model that
  holds both a version trained in the target experiment and a copy of one of this experiment's
  models (the MLmodel origin names this experiment's run).
- registered model → a target model version whose MLmodel origin is the run (and model id) of
  one of its versions, or whose `waymark.migrated_from` tag names it. Done when every version
  under an alias (else the latest version) has such a copy; in progress when some version has.
- serving endpoint → a target online endpoint serving a copy of a version it serves: healthy =
  done, otherwise in progress. Facts: source `served` [{model, version, run_id}], target
  `served_origin_run_ids` [..] and `healthy`.
- vector index / feature table / app → a target search index / feature set / container app
  whose `migrated_from` fact names it or with the same short name (done).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from checklist.assets import (APP, CONTAINER_APP, EXPERIMENT, FEATURE_SET, FEATURE_TABLE, ONLINE_ENDPOINT,
                              REGISTERED_MODEL, SEARCH_INDEX, SERVING_ENDPOINT, SOURCE_PLATFORM, VECTOR_INDEX,
                              Asset)

NOT_STARTED, IN_PROGRESS, DONE = "not_started", "in_progress", "done"


@dataclass(frozen=True)
class Evidence:
    status: str
    detail: str
    target_key: str | None = None


def _names_it(value: object, asset: Asset) -> bool:
    """A `migrated_from`-style value naming the asset: `databricks:<name>`, `<source>:<name>` or `<name>`."""
    if not isinstance(value, str) or not value:
        return False
    tail = value.split(":", 1)[1] if ":" in value else value
    return tail in (asset.name, asset.facts.get("experiment_id"))


def _same_short_name(a: Asset, b: Asset) -> bool:
    return a.short_name.lower() == b.short_name.lower() and a.short_name.lower() not in ("", "default")


def _copies_of(versions: Sequence[dict], targets: Iterable[Asset], source_model: str | None = None) -> dict[str, list[str]]:
    """Source version → the target versions registered from it ("source name vN")."""
    copies: dict[str, list[str]] = {}
    target_versions = [(t, tv) for t in targets if t.asset_type == REGISTERED_MODEL for tv in t.facts.get("versions", ())]
    for v in versions:
        for target, tv in target_versions:
            by_origin = (v.get("run_id") and tv.get("origin_run_id") == v["run_id"]
                         and not (v.get("model_id") and tv.get("origin_model_id")
                                  and v["model_id"] != tv["origin_model_id"]))
            tag = tv.get("migrated_from") or ""
            by_tag = bool(source_model) and tag.split(":", 1)[-1] == f"{source_model}/{v['version']}"
            if by_origin or by_tag:
                copies.setdefault(v["version"], []).append(f"{target.source} {target.name} v{tv['version']}")
    return copies


def experiment_evidence(asset: Asset, targets: Sequence[Asset]) -> Evidence:
    experiments = [t for t in targets if t.asset_type == EXPERIMENT]
    models = [t for t in targets if t.asset_type == REGISTERED_MODEL]
    run_ids = set(asset.facts.get("run_ids", ()))
    linked: list[tuple[Asset, str]] = []
    for t in experiments:
        if _names_it(t.facts.get("tags", {}).get("waymark.migrated_from"), asset):
            linked.append((t, "its waymark.migrated_from tag names this experiment"))
        elif _same_short_name(asset, t):
            linked.append((t, "same name"))
    copied_into: list[Asset] = [m for m in models
                                if any(v.get("origin_run_id") in run_ids for v in m.facts.get("versions", ()))]
    if not linked:
        for t in experiments:
            shared = [m for m in copied_into if m.source == t.source
                      and any(v.get("experiment_id") == t.facts.get("experiment_id") for v in m.facts.get("versions", ()))]
            if shared:
                linked.append((t, f"registered model {shared[0].name} holds models trained in both"))
    for t, why in sorted(linked, key=lambda x: -x[0].facts.get("finished_runs", 0)):
        finished = t.facts.get("finished_runs", 0)
        where = f"{t.source}: experiment {t.name}"
        if finished:
            return Evidence(DONE, f"{where} has {finished} finished run(s) — linked: {why}", t.key)
        return Evidence(IN_PROGRESS, f"{where} exists but has no finished run yet — linked: {why}", t.key)
    if copied_into:
        m = copied_into[0]
        return Evidence(IN_PROGRESS, f"models of this experiment were copied to {m.source} ({m.name}), "
                                     "but no target experiment trains them", m.key)
    return Evidence(NOT_STARTED, "no linked experiment on the target")


def registered_model_evidence(asset: Asset, targets: Sequence[Asset]) -> Evidence:
    versions = list(asset.facts.get("versions", ()))
    if not versions:
        return Evidence(NOT_STARTED, "no versions to move")
    copies = _copies_of(versions, targets, asset.name)
    aliased = [v for v in versions if v.get("aliases")]
    required = aliased or [versions[-1]]
    label = {v["version"]: f"v{v['version']}" + (f" ({', '.join(v['aliases'])})" if v.get("aliases") else "")
             for v in versions}
    missing = [label[v["version"]] for v in required if v["version"] not in copies]
    done = "; ".join(f"{label[v]} → {', '.join(copies[v])}" for v in sorted(copies, key=lambda s: (len(s), s)))
    if not copies:
        return Evidence(NOT_STARTED, "no version registered on the target from this model's artifacts")
    if not missing:
        return Evidence(DONE, f"copied: {done}")
    return Evidence(IN_PROGRESS, f"copied: {done}; not yet: {', '.join(missing)}")


def serving_endpoint_evidence(asset: Asset, targets: Sequence[Asset]) -> Evidence:
    served = list(asset.facts.get("served", ()))
    run_ids = {s.get("run_id") for s in served if s.get("run_id")}
    endpoints = [t for t in targets if t.asset_type == ONLINE_ENDPOINT]
    for t in endpoints:
        if run_ids & set(t.facts.get("served_origin_run_ids", ())) or _names_it(t.facts.get("migrated_from"), asset):
            if t.facts.get("healthy"):
                return Evidence(DONE, f"{t.source}: endpoint {t.name} serves it and is healthy", t.key)
            return Evidence(IN_PROGRESS, f"{t.source}: endpoint {t.name} serves it but is not healthy", t.key)
    return Evidence(NOT_STARTED, "no target endpoint serves a copy of its model")


def _replacement(target_type: str, what: str) -> Callable[[Asset, Sequence[Asset]], Evidence]:
    def check(asset: Asset, targets: Sequence[Asset]) -> Evidence:
        for t in targets:
            if t.asset_type == target_type and (_names_it(t.facts.get("migrated_from"), asset) or _same_short_name(asset, t)):
                return Evidence(DONE, f"{t.source}: {what} {t.name} replaces it", t.key)
        return Evidence(NOT_STARTED, f"no {what} on the target replaces it")
    return check


# Source asset type → (the target asset type that proves a move, the check).
EVIDENCE_BY_ASSET_TYPE: dict[str, tuple[str, Callable[[Asset, Sequence[Asset]], Evidence]]] = {
    EXPERIMENT: (EXPERIMENT, experiment_evidence),
    REGISTERED_MODEL: (REGISTERED_MODEL, registered_model_evidence),
    SERVING_ENDPOINT: (ONLINE_ENDPOINT, serving_endpoint_evidence),
    VECTOR_INDEX: (SEARCH_INDEX, _replacement(SEARCH_INDEX, "search index")),
    FEATURE_TABLE: (FEATURE_SET, _replacement(FEATURE_SET, "feature set")),
    APP: (CONTAINER_APP, _replacement(CONTAINER_APP, "container app")),
}
# Every MLflow source yields these, even when empty; other types count as collected once seen.
ALWAYS_COLLECTED = frozenset({EXPERIMENT, REGISTERED_MODEL})


def target_assets(assets: Iterable[Asset], platforms: Sequence[str]) -> list[Asset]:
    """Assets on the given target platforms (every non-Databricks platform when none is given)."""
    return [a for a in assets if a.platform != SOURCE_PLATFORM and (not platforms or a.platform in platforms)]


def evidence_for(asset: Asset, all_assets: Sequence[Asset], platforms: Sequence[str],
                 collected_platforms: Iterable[str] | None = None) -> Evidence | None:
    """None when the store cannot say: no collector covers the target platform or asset type yet.

    `collected_platforms`: platforms with a good snapshot (an empty Fabric workspace still says
    "not started"); by default, the platforms the assets come from.
    """
    entry = EVIDENCE_BY_ASSET_TYPE.get(asset.asset_type)
    if entry is None:
        return None
    proving_type, check = entry
    targets = target_assets(all_assets, platforms)
    collected = set(collected_platforms) if collected_platforms is not None else {a.platform for a in all_assets}
    covered = {p for p in collected if p != SOURCE_PLATFORM and (not platforms or p in platforms)}
    if proving_type in ALWAYS_COLLECTED:
        if not covered:
            return None
    elif not any(t.asset_type == proving_type for t in targets):
        return None
    return check(asset, targets)
