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
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from gates.policy import Policy
from lineage.conventions import is_git_sha, version_sort_key
from store.db import Store
from store.queries import AsOf, SnapshotPoint, entity_as_of, resolve_as_of

PASS, FAIL, UNKNOWN = "PASS", "FAIL", "UNKNOWN"


class TargetNotFound(LookupError):
    def __init__(self, message: str, candidates: list[str] | None = None):
        super().__init__(message)
        self.candidates = candidates or []


@dataclass
class Criterion:
    name: str                 # stable id: threshold:roc_auc, relative:f1_score, tag:owner, lineage:gaps…
    kind: str                 # threshold | relative | required | artifact | lineage | latency | registry | run
    status: str               # PASS | FAIL | UNKNOWN
    actual: str
    required: str
    evidence: str
    blocking: bool = False    # FAIL, or UNKNOWN not allowed by the policy


@dataclass
class GateResult:
    target: dict[str, Any]
    status: str
    evaluated_at: str
    policy: dict[str, Any]
    snapshot_ids: dict[str, int]
    run: dict[str, Any] | None
    baseline: dict[str, Any] | None
    criteria: list[Criterion]
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)
    lineage: dict[str, Any] | None = None
    # found | first_promotion | unknown, and one sentence saying so in plain words
    baseline_state: str = ""
    baseline_summary: str = ""
    # metrics logged but not usable (NaN, ±inf as MLflow stores it): series → metric → why
    metric_gaps: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def blocking(self) -> list[Criterion]:
        return [c for c in self.criteria if c.blocking]

    def counts(self) -> dict[str, int]:
        out = {PASS: 0, FAIL: 0, UNKNOWN: 0}
        for c in self.criteria:
            out[c.status] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["counts"] = self.counts()
        out["blocking"] = [c.name for c in self.blocking]
        return out


# -- the data one evaluation reads -----------------------------------------------------------------
class Context:
    """Entities at one point in time (and the lineage graph, built on first use), shared by evaluations."""

    def __init__(self, store: Store, as_of: AsOf = None, points: dict[str, SnapshotPoint] | None = None,
                 graph: Any = None):
        """`graph`: an already built lineage graph for the same snapshots (the app shares its cached
        one), so a gate never rebuilds what the lineage pages hold."""
        self.store = store
        self.points = resolve_as_of(store, as_of) if points is None else points
        self.versions = entity_as_of(store, "model_versions", points=self.points)
        self.aliases = entity_as_of(store, "model_aliases", points=self.points)
        self.origins = entity_as_of(store, "model_origins", points=self.points)
        self.runs = entity_as_of(store, "runs", points=self.points)
        self.logged_models = entity_as_of(store, "logged_models", points=self.points)
        self._graph: Any = graph
        self._graph_error: str | None = None
        self._serving: pd.DataFrame | None = None
        self._cache: dict[str, Any] = {}

    @property
    def snapshot_ids(self) -> dict[str, int]:
        return {s: p.snapshot_id for s, p in sorted(self.points.items())}

    def graph(self):
        if self._graph is None and self._graph_error is None:
            try:
                from lineage.load import load_graph

                self._graph = load_graph(self.store, self.points)
            except ImportError as e:  # lineage not available in this install
                self._graph_error = f"lineage package unavailable: {e}"
        return self._graph

    def serving(self) -> pd.DataFrame:
        """Endpoint routes (Azure ML deployments, Databricks served entities) with their traffic."""
        if self._serving is None:
            from gates.baseline import serving_rows

            self._serving = serving_rows(self)
        return self._serving

    def cached(self, key: str, read):
        """`read()` once per context (history frames the baseline looks at for every model)."""
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    def baseline(self, policy: Policy, source: str, name: str, platform: str):
        from gates.baseline import resolve

        return resolve(self, policy.baseline_for(platform), source, name, platform)

    # lookups ------------------------------------------------------------------------------------
    def version_row(self, source: str, name: str, version: str) -> pd.Series | None:
        v = self.versions
        hit = v[(v["source"] == source) & (v["name"] == name) & (v["version"].astype(str) == str(version))]
        return None if hit.empty else hit.iloc[0]

    def alias_version(self, source: str, name: str, alias: str) -> str | None:
        a = self.aliases
        hit = a[(a["source"] == source) & (a["name"] == name) & (a["alias"] == alias)]
        return None if hit.empty else str(hit.iloc[0]["version"])

    def producing_run(self, source: str, name: str, version: str) -> tuple[pd.Series | None, str, str | None]:
        """(run row, how it was found, the run id named) — registry run_id, MLmodel origin, logged model."""
        mv = self.version_row(source, name, version)
        if mv is None:
            return None, "version not collected", None
        named: list[tuple[str, str]] = []
        if _s(mv.get("run_id")):
            named.append((mv["run_id"], f"model_versions.run_id ({source})"))
        o = self.origins
        hit = o[(o["source"] == source) & (o["name"] == name) & (o["version"].astype(str) == str(version))]
        if not hit.empty and _s(hit.iloc[0]["origin_run_id"]):
            named.append((hit.iloc[0]["origin_run_id"], f"model_origins.origin_run_id: the MLmodel file ({source})"))
        if _s(mv.get("model_id")):
            lm = self.logged_models
            lhit = lm[(lm["source"] == source) & (lm["model_id"] == mv["model_id"])]
            if not lhit.empty and _s(lhit.iloc[0]["source_run_id"]):
                named.append((lhit.iloc[0]["source_run_id"], f"logged_models.source_run_id ({source})"))
        for run_id, via in named:
            runs = self.runs[self.runs["run_id"] == run_id]
            if runs.empty:
                continue
            same = runs[runs["source"] == source]
            row = (same if not same.empty else runs).iloc[0]
            return row, via, run_id
        if named:
            return None, f"{named[0][1]} names run {named[0][0]}, which no collected source holds", named[0][0]
        return None, "the registry records no run and the MLmodel names none", None

    def latest_source_of(self, name: str, platform: str | None) -> list[tuple[str, str]]:
        v = self.versions[self.versions["name"] == name]
        if platform:
            v = v[v["platform"] == platform]
        return sorted({(r.source, r.platform) for r in v.itertuples()})


