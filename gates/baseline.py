"""The baseline a candidate is compared with, per platform and model — or why there is none.

A policy's `[baseline]` rule (gates/policy.py) names the aliases to try, in order, and whether the
version with the most endpoint traffic counts. Unity Catalog models hold `@champion`, the
workspace registry and Fabric `@Production`; Azure ML has no aliases, so there the baseline is the
version with the most traffic on the online endpoints that serve the model.

Three outcomes, never a guess:
- `found`: a version, with the alias or the traffic split that names it;
- `first_promotion`: the model never had an alias and was never served, up to the snapshot read —
  the only case where "nothing to compare with" is a fact;
- `unknown`: the model is (or was) aliased or served, yet the rule finds no baseline — the gate
  cannot tell whether the candidate is worse, so relative criteria are UNKNOWN and block.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from gates.policy import BaselineRule
from store.queries import entity_as_of, entity_history

if TYPE_CHECKING:
    from gates.context import Context

FOUND, FIRST_PROMOTION, UNKNOWN = "found", "first_promotion", "unknown"


@dataclass(frozen=True)
class Baseline:
    state: str                    # found | first_promotion | unknown
    version: str | None = None
    basis: str | None = None      # alias | traffic
    alias: str | None = None      # the alias that names it (basis alias)
    label: str = ""               # "@champion" / "most traffic (churn-aml/blue 90%)"
    evidence: str = ""            # fields and snapshots read
    summary: str = ""             # one sentence in plain words, for the page and the CLI


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _pct(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# -- serving rows (current and ever) ---------------------------------------------------------------
_SERVING_COLUMNS = ["source", "platform", "endpoint", "route", "model", "version", "registry", "traffic_pct"]


def serving_rows(ctx: "Context", history: bool = False) -> pd.DataFrame:
    """One row per Azure ML deployment and per Databricks served entity (active config; pending
    ones too in `history`), with the traffic share it takes now (None: not known)."""
    read = entity_history if history else entity_as_of
    rows: list[dict[str, Any]] = []
    eps = read(ctx.store, "aml_endpoints", points=ctx.points, columns=["endpoint", "traffic"])
    split = {(r.source, r.endpoint): r.traffic if isinstance(r.traffic, dict) else {} for r in eps.itertuples()}
    deps = read(ctx.store, "aml_deployments", points=ctx.points,
                columns=["endpoint", "deployment", "model_name", "model_version", "model_registry", "model_ref"])
    for d in deps.itertuples():
        rows.append({"source": d.source, "platform": d.platform, "endpoint": d.endpoint, "route": d.deployment,
                     "model": _text(d.model_name), "version": _text(d.model_version),
                     "registry": _text(d.model_registry),
                     "traffic_pct": _pct(split.get((d.source, d.endpoint), {}).get(d.deployment, 0))})
    ents = read(ctx.store, "served_entities", points=ctx.points,
                columns=["endpoint", "config", "served_entity_name", "entity_name", "entity_version",
                         "traffic_pct", "external"])
    if not history:
        ents = ents[ents["config"] == "active"]
    for e in ents.itertuples():
        if e.external is True:
            continue
        pct = _pct(e.traffic_pct)
        if pct is None and not history:
            # A config with no traffic routes and one entity sends it everything.
            alone = ((ents["source"] == e.source) & (ents["endpoint"] == e.endpoint)).sum() == 1
            pct = 100.0 if alone else None
        rows.append({"source": e.source, "platform": e.platform, "endpoint": e.endpoint,
                     "route": e.served_entity_name, "model": _text(e.entity_name), "version": _text(e.entity_version),
                     "registry": None, "traffic_pct": pct})
    return pd.DataFrame(rows, columns=_SERVING_COLUMNS)


def _serving_model(ctx: "Context", frame: pd.DataFrame, source: str, name: str, platform: str) -> pd.DataFrame:
    """Rows that serve this model: same platform and name; a row on another source counts unless
    that source holds a model of the same name itself (then the row serves that one)."""
    if frame.empty:
        return frame
    hit = frame[(frame["platform"] == platform) & (frame["model"] == name)]
    if hit.empty:
        return hit
    holders = set(ctx.versions.loc[ctx.versions["name"] == name, "source"])
    return hit[(hit["source"] == source) | ~hit["source"].isin(holders)]


def _route(r: Any) -> str:
    pct = "traffic unknown" if r.traffic_pct is None or pd.isna(r.traffic_pct) else f"{r.traffic_pct:g}%"
    where = f" from registry {r.registry}" if r.registry else ""
    return f"{r.endpoint}/{r.route} v{r.version or '?'}{where} {pct}"


# -- resolution --------------------------------------------------------------------------------------
def resolve(ctx: "Context", rule: BaselineRule, source: str, name: str, platform: str) -> Baseline:
    """The baseline of model `name` on `source` at the context's snapshots, under `rule`."""
    snap = f"snapshot {ctx.snapshot_ids.get(source)} of {source}"
    for alias in rule.aliases:
        version = ctx.alias_version(source, name, alias)
        if version is not None:
            return Baseline(FOUND, version, "alias", alias, f"@{alias}",
                            f"model_aliases: {name}@{alias} = v{version} ({snap})",
                            f"Baseline: v{version}, the version holding @{alias}.")
    served = _serving_model(ctx, ctx.cached("serving", lambda: serving_rows(ctx)), source, name, platform)
    traffic_note = ""
    if rule.traffic:
        found = _by_traffic(served)
        if isinstance(found, Baseline):
            return found
        traffic_note = found
    # No baseline under the rule: a first promotion only if nothing ever aliased or served it.
    history = _promotion_history(ctx, source, name, platform)
    tried = rule.describe()
    if not history:
        return Baseline(FIRST_PROMOTION, evidence=(f"no alias on {name} in any snapshot up to {snap}, and no "
                                                   "endpoint serves or served it"),
                        summary=f"First promotion: {name} has never had an alias and has never been served, "
                                "so there is no baseline to compare with.")
    why = "; ".join(([traffic_note] if traffic_note else []) + history)
    return Baseline(UNKNOWN, evidence=f"looked for {tried} ({snap}): {why}",
                    summary=f"Baseline unknown: {name} has been promoted before ({why}), but {tried} names "
                            "no version now. The gate cannot tell whether the candidate is worse.")


