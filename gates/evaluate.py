"""Evaluate a model version against its promotion policy, from the store (and the lineage trace).

Every criterion ends PASS, FAIL or UNKNOWN with the actual value, what was required and the
evidence used (field, run, snapshot). A missing or NaN metric is UNKNOWN — never a crash — and
UNKNOWN fails the gate unless the policy's `allow_unknown` lists the criterion.

The baseline is found per platform and model by the policy's `[baseline]` rule *at the snapshot
read* (gates/baseline.py): an alias (@champion, @Production…) or, on Azure ML, the version with the
most endpoint traffic. A candidate is a version newer than it. Only a model that was never aliased
and never served has no baseline (a first promotion); one that was, but whose baseline cannot be
found, is UNKNOWN — it blocks, it never passes as "nothing to compare with".
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from gates.artifacts import artifact_criteria
from gates.baseline import Baseline, resolve
from gates.context import Context, _s
from gates.identity import normalise
from gates.policy import Policy
from gates.result import (FAIL, PASS, UNKNOWN, BaselineRef, Criterion, GateResult, GateTarget, LineageSummary,
                          PolicyRef, ProducingRun, TargetNotFound)
from lineage.conventions import is_git_sha, version_order
from lineage.graph import NodeType
from lineage.trace import trace

# MLflow's SQL store saves ±inf as ±1.7976931348623157e308 (the largest double): any value this
# large is an infinity that was stored, not a measurement.
NOT_FINITE_ABOVE = 1e308


def _num(value: Any) -> float | None:
    """A usable metric value, or None for missing/NaN/±inf (also as MLflow stores it)/non-numeric."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and abs(f) < NOT_FINITE_ABOVE else None


def _unusable(value: Any) -> str:
    """Why a logged metric value is not usable: NaN, +inf, -inf or not a number."""
    if value is None:   # the store keeps a logged NaN as null (JSON has no NaN)
        return "NaN"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "not a number"
    if math.isnan(f):
        return "NaN"
    if math.isinf(f) or abs(f) >= NOT_FINITE_ABOVE:
        return ("+inf" if f > 0 else "-inf") + ("" if math.isinf(f) else f" (stored as {f:.4g})")
    return "not a number"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


# -- targets ---------------------------------------------------------------------------------------
def resolve_target(ctx: Context, target: str, platform: str | None = None) -> tuple[str, str, str]:
    """`model:NAME/VERSION` or `model:NAME@ALIAS` → (source, name, version). Raises TargetNotFound / ValueError."""
    kind, sep, rest = target.partition(":")
    if kind != "model" or not sep or not rest:
        raise ValueError(f"target {target!r} must be model:NAME/VERSION or model:NAME@ALIAS")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        a = ctx.aliases[(ctx.aliases["name"] == name) & (ctx.aliases["alias"] == alias)]
        if platform:
            a = a[a["platform"] == platform]
        hits = [(r.source, r.name, str(r.version), r.platform) for r in a.itertuples()]
        what = f"alias {alias!r} of model {name!r}"
    elif "/" in rest:
        name, _, version = rest.rpartition("/")
        v = ctx.versions[(ctx.versions["name"] == name) & (ctx.versions["version"].astype(str) == version)]
        if platform:
            v = v[v["platform"] == platform]
        hits = [(r.source, r.name, str(r.version), r.platform) for r in v.itertuples()]
        what = f"version {version} of model {name!r}"
    else:
        raise ValueError(f"target {target!r}: use model:NAME/VERSION or model:NAME@ALIAS")
    if not name:
        raise ValueError(f"target {target!r}: empty model name")
    if not hits:
        raise TargetNotFound(f"{what} not found{' on ' + platform if platform else ''} in the latest good snapshots "
                             f"({', '.join(f'{s} #{i}' for s, i in ctx.snapshot_ids.items()) or 'none'})")
    if len(hits) > 1:
        raise TargetNotFound(f"{target!r} is ambiguous: {len(hits)} candidates (use --platform)",
                             [f"{p}: {s} {n}/{v}" for s, n, v, p in hits])
    s, n, v, _ = hits[0]
    return s, n, v


CANDIDATE_COLUMNS = ["source", "platform", "name", "version", "baseline_state", "baseline_label", "baseline_version"]


