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
- serving endpoint → an Azure ML online endpoint whose deployments with traffic serve copies of
  the versions it serves (its active config, entities with traffic). A copy is found by run: the
  deployed workspace version's MLmodel origin run, or the run of the Databricks version its
  `waymark.migrated_from` tag names, equals the served version's producing run. Done = copies of
  every served version take traffic and the endpoint is healthy; in progress = some of them, or
  deployed without traffic, or not healthy. "Healthy" is the provisioning state only (endpoint and
  every deployment with traffic Succeeded): latency and error SLOs need the config's [[slo]] and
  the metric window, which the Endpoint health page judges; the burn-up replays history, where
  only the control plane is versioned. Facts: source `served` [{model, version, run_id,
  traffic_pct}], target `served_origin_run_ids`, `staged_origin_run_ids`, `served_copies_of`,
  `healthy`, `health`.
- vector index → an Azure AI Search index that replaces it, linked (strongest first) by a
  `migrated_from` fact naming it, the same short name once `-`/`_` and an `index`/`idx`/`vs`
  suffix are ignored (`support_tickets_index` ↔ `support-tickets`), or being fed by an indexer
  whose data source or container is named after the index's source table (`support_tickets`).
  Done when it has a vector field and documents; in progress when linked but without either.
  AI Search keeps no free-form tags on an index, so a name is the only field a team can set.
- feature table → a Fabric feature set naming it or of the same short name (done); else a OneLake
  shortcut whose target is the table's storage location, or a lakehouse table of the same name:
  in progress (features reachable from Fabric — hybrid; mark "stays" if they stay on Databricks).
- app → a container app whose `migrated_from` fact names it or with the same short name (done).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from checklist.assets import (APP, CONTAINER_APP, EXPERIMENT, FEATURE_SET, FEATURE_TABLE, LAKEHOUSE_TABLE,
                              ONELAKE_SHORTCUT, ONLINE_ENDPOINT, REGISTERED_MODEL, SEARCH_INDEX, SERVING_ENDPOINT,
                              SOURCE_PLATFORM, UC_MODEL, VECTOR_INDEX, Asset, same_location)
from lineage.conventions import migrated_from_name, parse_migrated_from, version_order

NOT_STARTED, IN_PROGRESS, DONE = "not_started", "in_progress", "done"


@dataclass(frozen=True)
class Evidence:
    status: str
    detail: str
    target_key: str | None = None


def _names_it(value: object, asset: Asset) -> bool:
    """A `migrated_from`-style value naming the asset: `databricks:<name>`, `<source>:<name>` or `<name>`."""
    name = migrated_from_name(value)
    return name is not None and name in (asset.name, asset.facts.get("experiment_id"))


def _same_short_name(a: Asset, b: Asset) -> bool:
    return a.short_name.lower() == b.short_name.lower() and a.short_name.lower() not in ("", "default")


def _copies_of(versions: Sequence[dict], targets: Iterable[Asset], source: Asset | None = None) -> dict[str, list[str]]:
    """Source version → the target versions registered from it ("source name vN"): by the MLmodel
    origin run, or by a migrated-from tag naming the source's platform, model and version (the
    lineage's own parse, so the checklist and the graph link the same copies)."""
    copies: dict[str, list[str]] = {}
    target_versions = [(t, tv) for t in targets if t.asset_type == REGISTERED_MODEL for tv in t.facts.get("versions", ())]
    for v in versions:
        for target, tv in target_versions:
            by_origin = (v.get("run_id") and tv.get("origin_run_id") == v["run_id"]
                         and not (v.get("model_id") and tv.get("origin_model_id")
                                  and v["model_id"] != tv["origin_model_id"]))
            tagged = parse_migrated_from(tv.get("migrated_from") or "")
            by_tag = (source is not None and tagged is not None
                      and tagged == (source.platform, source.name, str(v["version"])))
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
        if t.facts.get("runs_known") is False:
            return Evidence(IN_PROGRESS, f"{where} exists (Fabric item; its runs are not collected — add the "
                                         f"workspace's MLflow source to see them) — linked: {why}", t.key)
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
    copies = _copies_of(versions, targets, asset)
    aliased = [v for v in versions if v.get("aliases")]
    required = aliased or [versions[-1]]
    label = {v["version"]: f"v{v['version']}" + (f" ({', '.join(v['aliases'])})" if v.get("aliases") else "")
             for v in versions}
    missing = [label[v["version"]] for v in required if v["version"] not in copies]
    done = "; ".join(f"{label[v]} → {', '.join(copies[v])}" for v in sorted(copies, key=version_order))
    if not copies:
        named = [t for t in targets if t.asset_type == REGISTERED_MODEL and _same_short_name(asset, t)]
        if named:
            t = named[0]
            return Evidence(IN_PROGRESS, f"{t.source}: model {t.name} of the same name exists, but no version of it "
                                         "is traced to this model's runs", t.key)
        return Evidence(NOT_STARTED, "no version registered on the target from this model's artifacts")
    if not missing:
        return Evidence(DONE, f"copied: {done}")
    return Evidence(IN_PROGRESS, f"copied: {done}; not yet: {', '.join(missing)}")