def _by_traffic(served: pd.DataFrame) -> Baseline | str:
    """The version with the most traffic over every endpoint serving the model, or why none."""
    if served.empty:
        return "no endpoint serves it now"
    totals: dict[tuple[str | None, str | None], float] = defaultdict(float)
    routes: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
    for r in served.itertuples():
        key = (r.registry, r.version)
        totals[key] += 0.0 if r.traffic_pct is None or pd.isna(r.traffic_pct) else float(r.traffic_pct)
        routes[key].append(_route(r))
    best = max(totals.values())
    top = [k for k, v in totals.items() if v == best]
    shown = "; ".join(x for k in totals for x in routes[k])
    if best <= 0:
        return f"served by {shown}, but no version takes traffic"
    if len(top) > 1:
        return f"versions {', '.join('v' + str(k[1]) for k in top)} take the same traffic ({best:g}%): {shown}"
    registry, version = top[0]
    if version is None:
        return f"the most traffic goes to a reference that names no version: {shown}"
    if registry:
        return (f"the most traffic ({best:g}%) goes to v{version} from Azure ML registry {registry}, "
                f"which is not collected: {shown}")
    return Baseline(FOUND, version, "traffic", None, f"most traffic ({best:g}%)",
                    f"endpoint traffic: {shown}",
                    f"Baseline: v{version}, the version taking the most traffic ({best:g}%) on the endpoints "
                    "that serve the model.")


def _promotion_history(ctx: "Context", source: str, name: str, platform: str) -> list[str]:
    """What shows the model was promoted, up to the snapshot read: aliases and serving, ever."""
    out = []
    aliases = ctx.cached("alias_history", lambda: entity_history(ctx.store, "model_aliases", points=ctx.points,
                                                                 columns=["name", "alias", "version"]))
    aliases = aliases[(aliases["source"] == source) & (aliases["name"] == name)]
    for r in aliases.sort_values(["valid_from", "alias"]).itertuples():
        when = "now" if pd.isna(r.valid_to) else f"until snapshot {int(r.valid_to)}"
        out.append(f"@{r.alias} on v{r.version} ({when})")
    served = _serving_model(ctx, ctx.cached("serving_history", lambda: serving_rows(ctx, history=True)),
                            source, name, platform)
    for label in sorted({f"served by {r.endpoint}/{r.route} (v{r.version or '?'})" for r in served.itertuples()}):
        out.append(label)
    return out