def candidates(ctx: Context, policy_for_model) -> pd.DataFrame:
    """Per model, the versions newer than its baseline (`policy_for_model(name)` → Policy gives
    the baseline rule). A first promotion lists every version, and so does a model whose
    baseline is unknown (each of them then shows what blocks it)."""
    rows = []
    for (source, name), group in ctx.versions.groupby(["source", "name"]):
        platform = str(group["platform"].iloc[0])
        base = resolve(ctx, policy_for_model(name).baseline_for(platform), source, name, platform)
        for r in group.itertuples():
            if _s(r.status) == "FAILED_REGISTRATION":
                continue
            if base.version is None or version_order(str(r.version)) > version_order(base.version):
                rows.append({"source": source, "platform": r.platform, "name": name, "version": str(r.version),
                             "baseline_state": base.state, "baseline_label": base.label,
                             "baseline_version": base.version})
    frame = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    if frame.empty:
        return frame
    frame["_k"] = frame["version"].map(version_order)
    return frame.sort_values(["name", "platform", "_k"]).drop(columns="_k").reset_index(drop=True)



# -- evaluation ------------------------------------------------------------------------------------
def evaluate(ctx: Context, policy: Policy, source: str, name: str, version: str,
             artifact_lister=None) -> GateResult:
    """Evaluate one model version: one list of criteria per family, in the order they are shown.
    `artifact_lister(scope, source, name, version, run)` → names or raises (see gates.artifacts)."""
    version = str(version)
    mv = ctx.version_row(source, name, version)
    if mv is None:
        raise TargetNotFound(f"version {version} of model {name!r} not found on source {source!r}")
    platform = mv["platform"]
    producer = _producer(ctx, source, name, version)
    side = _baseline_side(ctx, policy, source, name, platform)
    criteria = [*producer.criteria, _registry_criterion(ctx, mv, source), *_threshold_criteria(policy, producer),
                *_baseline_criteria(policy, side, platform), *_relative_criteria(policy, producer, side),
                *_required_criteria(policy, producer, mv, name, version),
                *artifact_criteria(ctx, policy, source, name, version, producer.run, artifact_lister),
                *_latency_criteria(policy, producer)]
    lineage_summary = None
    if policy.lineage_required:
        lineage_criteria, lineage_summary = _lineage_criteria(ctx, policy, source, name, version)
        criteria += lineage_criteria

    for c in criteria:
        c.blocking = c.status == FAIL or (c.status == UNKNOWN and not _allowed(c.name, policy.allow_unknown))
    metrics, base_metrics = producer.metrics, side.metrics
    shown_metrics = sorted({b.metric for b in policy.thresholds} | {r.metric for r in policy.relative}
                           | ({policy.latency.metric} if policy.latency else set())
                           | {k for k in metrics if any(k.startswith(r.metric + policy.slice_separator)
                                                        for r in policy.relative)})
    return GateResult(
        target=GateTarget(source, platform, name, version, f"model:{name}/{version} ({platform}, {source})"),
        status=FAIL if any(c.blocking for c in criteria) else PASS,
        evaluated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        policy=PolicyRef(policy.label, policy.sha256, policy.baseline_alias, policy.baseline_for(platform).describe()),
        snapshot_ids=ctx.snapshot_ids,
        run=producer.info, baseline=side.info, criteria=criteria,
        metrics={"candidate": {k: _num(metrics.get(k)) for k in shown_metrics},
                 "baseline": {k: _num(base_metrics.get(k)) for k in shown_metrics} if side.info else {}},
        lineage=lineage_summary, baseline_state=side.base.state, baseline_summary=side.base.summary,
        metric_gaps={series: {k: _unusable(logged[k]) for k in shown_metrics if k in logged and _num(logged[k]) is None}
                     for series, logged in (("candidate", metrics), ("baseline", base_metrics if side.info else {}))})


# -- the producing run -----------------------------------------------------------------------------
def _dict(value: Any) -> dict[str, Any]:
    return dict(value or {}) if isinstance(value, dict) else {}


