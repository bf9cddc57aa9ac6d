"""Promotion policies: one TOML file per model (or a default), parsed and validated up front.

Schema (every table optional; see gates/default_policy.toml for the seed's thresholds):

    [policy]
    allow_unknown = ["latency:*"]        # criterion names/globs whose UNKNOWN does not fail the gate

    [baseline]                           # the version relative criteria compare with, per model:
    aliases = ["champion", "Production", "prod"]   # the first of these aliases the model has…
    traffic = false                      # …else the version with the most traffic on its endpoints
    [baseline.azureml]                   # per-platform override (databricks | fabric | azureml);
    aliases = []                         # a platform without one uses [baseline]. Azure ML has no
    traffic = true                       # aliases: what it serves is the endpoints' traffic split.
    # (`[policy] baseline_alias = "X"` is the older spelling of `[baseline] aliases = ["X"]`.)

    [thresholds]                         # absolute bounds: a number means "at least"
    roc_auc = 0.80
    latency_ms = { max = 120 }

    [relative]                           # no worse than baseline − margin (+ margin when lower is better)
    margin = 0.0                         # default margin for every metric listed below
    metrics = ["roc_auc", { name = "f1_score", margin = 0.01 }, { name = "log_loss", lower_is_better = true }]
    slices = true                        # also compare "<metric>/<slice>" metrics the baseline logged
    slice_separator = "/"
    no_baseline = "pass"                 # pass | unknown: what relative criteria say with no baseline

    [required]
    git_sha = true                       # the producing run records a git SHA
    params = ["delta_feature_version"]
    tags = ["owner"]
    artifacts = ["MLmodel"]              # files in the model version's artifacts
    run_artifacts = []                   # files in the producing run's artifacts

    [lineage]
    require = true                       # a trace with a run, a git SHA and versioned inputs…
    forbidden_gaps = ["no_git_sha", "*_conflict", ...]   # …and no gap of these kinds (names or globs)

    [latency]                            # optional bound on a logged latency metric
    metric = "latency_p95_ms"
    max = 150

    [writeback]                          # what an approval may do when the source allows registry writes
    action = "alias"                     # alias | tag
    alias = "Production"                 # alias to move (default: the alias that named the baseline)
    tag = "waymark.approved"             # tag to set (action = "tag")

Every error names the file, the line and the field.
"""
from __future__ import annotations

import fnmatch
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineage.graph import GapKind

DEFAULT_POLICY = Path(__file__).resolve().parent / "default_policy.toml"
# Conflicting or invalid evidence blocks by default: named kinds, plus every *_conflict / *_mismatch
# kind the lineage builder may name (a glob matches gap kinds by name).
DEFAULT_FORBIDDEN_GAPS = ("no_git_sha", "unversioned_input", "no_inputs", "no_run", "run_not_found", "run_deleted",
                          "no_origin", "origin_unreadable", "origin_conflict", "ambiguous", "commit_mismatch",
                          "input_version_conflict", "invalid_git_sha", "*_conflict", "*_mismatch")
DEFAULT_BASELINE_ALIASES = ("champion", "Production", "prod")


@dataclass(frozen=True)
class BaselineRule:
    """How a model's baseline is found on one platform: the first alias of `aliases` the model
    has, else (when `traffic`) the version with the most traffic on the endpoints serving it."""
    aliases: tuple[str, ...] = DEFAULT_BASELINE_ALIASES
    traffic: bool = False

    def describe(self) -> str:
        parts = []
        if self.aliases:
            parts.append("the first alias of " + ", ".join(f"@{a}" for a in self.aliases))
        if self.traffic:
            parts.append("the version with the most endpoint traffic")
        return ", else ".join(parts)


# Azure ML registries have no aliases: what a workspace serves is its endpoints' traffic split.
DEFAULT_PLATFORM_BASELINES = (("azureml", BaselineRule((), True)),)


class PolicyError(ValueError):
    """A bad policy file; the message names file, line and field."""

    def __init__(self, path: Path | None, line: int | None, field_name: str | None, message: str):
        where = str(path) if path else "<policy>"
        if line:
            where += f":{line}"
        what = f" field '{field_name}':" if field_name else ""
        super().__init__(f"{where}:{what} {message}")
        self.path, self.line, self.field_name = path, line, field_name