def _s(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


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
        base = ctx.baseline(policy_for_model(name), source, name, platform)
        for r in group.itertuples():
            if _s(r.status) == "FAILED_REGISTRATION":
                continue
            if base.version is None or version_sort_key(str(r.version)) > version_sort_key(base.version):
                rows.append({"source": source, "platform": r.platform, "name": name, "version": str(r.version),
                             "baseline_state": base.state, "baseline_label": base.label,
                             "baseline_version": base.version})
    frame = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    if frame.empty:
        return frame
    frame["_k"] = frame["version"].map(version_sort_key)
    return frame.sort_values(["name", "platform", "_k"]).drop(columns="_k").reset_index(drop=True)


# -- evaluation ------------------------------------------------------------------------------------
def evaluate(ctx: Context, policy: Policy, source: str, name: str, version: str,
             artifact_lister=None) -> GateResult:
    """Evaluate one model version. `artifact_lister(source, name, version, run)` → names or raises."""
    version = str(version)
    mv = ctx.version_row(source, name, version)
    if mv is None:
        raise TargetNotFound(f"version {version} of model {name!r} not found on source {source!r}")
    platform = mv["platform"]
    criteria: list[Criterion] = []
    run, via, named_run = ctx.producing_run(source, name, version)
    run_info = None
    if run is not None:
        run_info = {"source": run["source"], "platform": run["platform"], "run_id": run["run_id"],
                    "run_name": _s(run["run_name"]), "user_id": _s(run["user_id"]), "via": via,
                    "git_sha": _s(run["git_sha"]), "lifecycle_stage": _s(run["lifecycle_stage"]),
                    "authors": sorted(_authors(run))}
        run_label = (f"run {run_info['run_name'] or run['run_id']} ({run['platform']}, {str(run['run_id'])[:8]}…, "
                     f"snapshot {ctx.snapshot_ids.get(run['source'])} of {run['source']})")
        criteria.append(Criterion("run:producing", "run", PASS, run_label, "the run that produced the version",
                                  f"found via {via}"))
        if _s(run["lifecycle_stage"]) == "deleted":
            criteria.append(Criterion("run:not_deleted", "run", FAIL, "deleted", "an active run",
                                      f"runs.lifecycle_stage of {run_label}"))
    else:
        run_label = "no run"
        criteria.append(Criterion("run:producing", "run", FAIL, named_run or "none",
                                  "the run that produced the version", via))
    status = _s(mv.get("status")) or "unknown"
    criteria.append(Criterion("registry:status", "registry", PASS if status == "READY" else
                              (UNKNOWN if status == "unknown" else FAIL), status, "READY",
                              f"model_versions.status, snapshot {ctx.snapshot_ids.get(source)} of {source}"))

    metrics = dict(run["metrics"] or {}) if run is not None and isinstance(run["metrics"], dict) else {}
    params = dict(run["params"] or {}) if run is not None and isinstance(run["params"], dict) else {}
    run_tags = dict(run["tags"] or {}) if run is not None and isinstance(run["tags"], dict) else {}
    mv_tags = dict(mv["tags"] or {}) if isinstance(mv.get("tags"), dict) else {}

    def metric_evidence(key: str) -> str:
        return f"runs.metrics[{key!r}] of {run_label}" if run is not None else f"{key}: no producing run ({via})"

    def metric_state(key: str) -> tuple[float | None, str]:
        if run is None:
            return None, "no run"
        if key not in metrics:
            return None, "not logged"
        value = _num(metrics[key])
        return value, (_unusable(metrics[key]) if value is None else _fmt(value))

    # absolute thresholds
    for bound in policy.thresholds:
        value, shown = metric_state(bound.metric)
        criteria.append(Criterion(f"threshold:{bound.metric}", "threshold", _check_bound(value, bound), shown,
                                  bound.describe(), metric_evidence(bound.metric)))

    # relative to the baseline
    base = ctx.baseline(policy, source, name, platform)
    baseline_version = base.version
    baseline_info = None
    base_metrics: dict[str, Any] = {}
    if baseline_version is not None:
        brun, bvia, bnamed = ctx.producing_run(source, name, baseline_version)
        baseline_info = {"alias": base.alias, "label": base.label, "basis": base.basis, "version": baseline_version,
                         "source": source, "run_id": brun["run_id"] if brun is not None else bnamed,
                         "run_name": _s(brun["run_name"]) if brun is not None else None, "via": bvia,
                         "snapshot_id": ctx.snapshot_ids.get(source), "evidence": base.evidence}
        if brun is not None and isinstance(brun["metrics"], dict):
            base_metrics = dict(brun["metrics"])
        base_label = f"{name} v{baseline_version} = {base.label} (snapshot {ctx.snapshot_ids.get(source)} of {source})"
    rule = policy.baseline_for(platform)
    if policy.relative:
        if base.state == "found":
            bst, bactual = PASS, f"v{baseline_version} ({base.label})"
        elif base.state == "first_promotion":
            bst, bactual = (PASS if policy.no_baseline == "pass" else UNKNOWN), "none: first promotion"
        else:
            bst, bactual = UNKNOWN, "not found"
        criteria.append(Criterion("baseline", "baseline", bst, bactual, rule.describe(), base.evidence))
    for rel in policy.relative:
        keys = [rel.metric]
        if policy.slices:
            prefix = rel.metric + policy.slice_separator
            keys += sorted({k for k in list(base_metrics) + list(metrics) if k.startswith(prefix)})
        for key in keys:
            cname = f"relative:{key}"
            value, shown = metric_state(key)
            if baseline_version is None:
                first = base.state == "first_promotion"
                st = PASS if first and policy.no_baseline == "pass" else UNKNOWN
                criteria.append(Criterion(cname, "relative", st, shown, "no worse than the baseline",
                                          ("first promotion, nothing to compare with: " if first else
                                           "baseline unknown: ") + base.evidence))
                continue
            if key != rel.metric and key not in base_metrics:
                continue  # a slice only the candidate logged: nothing to be worse than
            bvalue = _num(base_metrics.get(key))
            if bvalue is None:
                why = "not logged" if key not in base_metrics else _unusable(base_metrics[key])
                criteria.append(Criterion(cname, "relative", UNKNOWN, shown, f"baseline {why}",
                                          f"{base_label}: runs.metrics[{key!r}] {why}"))
                continue
            if rel.lower_is_better:
                limit = bvalue + rel.margin
                required = f"≤ {limit:.4g} (baseline {bvalue:.4g} + {rel.margin:g})"
                st = UNKNOWN if value is None else (PASS if value <= limit + 1e-12 else FAIL)
            else:
                limit = bvalue - rel.margin
                required = f"≥ {limit:.4g} (baseline {bvalue:.4g} − {rel.margin:g})"
                st = UNKNOWN if value is None else (PASS if value >= limit - 1e-12 else FAIL)
            criteria.append(Criterion(cname, "relative", st, shown, required,
                                      f"{metric_evidence(key)}; baseline {base_label}"))

    # required params, tags, git SHA
    if policy.require_git_sha:
        sha = _s(run["git_sha"]) if run is not None else None
        frm = _s(run["git_sha_from"]) if run is not None else None
        # Only a commit SHA is code evidence: a branch name or placeholder fails, shown as it is.
        valid = bool(sha) and is_git_sha(sha)
        criteria.append(Criterion("required:git_sha", "required",
                                  PASS if valid else (FAIL if run is not None else UNKNOWN),
                                  (sha[:12] if valid else f"{sha[:40]} (not a commit SHA)") if sha else "none",
                                  "a git commit SHA (7–40 hex digits) on the run",
                                  f"runs.git_sha{' (from ' + frm + ')' if frm else ''} of {run_label}"))
    for p in policy.required_params:
        present = _s(params.get(p))
        criteria.append(Criterion(f"param:{p}", "required",
                                  PASS if present else (FAIL if run is not None else UNKNOWN),
                                  present or "missing", "logged", f"runs.params[{p!r}] of {run_label}"))
    for t in policy.required_tags:
        on_run, on_mv = _s(run_tags.get(t)), _s(mv_tags.get(t))
        present = on_run or on_mv
        where = (f"runs.tags[{t!r}] of {run_label}" if on_run else
                 f"model_versions.tags[{t!r}] of {name}/{version}" if on_mv else
                 f"neither runs.tags nor model_versions.tags has {t!r}")
        criteria.append(Criterion(f"tag:{t}", "required", PASS if present else FAIL, present or "missing",
                                  "set", where))

    # artifacts
    criteria += _artifact_criteria(ctx, policy, source, name, version, run, artifact_lister)

    # latency
    if policy.latency is not None:
        value, shown = metric_state(policy.latency.metric)
        criteria.append(Criterion(f"latency:{policy.latency.metric}", "latency",
                                  _check_bound(value, policy.latency), shown, policy.latency.describe(),
                                  metric_evidence(policy.latency.metric)))

    # lineage
    lineage_summary = None
    if policy.lineage_required:
        lineage_criteria, lineage_summary = _lineage_criteria(ctx, policy, source, name, version, platform)
        criteria += lineage_criteria

    for c in criteria:
        c.blocking = c.status == FAIL or (c.status == UNKNOWN and not _allowed(c.name, policy.allow_unknown))
    shown_metrics = sorted({b.metric for b in policy.thresholds} | {r.metric for r in policy.relative}
                           | ({policy.latency.metric} if policy.latency else set())
                           | {k for k in metrics if any(k.startswith(r.metric + policy.slice_separator)
                                                        for r in policy.relative)})
    return GateResult(
        target={"source": source, "platform": platform, "name": name, "version": version,
                "label": f"model:{name}/{version} ({platform}, {source})"},
        status=FAIL if any(c.blocking for c in criteria) else PASS,
        evaluated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        policy={"path": policy.label, "sha256": policy.sha256, "baseline_alias": policy.baseline_alias,
                "baseline_rule": rule.describe()},
        snapshot_ids=ctx.snapshot_ids,
        run=run_info, baseline=baseline_info, criteria=criteria,
        metrics={"candidate": {k: _num(metrics.get(k)) for k in shown_metrics},
                 "baseline": {k: _num(base_metrics.get(k)) for k in shown_metrics} if baseline_info else {}},
        lineage=lineage_summary, baseline_state=base.state, baseline_summary=base.summary,
        metric_gaps={series: {k: _unusable(logged[k]) for k in shown_metrics if k in logged and _num(logged[k]) is None}
                     for series, logged in (("candidate", metrics), ("baseline", base_metrics if baseline_info else {}))})


def _authors(run: pd.Series) -> set[str]:
    """The run's user names as the platform wrote them (one per person: compared in canonical form;
    reviews map them to identities for separation of duties)."""
    from gates.identity import normalise

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


def _artifact_criteria(ctx: Context, policy: Policy, source: str, name: str, version: str,
                       run: pd.Series | None, lister) -> list[Criterion]:
    out: list[Criterion] = []
    wanted = [("artifact", a) for a in policy.required_artifacts] + \
             [("run_artifact", a) for a in policy.required_run_artifacts]
    if not wanted:
        return out
    o = ctx.origins
    origin = o[(o["source"] == source) & (o["name"] == name) & (o["version"].astype(str) == version)]
    listings: dict[str, Any] = {}
    for scope, artifact in wanted:
        cname = f"{scope}:{artifact}"
        if scope == "artifact" and artifact == "MLmodel" and not origin.empty:
            rs = _s(origin.iloc[0]["read_status"])
            st = PASS if rs == "ok" else (FAIL if rs == "missing" else UNKNOWN)
            out.append(Criterion(cname, "artifact", st, f"MLmodel {rs}", "present",
                                 f"model_origins.read_status of {name}/{version}, snapshot "
                                 f"{ctx.snapshot_ids.get(source)} of {source}"))
            continue
        if lister is None:
            out.append(Criterion(cname, "artifact", UNKNOWN, "not checked", "present",
                                 "artifact listing is not available here (the gate CLI lists the registry)"))
            continue
        if scope == "run_artifact" and run is None:
            out.append(Criterion(cname, "artifact", UNKNOWN, "no run", "present", "no producing run to list"))
            continue
        if scope not in listings:
            try:
                listings[scope] = lister(scope, source, name, version, run)
            except Exception as e:  # noqa: BLE001 — any registry failure is an UNKNOWN, reported
                listings[scope] = e
        found = listings[scope]
        where = (f"artifacts of {name}/{version} listed from {source}" if scope == "artifact"
                 else f"artifacts of run {run['run_id']} listed from {run['source']}")
        if isinstance(found, Exception):
            out.append(Criterion(cname, "artifact", UNKNOWN, "listing failed", "present",
                                 f"{where}: {type(found).__name__}: {str(found)[:200]}"))
            continue
        present = artifact in found
        out.append(Criterion(cname, "artifact", PASS if present else FAIL, "present" if present else "missing",
                             "present", f"{where} ({len(found)} file(s))"))
    return out


class NoRegistry(LookupError):
    """The source has no MLflow registry the gate could list artifacts in."""


def mlflow_uris(src) -> tuple[str, str]:
    """(tracking URI, registry URI) of a source's MLflow, always explicit: a None would make MLflow
    fall back to its process defaults (and create `mlflow.db` in the working folder).

    `mlflow` sources name theirs; a `databricks` source's registry is its workspace's Unity
    Catalog (its profile, if any, picks the workspace; otherwise Databricks unified auth does,
    as for the collector). Other kinds hold no MLflow registry."""
    if src.kind == "mlflow" and src.tracking_uri:
        return src.tracking_uri, src.effective_registry_uri
    if src.kind == "databricks":
        options = src.options or {}
        profile, host = options.get("profile"), options.get("host")
        # MLflow finds the workspace from a profile or DATABRICKS_HOST, never from a host it is
        # given: listing another workspace's registry would be evidence about the wrong model.
        env_host = os.environ.get("DATABRICKS_HOST", "")
        if host and not profile and env_host.rstrip("/") != host.rstrip("/"):
            raise NoRegistry(f"source {src.name} names host {host}, but MLflow would reach "
                             f"{env_host or 'no workspace'} (DATABRICKS_HOST): set a profile, or DATABRICKS_HOST")
        suffix = f"://{profile}" if profile else ""
        return f"databricks{suffix}", f"databricks-uc{suffix}"
    raise NoRegistry(f"source {src.name} ({src.kind}) has no MLflow registry to list artifacts in")


_DEFAULT_URI_LOCK = threading.Lock()   # the process default tracking URI is global: one pin at a time


def mlflow_artifact_lister(config):
    """Lists artifacts through each source's own MLflow registry (read-only calls); names and base
    names. A Unity Catalog version is listed as `models:/NAME/VERSION` on the `databricks-uc`
    registry, so MLflow fetches the UC credentials for its storage itself."""

    def listing(scope: str, source: str, name: str, version: str, run: pd.Series | None) -> set[str]:
        from mlflow import MlflowClient
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        src = config.source(source if scope == "artifact" else run["source"])
        tracking, registry = mlflow_uris(src)
        if scope == "artifact" and registry.startswith("databricks-uc"):
            # MLflow's UC artifact repository builds an MlflowClient of its own without a tracking
            # URI; pin the process default to the source's for the call, or MLflow would open (and
            # create) sqlite:///mlflow.db in the working folder.
            from mlflow.tracking._tracking_service.utils import _use_tracking_uri

            with _DEFAULT_URI_LOCK, _use_tracking_uri(tracking):
                files = get_artifact_repository(f"models:/{name}/{version}", tracking_uri=tracking,
                                                registry_uri=registry).list_artifacts("")
        elif scope == "artifact":
            client = MlflowClient(tracking_uri=tracking, registry_uri=registry)
            uri = client.get_model_version_download_uri(name, version)
            files = get_artifact_repository(uri, tracking_uri=tracking, registry_uri=registry).list_artifacts("")
        else:
            files = MlflowClient(tracking_uri=tracking, registry_uri=registry).list_artifacts(run["run_id"])
        return {f.path for f in files} | {f.path.rsplit("/", 1)[-1] for f in files}

    return listing


def _lineage_criteria(ctx: Context, policy: Policy, source: str, name: str, version: str,
                      platform: str) -> tuple[list[Criterion], dict[str, Any] | None]:
    graph = ctx.graph()
    if graph is None:
        why = ctx._graph_error or "no lineage graph"
        return [Criterion("lineage:trace", "lineage", UNKNOWN, "not traced", "a trace", why)], None
    from lineage.graph import NodeType
    from lineage.trace import trace

    node = next((n for n in graph.ids_of_type(NodeType.MODEL_VERSION)
                 if graph.g.nodes[n]["attrs"].get("source") == source and graph.g.nodes[n]["name"] == name
                 and str(graph.g.nodes[n]["version"]) == version), None)
    if node is None:
        return [Criterion("lineage:trace", "lineage", FAIL, "no node", "a trace",
                          f"the lineage graph has no node for {name}/{version} on {source}")], None
    as_of = ", ".join(f"{s} #{i}" for s, i in ctx.snapshot_ids.items())
    answer = trace(graph, node, as_of=as_of).to_json()
    summary = {"node": node, "runs": answer.get("runs", []), "git_shas": answer.get("git_shas", []),
               "inputs": answer.get("inputs", []), "gaps": answer.get("gaps", [])}
    ev = f"lineage trace of {node} at {as_of}"
    # A trace that reaches no run proves nothing about how the version was made.
    out = [Criterion("lineage:trace", "lineage", PASS if summary["runs"] else FAIL,
                     f"{len(summary['runs'])} run(s)", "a trace reaching ≥ 1 run", ev)]
    shas = summary["git_shas"]
    out.append(Criterion("lineage:git_sha", "lineage", PASS if shas else FAIL,
                         ", ".join(s[:10] for s in shas) or "none", "≥ 1 git SHA upstream", ev))
    # Only the data the runs read counts here; tables further upstream (level "table", from table
    # lineage) carry no version by nature and are listed for context.
    inputs = [i for i in summary["inputs"] if i.get("level", "version") == "version"]
    upstream = [i["name"] for i in summary["inputs"] if i.get("level", "version") != "version"]
    context = f" (upstream: {', '.join(upstream)})" if upstream else ""
    unversioned = [f"{i['name']}@{i['version'] if i['version'] is not None else '?'}"
                   for i in inputs if not i.get("version_known", True)]
    if not inputs:
        st, actual = FAIL, "no inputs"
    elif unversioned:
        st, actual = FAIL, "unversioned: " + ", ".join(unversioned) + context
    else:
        st, actual = PASS, ", ".join(f"{i['name']}@{i['version']}" for i in inputs) + context
    out.append(Criterion("lineage:versioned_inputs", "lineage", st, actual, "every input versioned", ev))
    bad = [g for g in summary["gaps"] if policy.forbids(str(g.get("gap")))]
    out.append(Criterion("lineage:gaps", "lineage", FAIL if bad else PASS,
                         "; ".join(f"{g['gap']}: {g['message']}" for g in bad) or "none",
                         "no gap of: " + ", ".join(policy.forbidden_gaps), ev))
    return out, summary