@dataclass
class _Producer:
    """The run that produced the version, as the criteria read it, and the `run:` criteria."""
    run: pd.Series | None
    via: str
    label: str                        # how the run is named in evidence ("no run" when none)
    info: ProducingRun | None         # GateResult.run
    criteria: list[Criterion]
    metrics: dict[str, Any]
    params: dict[str, Any]
    tags: dict[str, Any]

    def evidence(self, key: str) -> str:
        return (f"runs.metrics[{key!r}] of {self.label}" if self.run is not None
                else f"{key}: no producing run ({self.via})")

    def metric(self, key: str) -> tuple[float | None, str]:
        """The usable value of a metric (None when not) and the words shown for it."""
        if self.run is None:
            return None, "no run"
        if key not in self.metrics:
            return None, "not logged"
        value = _num(self.metrics[key])
        return value, (_unusable(self.metrics[key]) if value is None else _fmt(value))


def _producer(ctx: Context, source: str, name: str, version: str) -> _Producer:
    run, via, named_run = ctx.producing_run(source, name, version)
    if run is None:
        return _Producer(None, via, "no run", None, [Criterion("run:producing", "run", FAIL, named_run or "none",
                                                               "the run that produced the version", via)],
                         {}, {}, {})
    info = ProducingRun(source=run["source"], platform=run["platform"], run_id=run["run_id"],
                        run_name=_s(run["run_name"]), user_id=_s(run["user_id"]), via=via,
                        git_sha=_s(run["git_sha"]), lifecycle_stage=_s(run["lifecycle_stage"]),
                        authors=sorted(_authors(run)))
    label = (f"run {info.run_name or run['run_id']} ({run['platform']}, {str(run['run_id'])[:8]}…, "
             f"snapshot {ctx.snapshot_ids.get(run['source'])} of {run['source']})")
    criteria = [Criterion("run:producing", "run", PASS, label, "the run that produced the version", f"found via {via}")]
    if _s(run["lifecycle_stage"]) == "deleted":
        criteria.append(Criterion("run:not_deleted", "run", FAIL, "deleted", "an active run",
                                  f"runs.lifecycle_stage of {label}"))
    return _Producer(run, via, label, info, criteria, _dict(run["metrics"]), _dict(run["params"]), _dict(run["tags"]))


def _registry_criterion(ctx: Context, mv: pd.Series, source: str) -> Criterion:
    status = _s(mv.get("status")) or "unknown"
    return Criterion("registry:status", "registry", PASS if status == "READY" else
                     (UNKNOWN if status == "unknown" else FAIL), status, "READY",
                     f"model_versions.status, snapshot {ctx.snapshot_ids.get(source)} of {source}")


# -- metrics: absolute bounds, latency, relative to the baseline ------------------------------------
def _bound_criterion(name: str, kind: str, bound, producer: _Producer) -> Criterion:
    value, shown = producer.metric(bound.metric)
    return Criterion(name, kind, _check_bound(value, bound), shown, bound.describe(), producer.evidence(bound.metric),
                     value=value, min=bound.min, max=bound.max)


def _threshold_criteria(policy: Policy, producer: _Producer) -> list[Criterion]:
    return [_bound_criterion(f"threshold:{b.metric}", "threshold", b, producer) for b in policy.thresholds]


def _latency_criteria(policy: Policy, producer: _Producer) -> list[Criterion]:
    if policy.latency is None:
        return []
    return [_bound_criterion(f"latency:{policy.latency.metric}", "latency", policy.latency, producer)]


@dataclass
class _BaselineSide:
    """The baseline version, its run's metrics, and how evidence names it."""
    base: Baseline
    info: BaselineRef | None          # GateResult.baseline (None when there is no baseline version)
    metrics: dict[str, Any]
    label: str


def _baseline_side(ctx: Context, policy: Policy, source: str, name: str, platform: str) -> _BaselineSide:
    base = resolve(ctx, policy.baseline_for(platform), source, name, platform)
    if base.version is None:
        return _BaselineSide(base, None, {}, "")
    brun, bvia, bnamed = ctx.producing_run(source, name, base.version)
    info = BaselineRef(alias=base.alias, label=base.label, basis=base.basis, version=base.version, source=source,
                       run_id=brun["run_id"] if brun is not None else bnamed,
                       run_name=_s(brun["run_name"]) if brun is not None else None, via=bvia,
                       snapshot_id=ctx.snapshot_ids.get(source), evidence=base.evidence)
    metrics = dict(brun["metrics"]) if brun is not None and isinstance(brun["metrics"], dict) else {}
    label = f"{name} v{base.version} = {base.label} (snapshot {ctx.snapshot_ids.get(source)} of {source})"
    return _BaselineSide(base, info, metrics, label)