def _label(s: dict) -> str:
    return f"{s.get('model')} v{s.get('version')}"


def serving_endpoint_evidence(asset: Asset, targets: Sequence[Asset]) -> Evidence:
    served = [s for s in asset.facts.get("served", ()) if s.get("traffic_pct") is None or s["traffic_pct"] > 0]
    wanted = [s for s in served if s.get("run_id") or (s.get("model") and s.get("version"))]
    best: tuple[tuple[int, int, int, int], Asset, list[dict], list[dict]] | None = None
    for t in (t for t in targets if t.asset_type == ONLINE_ENDPOINT):
        live_runs = set(t.facts.get("served_origin_run_ids", ()))
        staged_runs = set(t.facts.get("staged_origin_run_ids", ()))
        copies = set(t.facts.get("served_copies_of", ()))
        live = [s for s in wanted if s.get("run_id") in live_runs or f"{s.get('model')}/{s.get('version')}" in copies]
        staged = [s for s in wanted if s not in live and s.get("run_id") in staged_runs]
        named = _names_it(t.facts.get("migrated_from"), asset)
        if not (live or staged or named):
            continue
        score = (len(live), int(bool(t.facts.get("healthy"))), int(named), len(staged))
        if best is None or score > best[0]:
            best = (score, t, live, staged)
    if best is None:
        return Evidence(NOT_STARTED, "no target endpoint serves a copy of its model")
    _, t, live, staged = best
    where = f"{t.source}: endpoint {t.name}"
    health = t.facts.get("health") or ("healthy" if t.facts.get("healthy") else "not healthy")
    if not live and not staged:   # linked by name only: nothing to compare version by version
        if t.facts.get("healthy"):
            return Evidence(DONE, f"{where} replaces it (its migrated_from names it) and is healthy ({health})", t.key)
        return Evidence(IN_PROGRESS, f"{where} replaces it (its migrated_from names it) but is not healthy: {health}",
                        t.key)
    missing = [s for s in wanted if s not in live]
    said = f"serves copies of {', '.join(_label(s) for s in live)}" if live else "serves no copy yet"
    if staged:
        said += f"; deploys {', '.join(_label(s) for s in staged)} without traffic"
    if live and not missing and t.facts.get("healthy"):
        return Evidence(DONE, f"{where} {said} (everything this endpoint serves) — healthy: {health}", t.key)
    if not t.facts.get("healthy"):
        return Evidence(IN_PROGRESS, f"{where} {said}, but is not healthy: {health}", t.key)
    return Evidence(IN_PROGRESS, f"{where} {said}; not yet: {', '.join(_label(s) for s in missing)}", t.key)


_INDEX_SUFFIX = re.compile(r"(_|^)(vector_index|vs_index|index|idx|vs)$")


def _index_stem(name: str) -> str:
    """`support_tickets_index` / `support-tickets` → `support_tickets`."""
    short = name.rstrip("/").split("/")[-1].split(".")[-1].lower().replace("-", "_")
    stem = _INDEX_SUFFIX.sub("", short).strip("_")
    return stem or short