@dataclass(frozen=True)
class Bound:
    metric: str
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"≥ {self.min:g}")
        if self.max is not None:
            parts.append(f"≤ {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Relative:
    metric: str
    margin: float = 0.0
    lower_is_better: bool = False


@dataclass(frozen=True)
class Policy:
    path: Path | None
    sha256: str
    baseline: BaselineRule = BaselineRule()
    baseline_by_platform: tuple[tuple[str, BaselineRule], ...] = DEFAULT_PLATFORM_BASELINES
    allow_unknown: tuple[str, ...] = ()
    thresholds: tuple[Bound, ...] = ()
    relative: tuple[Relative, ...] = ()
    slices: bool = True
    slice_separator: str = "/"
    no_baseline: str = "pass"
    require_git_sha: bool = False
    required_params: tuple[str, ...] = ()
    required_tags: tuple[str, ...] = ()
    required_artifacts: tuple[str, ...] = ()
    required_run_artifacts: tuple[str, ...] = ()
    lineage_required: bool = False
    forbidden_gaps: tuple[str, ...] = DEFAULT_FORBIDDEN_GAPS
    latency: Bound | None = None
    writeback_action: str = "alias"
    writeback_alias: str | None = None
    writeback_tag: str = "waymark.approved"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        return str(self.path) if self.path else "<policy>"

    @property
    def name(self) -> str:
        """How a person names this policy (never a server path): `[policy] name`, else the file's
        name; the built-in policy says so."""
        given = (self.raw.get("policy") or {}).get("name")
        if isinstance(given, str) and given.strip():
            return given.strip()
        if self.path is None:
            return "unnamed policy"
        return "built-in default" if self.path.resolve() == DEFAULT_POLICY else self.path.name

    @property
    def short_hash(self) -> str:
        """The first 12 hex digits of the sha256 of the policy file's text (the log keeps it whole)."""
        return self.sha256[:12]

    def baseline_for(self, platform: str | None) -> BaselineRule:
        return dict(self.baseline_by_platform).get(platform or "", self.baseline)

    @property
    def baseline_alias(self) -> str:
        """The first baseline alias of the policy (for messages and the write-back default)."""
        return (self.baseline.aliases or DEFAULT_BASELINE_ALIASES)[0]

    def alias_to_move(self, baseline: dict[str, Any] | None = None, platform: str | None = None) -> str:
        """The alias an approval moves: the policy's `[writeback] alias`, else the alias that named
        the baseline the approval saw (@champion on Unity Catalog, @Production elsewhere), else the
        first baseline alias of the platform's rule."""
        seen = (baseline or {}).get("alias")
        rule = self.baseline_for(platform)
        return self.writeback_alias or seen or (rule.aliases or self.baseline.aliases or DEFAULT_BASELINE_ALIASES)[0]

    def forbids(self, gap_kind: str) -> bool:
        return any(fnmatch.fnmatchcase(gap_kind, g) for g in self.forbidden_gaps)


# -- locating lines ------------------------------------------------------------------------------
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")
_INLINE_KEY = re.compile(r"""(?:[{,]\s*)([A-Za-z0-9_\-]+)\s*=""")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _line_index(text: str) -> dict[str, int]:
    """dotted key path → first line (1-based) that defines it; good enough for error messages."""
    index: dict[str, int] = {}
    table: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            index.setdefault(".".join(table), n)
            continue
        key = _KEY.match(line)
        if key:
            path = table + _split_key(key.group(1))
            index.setdefault(".".join(path), n)
            rest = line[key.end():]
            for inner in _INLINE_KEY.finditer(rest):
                index.setdefault(".".join(path + [inner.group(1)]), n)
    return index


class _Reader:
    """Typed access to the raw TOML with errors that point at the line."""

    def __init__(self, path: Path | None, text: str):
        self.path = path
        self.lines = _line_index(text)

    def line_of(self, dotted: str) -> int | None:
        parts = dotted.split(".")
        while parts:
            found = self.lines.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return None

    def fail(self, dotted: str, message: str) -> PolicyError:
        return PolicyError(self.path, self.line_of(dotted), dotted, message)

    def table(self, raw: dict[str, Any], name: str, allowed: set[str]) -> dict[str, Any]:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table ([{name}])")
        for key in value:
            if key not in allowed:
                raise self.fail(f"{name}.{key}", f"unknown field (expected one of {', '.join(sorted(allowed))})")
        return value

    def number(self, value: Any, dotted: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(dotted, f"must be a finite number, got {value!r}")
        return float(value)

    def boolean(self, value: Any, dotted: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(dotted, f"must be true or false, got {value!r}")
        return value

    def string(self, value: Any, dotted: str, choices: tuple[str, ...] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(dotted, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(dotted, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def strings(self, value: Any, dotted: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(dotted, f"must be a list of non-empty strings, got {value!r}")
        return tuple(value)


_TOP = {"policy", "baseline", "thresholds", "relative", "required", "lineage", "latency", "writeback"}


def parse_policy(text: str, path: Path | None = None) -> Policy:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = re.search(r"line (\d+)", str(e))
        raise PolicyError(path, int(match.group(1)) if match else None, None, f"not valid TOML: {e}") from None
    r = _Reader(path, text)
    for key in raw:
        if key not in _TOP:
            raise r.fail(key, f"unknown table (expected {', '.join(sorted(_TOP))})")
    out: dict[str, Any] = {"path": path, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "raw": raw}

    head = r.table(raw, "policy", {"baseline_alias", "allow_unknown", "name", "description"})
    _baseline(r, raw, head, out)
    if "allow_unknown" in head:
        out["allow_unknown"] = r.strings(head["allow_unknown"], "policy.allow_unknown")

    thresholds = []
    for metric, spec in r.table(raw, "thresholds", set(_keys(raw.get("thresholds")))).items():
        thresholds.append(_bound(r, metric, spec, f"thresholds.{metric}"))
    out["thresholds"] = tuple(thresholds)

    rel = r.table(raw, "relative", {"margin", "metrics", "slices", "slice_separator", "no_baseline"})
    default_margin = r.number(rel["margin"], "relative.margin") if "margin" in rel else 0.0
    if default_margin < 0:
        raise r.fail("relative.margin", "must be >= 0")
    metrics = rel.get("metrics", [])
    if not isinstance(metrics, list):
        raise r.fail("relative.metrics", "must be a list of metric names or {name, margin, lower_is_better} tables")
    relative = []
    for i, m in enumerate(metrics):
        dotted = f"relative.metrics[{i}]"
        if isinstance(m, str) and m.strip():
            relative.append(Relative(m, default_margin))
        elif isinstance(m, dict):
            extra = sorted(set(m) - {"name", "margin", "lower_is_better"})
            if extra:
                raise r.fail("relative.metrics", f"entry {i + 1}: unknown field {extra[0]!r} "
                             "(expected name, margin, lower_is_better)")
            name = r.string(m.get("name"), "relative.metrics") if "name" in m else None
            if name is None:
                raise r.fail("relative.metrics", f"entry {i + 1}: missing 'name'")
            margin = r.number(m["margin"], "relative.metrics") if "margin" in m else default_margin
            if margin < 0:
                raise r.fail("relative.metrics", f"entry {i + 1} ({name}): margin must be >= 0")
            lower = r.boolean(m.get("lower_is_better", False), "relative.metrics")
            relative.append(Relative(name, margin, lower))
        else:
            raise r.fail("relative.metrics", f"entry {i + 1} ({dotted}) must be a metric name or a table, got {m!r}")
    names = [x.metric for x in relative]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise r.fail("relative.metrics", f"metric {dupes[0]!r} listed twice")
    out["relative"] = tuple(relative)
    if "slices" in rel:
        out["slices"] = r.boolean(rel["slices"], "relative.slices")
    if "slice_separator" in rel:
        out["slice_separator"] = r.string(rel["slice_separator"], "relative.slice_separator")
    if "no_baseline" in rel:
        out["no_baseline"] = r.string(rel["no_baseline"], "relative.no_baseline", ("pass", "unknown"))

    req = r.table(raw, "required", {"git_sha", "params", "tags", "artifacts", "run_artifacts"})
    if "git_sha" in req:
        out["require_git_sha"] = r.boolean(req["git_sha"], "required.git_sha")
    for key, attr in (("params", "required_params"), ("tags", "required_tags"),
                      ("artifacts", "required_artifacts"), ("run_artifacts", "required_run_artifacts")):
        if key in req:
            out[attr] = r.strings(req[key], f"required.{key}")

    lin = r.table(raw, "lineage", {"require", "forbidden_gaps"})
    if "require" in lin:
        out["lineage_required"] = r.boolean(lin["require"], "lineage.require")
    if "forbidden_gaps" in lin:
        gaps = r.strings(lin["forbidden_gaps"], "lineage.forbidden_gaps")
        known = {k.value for k in GapKind}
        bad = [g for g in gaps if g not in known and not _GLOB.search(g)]
        if bad:
            raise r.fail("lineage.forbidden_gaps", f"unknown gap kind {bad[0]!r} "
                         f"(known: {', '.join(sorted(known))}, or a glob such as *_conflict)")
        out["forbidden_gaps"] = gaps

    lat = r.table(raw, "latency", {"metric", "max"})
    if lat:
        if "metric" not in lat or "max" not in lat:
            raise r.fail("latency", "needs both 'metric' and 'max'")
        out["latency"] = Bound(r.string(lat["metric"], "latency.metric"), max=r.number(lat["max"], "latency.max"))

    wb = r.table(raw, "writeback", {"action", "alias", "tag"})
    if "action" in wb:
        out["writeback_action"] = r.string(wb["action"], "writeback.action", ("alias", "tag"))
    if "alias" in wb:
        out["writeback_alias"] = r.string(wb["alias"], "writeback.alias")
    if "tag" in wb:
        out["writeback_tag"] = r.string(wb["tag"], "writeback.tag")
    return Policy(**out)


_GLOB = re.compile(r"[*?\[]")


def _baseline(r: _Reader, raw: dict[str, Any], head: dict[str, Any], out: dict[str, Any]) -> None:
    """[baseline] aliases/traffic and [baseline.<platform>] overrides (or the older baseline_alias)."""
    from collectors.config import PLATFORMS

    table = r.table(raw, "baseline", {"aliases", "traffic", *PLATFORMS})
    if "baseline_alias" in head:
        if "aliases" in table:
            raise r.fail("policy.baseline_alias", "set either [policy] baseline_alias or [baseline] aliases, not both")
        table = {**table, "aliases": [r.string(head["baseline_alias"], "policy.baseline_alias")]}

    def rule(spec: dict[str, Any], dotted: str, default: BaselineRule) -> BaselineRule:
        aliases = r.strings(spec["aliases"], f"{dotted}.aliases") if "aliases" in spec else default.aliases
        traffic = r.boolean(spec["traffic"], f"{dotted}.traffic") if "traffic" in spec else default.traffic
        if not aliases and not traffic:
            raise r.fail(dotted, "finds no baseline: list aliases, or set traffic = true")
        return BaselineRule(tuple(aliases), traffic)

    if not table:
        return   # the built-in rules (DEFAULT_PLATFORM_BASELINES)
    base = rule(table, "baseline", BaselineRule())
    out["baseline"] = base
    overrides = []
    for platform in PLATFORMS:
        if platform in table:
            spec = table[platform]
            if not isinstance(spec, dict):
                raise r.fail(f"baseline.{platform}", f"must be a table ([baseline.{platform}])")
            extra = sorted(set(spec) - {"aliases", "traffic"})
            if extra:
                raise r.fail(f"baseline.{platform}.{extra[0]}", "unknown field (expected aliases, traffic)")
            overrides.append((platform, rule(spec, f"baseline.{platform}", base)))
    out["baseline_by_platform"] = tuple(overrides)


def _keys(value: Any) -> list[str]:
    return list(value) if isinstance(value, dict) else []


def _bound(r: _Reader, metric: str, spec: Any, dotted: str) -> Bound:
    if isinstance(spec, dict):
        extra = sorted(set(spec) - {"min", "max"})
        if extra:
            raise r.fail(f"{dotted}.{extra[0]}", "unknown field (expected min, max)")
        if not spec:
            raise r.fail(dotted, "needs 'min' and/or 'max'")
        lo = r.number(spec["min"], f"{dotted}.min") if "min" in spec else None
        hi = r.number(spec["max"], f"{dotted}.max") if "max" in spec else None
        if lo is not None and hi is not None and lo > hi:
            raise r.fail(dotted, f"min {lo:g} is above max {hi:g}")
        return Bound(metric, lo, hi)
    return Bound(metric, min=r.number(spec, dotted))


def load_policy(path: str | Path) -> Policy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(p, None, None, "policy file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyError(p, None, None, f"cannot read policy file: {e}") from None
    return parse_policy(text, p)


def policy_path_for(model_name: str, policy_dir: Path | None) -> Path:
    """<policy_dir>/<model name>.toml, else <policy_dir>/default.toml, else the built-in default."""
    if policy_dir is not None:
        safe = model_name.replace("/", "_").replace("\\", "_")
        for candidate in (policy_dir / f"{safe}.toml", policy_dir / "default.toml"):
            if candidate.is_file():
                return candidate
    return DEFAULT_POLICY


def policy_for(model_name: str, policy_dir: Path | None, override: str | Path | None = None) -> Policy:
    return load_policy(override if override else policy_path_for(model_name, policy_dir))