def _baseline_criteria(policy: Policy, side: _BaselineSide, platform: str) -> list[Criterion]:
    if not policy.relative:
        return []
    base = side.base
    if base.state == "found":
        status, actual = PASS, f"v{base.version} ({base.label})"
    elif base.state == "first_promotion":
        status, actual = (PASS if policy.no_baseline == "pass" else UNKNOWN), "none: first promotion"
    else:
        status, actual = UNKNOWN, "not found"
    return [Criterion("baseline", "baseline", status, actual, policy.baseline_for(platform).describe(), base.evidence)]


def _relative_criteria(policy: Policy, producer: _Producer, side: _BaselineSide) -> list[Criterion]:
    out: list[Criterion] = []
    base, base_metrics = side.base, side.metrics
    for rel in policy.relative:
        keys = [rel.metric]
        if policy.slices:
            prefix = rel.metric + policy.slice_separator
            keys += sorted({k for k in list(base_metrics) + list(producer.metrics) if k.startswith(prefix)})
        for key in keys:
            cname = f"relative:{key}"
            value, shown = producer.metric(key)
            if base.version is None:
                first = base.state == "first_promotion"
                st = PASS if first and policy.no_baseline == "pass" else UNKNOWN
                out.append(Criterion(cname, "relative", st, shown, "no worse than the baseline",
                                     ("first promotion, nothing to compare with: " if first else
                                      "baseline unknown: ") + base.evidence, value=value))
                continue
            if key != rel.metric and key not in base_metrics:
                continue  # a slice only the candidate logged: nothing to be worse than
            bvalue = _num(base_metrics.get(key))
            if bvalue is None:
                why = "not logged" if key not in base_metrics else _unusable(base_metrics[key])
                out.append(Criterion(cname, "relative", UNKNOWN, shown, f"baseline {why}",
                                     f"{side.label}: runs.metrics[{key!r}] {why}", value=value))
                continue
            if rel.lower_is_better:
                limit = bvalue + rel.margin
                required = f"≤ {limit:.4g} (baseline {bvalue:.4g} + {rel.margin:g})"
                st = UNKNOWN if value is None else (PASS if value <= limit + 1e-12 else FAIL)
                bounds = {"max": limit}
            else:
                limit = bvalue - rel.margin
                required = f"≥ {limit:.4g} (baseline {bvalue:.4g} − {rel.margin:g})"
                st = UNKNOWN if value is None else (PASS if value >= limit - 1e-12 else FAIL)
                bounds = {"min": limit}
            out.append(Criterion(cname, "relative", st, shown, required,
                                 f"{producer.evidence(key)}; baseline {side.label}", value=value, baseline=bvalue,
                                 **bounds))
    return out


# -- required params, tags, git SHA -----------------------------------------------------------------
def _required_criteria(policy: Policy, producer: _Producer, mv: pd.Series, name: str,
                       version: str) -> list[Criterion]:
    out: list[Criterion] = []
    run, run_label = producer.run, producer.label
    if policy.require_git_sha:
        sha = _s(run["git_sha"]) if run is not None else None
        frm = _s(run["git_sha_from"]) if run is not None else None
        # Only a commit SHA is code evidence: a branch name or placeholder fails, shown as it is.
        valid = bool(sha) and is_git_sha(sha)
        out.append(Criterion("required:git_sha", "required",
                             PASS if valid else (FAIL if run is not None else UNKNOWN),
                             (sha[:12] if valid else f"{sha[:40]} (not a commit SHA)") if sha else "none",
                             "a git commit SHA (7–40 hex digits) on the run",
                             f"runs.git_sha{' (from ' + frm + ')' if frm else ''} of {run_label}"))
    for p in policy.required_params:
        present = _s(producer.params.get(p))
        out.append(Criterion(f"param:{p}", "required", PASS if present else (FAIL if run is not None else UNKNOWN),
                             present or "missing", "logged", f"runs.params[{p!r}] of {run_label}"))
    mv_tags = _dict(mv.get("tags"))
    for t in policy.required_tags:
        on_run, on_mv = _s(producer.tags.get(t)), _s(mv_tags.get(t))
        present = on_run or on_mv
        where = (f"runs.tags[{t!r}] of {run_label}" if on_run else
                 f"model_versions.tags[{t!r}] of {name}/{version}" if on_mv else
                 f"neither runs.tags nor model_versions.tags has {t!r}")
        out.append(Criterion(f"tag:{t}", "required", PASS if present else FAIL, present or "missing", "set", where))
    return out