def vector_index_evidence(asset: Asset, targets: Sequence[Asset]) -> Evidence:
    stem = _index_stem(asset.name)
    table = asset.facts.get("source_table")
    table_stem = _index_stem(table) if table else None
    found: list[tuple[int, Asset, str]] = []
    for t in (t for t in targets if t.asset_type == SEARCH_INDEX):
        if _names_it(t.facts.get("migrated_from"), asset):
            found.append((0, t, "its migrated_from names it"))
        elif _index_stem(t.name) == stem:
            found.append((1, t, "same name"))
        elif table_stem and (_index_stem(t.name) == table_stem or any(
                table_stem in (_index_stem(f.get("data_source") or ""), _index_stem(f.get("container") or ""))
                for f in t.facts.get("feeds", ()))):
            found.append((2, t, f"fed from data named after its source table {table}"))
    if not found:
        return Evidence(NOT_STARTED, "no search index on the target replaces it")
    _, t, why = min(found, key=lambda f: f[0])
    where = f"{t.source}: search index {t.name}"
    vectors, count = t.facts.get("vector_fields"), t.facts.get("document_count")
    if vectors is not None and not vectors:
        return Evidence(IN_PROGRESS, f"{where} is linked ({why}) but has no vector field", t.key)
    if count is None:   # statistics not read (no role, or the call failed): unknown is not done
        return Evidence(IN_PROGRESS, f"{where} is linked ({why}) but its document count could not be read", t.key)
    if count == 0:
        return Evidence(IN_PROGRESS, f"{where} is linked ({why}) but holds no documents yet", t.key)
    holds = f", {count} documents"
    fields = f" (vector field {', '.join(vectors)}{holds})" if vectors else ""
    return Evidence(DONE, f"{where} replaces it{fields} — linked: {why}", t.key)


def feature_table_evidence(asset: Asset, targets: Sequence[Asset]) -> Evidence:
    replaced = _replacement(FEATURE_SET, "feature set")(asset, targets)
    if replaced.status == DONE:
        return replaced
    location = asset.facts.get("storage_location")
    for t in targets:
        if t.asset_type == ONELAKE_SHORTCUT and same_location(t.facts.get("target_location"), location):
            return Evidence(IN_PROGRESS, f"{t.source}: OneLake shortcut {t.name} reaches its storage — reachable "
                                         "from Fabric (hybrid); mark it \"stays\" if the features stay on "
                                         "Databricks", t.key)
    for t in targets:
        if t.asset_type == LAKEHOUSE_TABLE and (same_location(t.facts.get("location"), location)
                                                or str(t.facts.get("table", "")).lower() == asset.short_name.lower()):
            return Evidence(IN_PROGRESS, f"{t.source}: lakehouse table {t.name} holds it (a copy or a shortcut) — "
                                         "no feature set yet", t.key)
    return Evidence(NOT_STARTED, "no feature set, shortcut or lakehouse table on the target holds it")


def _replacement(target_type: str, what: str) -> Callable[[Asset, Sequence[Asset]], Evidence]:
    def check(asset: Asset, targets: Sequence[Asset]) -> Evidence:
        for t in targets:
            if t.asset_type == target_type and (_names_it(t.facts.get("migrated_from"), asset) or _same_short_name(asset, t)):
                return Evidence(DONE, f"{t.source}: {what} {t.name} replaces it", t.key)
        return Evidence(NOT_STARTED, f"no {what} on the target replaces it")
    return check


# Source asset type → (the target asset types that can prove a move, the check).
EVIDENCE_BY_ASSET_TYPE: dict[str, tuple[tuple[str, ...], Callable[[Asset, Sequence[Asset]], Evidence]]] = {
    EXPERIMENT: ((EXPERIMENT,), experiment_evidence),
    REGISTERED_MODEL: ((REGISTERED_MODEL,), registered_model_evidence),
    UC_MODEL: ((REGISTERED_MODEL,), registered_model_evidence),
    SERVING_ENDPOINT: ((ONLINE_ENDPOINT,), serving_endpoint_evidence),
    VECTOR_INDEX: ((SEARCH_INDEX,), vector_index_evidence),
    FEATURE_TABLE: ((FEATURE_SET, ONELAKE_SHORTCUT, LAKEHOUSE_TABLE), feature_table_evidence),
    APP: ((CONTAINER_APP,), _replacement(CONTAINER_APP, "container app")),
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
    proving_types, check = entry
    targets = target_assets(all_assets, platforms)
    collected = set(collected_platforms) if collected_platforms is not None else {a.platform for a in all_assets}
    covered = {p for p in collected if p != SOURCE_PLATFORM and (not platforms or p in platforms)}
    if ALWAYS_COLLECTED.intersection(proving_types):
        if not covered:
            return None
    elif not any(t.asset_type in proving_types for t in targets):
        return None
    return check(asset, targets)