def _authors(run: pd.Series) -> set[str]:
    """The run's user names as the platform wrote them (one per person: compared in canonical form;
    reviews map them to identities for separation of duties)."""
    out: dict[str, str] = {}
    for value in (run.get("user_id"), (run["tags"] or {}).get("mlflow.user") if isinstance(run["tags"], dict) else None):
        # MLflow records "unknown" when the client did not know its user: that names nobody.
        key = normalise(_s(value))
        if key and key != "unknown":
            out.setdefault(key, _s(value))
    return set(out.values())


def _allowed(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _check_bound(value: float | None, bound) -> str:
    if value is None:
        return UNKNOWN
    if bound.min is not None and value < bound.min:
        return FAIL
    if bound.max is not None and value > bound.max:
        return FAIL
    return PASS


# -- lineage ---------------------------------------------------------------------------------------
def _lineage_criteria(ctx: Context, policy: Policy, source: str, name: str,
                      version: str) -> tuple[list[Criterion], LineageSummary | None]:
    graph = ctx.graph()
    node = next((n for n in graph.ids_of_type(NodeType.MODEL_VERSION)
                 if (d := graph.node_data(n))["attrs"].get("source") == source and d["name"] == name
                 and str(d["version"]) == version), None)
    if node is None:
        return [Criterion("lineage:trace", "lineage", FAIL, "no node", "a trace",
                          f"the lineage graph has no node for {name}/{version} on {source}")], None
    as_of = ", ".join(f"{s} #{i}" for s, i in ctx.snapshot_ids.items())
    answer = trace(graph, node, as_of=as_of)
    summary = LineageSummary(node, answer.runs, answer.git_shas, answer.inputs, answer.gaps)
    ev = f"lineage trace of {node} at {as_of}"
    # A trace that reaches no run proves nothing about how the version was made.
    out = [Criterion("lineage:trace", "lineage", PASS if answer.runs else FAIL,
                     f"{len(answer.runs)} run(s)", "a trace reaching ≥ 1 run", ev)]
    shas = answer.git_shas
    out.append(Criterion("lineage:git_sha", "lineage", PASS if shas else FAIL,
                         ", ".join(s[:10] for s in shas) or "none", "≥ 1 git SHA upstream", ev))
    # Only the data the runs read counts here; tables further upstream (level "table", from table
    # lineage) carry no version by nature and are listed for context.
    inputs = [i for i in answer.inputs if i.level == "version"]
    upstream = [i.name for i in answer.inputs if i.level != "version"]
    context = f" (upstream: {', '.join(upstream)})" if upstream else ""
    unversioned = [f"{i.name}@{i.version if i.version is not None else '?'}"
                   for i in inputs if not i.version_known]
    if not inputs:
        st, actual = FAIL, "no inputs"
    elif unversioned:
        st, actual = FAIL, "unversioned: " + ", ".join(unversioned) + context
    else:
        st, actual = PASS, ", ".join(f"{i.name}@{i.version}" for i in inputs) + context
    out.append(Criterion("lineage:versioned_inputs", "lineage", st, actual, "every input versioned", ev))
    bad = [g for g in answer.gaps if policy.forbids(g.kind.value)]
    out.append(Criterion("lineage:gaps", "lineage", FAIL if bad else PASS,
                         "; ".join(f"{g.kind.value}: {g.message}" for g in bad) or "none",
                         "no gap of: " + ", ".join(policy.forbidden_gaps), ev))
    return out, summary
