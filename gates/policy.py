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
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      ValidationError, model_validator)
from pydantic_core import PydanticCustomError

from collectors.toml_errors import Loc, NonBlank, fields_at, first_error, line_of, toml_lines, words
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

    def alias_to_move(self, seen: str | None = None, platform: str | None = None) -> str:
        """The alias an approval moves: the policy's `[writeback] alias`, else `seen`, the alias that
        named the baseline the approval saw (@champion on Unity Catalog, @Production elsewhere), else
        the first baseline alias of the platform's rule."""
        rule = self.baseline_for(platform)
        return self.writeback_alias or seen or (rule.aliases or self.baseline.aliases or DEFAULT_BASELINE_ALIASES)[0]

    def forbids(self, gap_kind: str) -> bool:
        return any(fnmatch.fnmatchcase(gap_kind, g) for g in self.forbidden_gaps)


# -- the file's schema (pydantic v2, strict: TOML's own types, nothing coerced; unknown keys refused) --
Number = Annotated[float, Field(allow_inf_nan=False)]
Margin = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_GLOB = re.compile(r"[*?\[]")


def _gap_kind(value: str) -> str:
    known = {k.value for k in GapKind}
    if value not in known and not _GLOB.search(value):
        raise PydanticCustomError("unknown_gap_kind", "unknown gap kind {value} (known: {known}, or a glob such "
                                  "as *_conflict)", {"value": repr(value), "known": ", ".join(sorted(known))})
    return value


class _Table(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class PolicyTable(_Table):
    baseline_alias: NonBlank | None = None   # the older spelling of [baseline] aliases = [X]
    allow_unknown: list[NonBlank] = []
    name: str | None = None
    description: str | None = None


class BaselineSpec(_Table):
    aliases: list[NonBlank] | None = None
    traffic: bool | None = None


class BaselineTable(BaselineSpec):   # one override per platform (collectors.config PLATFORMS)
    databricks: BaselineSpec | None = None
    fabric: BaselineSpec | None = None
    azureml: BaselineSpec | None = None


class BoundTable(_Table):
    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _a_range(self) -> "BoundTable":
        if self.min is None and self.max is None:
            raise PydanticCustomError("empty_bound", "needs 'min' and/or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PydanticCustomError("min_above_max", "min {lo} is above max {hi}",
                                      {"lo": f"{self.min:g}", "hi": f"{self.max:g}"})
        return self


def _table_or(other: str):
    return Discriminator(lambda value: "table" if isinstance(value, dict) else other)


# A threshold is a number ("at least") or a {min, max} table; a relative metric a name or a table.
Threshold = Annotated[Annotated[Number, Tag("number")] | Annotated[BoundTable, Tag("table")], _table_or("number")]


class MetricTable(_Table):
    name: NonBlank
    margin: Margin | None = None
    lower_is_better: bool = False


Metric = Annotated[Annotated[NonBlank, Tag("name")] | Annotated[MetricTable, Tag("table")], _table_or("name")]


class RelativeTable(_Table):
    margin: Margin = 0.0
    metrics: list[Metric] = []
    slices: bool = True
    slice_separator: NonBlank = "/"
    no_baseline: Literal["pass", "unknown"] = "pass"


class RequiredTable(_Table):
    git_sha: bool = False
    params: list[NonBlank] = []
    tags: list[NonBlank] = []
    artifacts: list[NonBlank] = []
    run_artifacts: list[NonBlank] = []


class LineageTable(_Table):
    require: bool = False
    forbidden_gaps: list[Annotated[NonBlank, AfterValidator(_gap_kind)]] = list(DEFAULT_FORBIDDEN_GAPS)


class LatencyTable(_Table):
    metric: NonBlank
    max: Number


class WritebackTable(_Table):
    action: Literal["alias", "tag"] = "alias"
    alias: NonBlank | None = None
    tag: NonBlank = "waymark.approved"


class PolicyFile(_Table):
    policy: PolicyTable = PolicyTable()
    baseline: BaselineTable = BaselineTable()
    thresholds: dict[str, Threshold] = {}
    relative: RelativeTable = RelativeTable()
    required: RequiredTable = RequiredTable()
    lineage: LineageTable = LineageTable()
    # An empty [latency] table sets no bound.
    latency: Annotated[LatencyTable | None, BeforeValidator(lambda v: None if v == {} else v)] = None
    writeback: WritebackTable = WritebackTable()


# Where a union's tag sits in an error's loc (dropped: it is no key of the file): a threshold is a
# number or a table, a relative metric a name or a table.
_TAGGED = ((("thresholds",), 2), (("relative", "metrics"), 3))


def _schema_error(e: ValidationError, path: Path | None, text: str) -> PolicyError:
    """The first schema error as PolicyError naming the file, the line and the field, worded by its type."""
    error = first_error(e)
    loc, kind = error["loc"], error["type"]
    for prefix, at in _TAGGED:
        if loc[:len(prefix)] == prefix and len(loc) > at:
            loc = loc[:at] + loc[at + 1:]
    item = next((i for i, p in enumerate(loc) if isinstance(p, int)), len(loc))   # a list's entry, if any
    names, inside = [str(p) for p in loc[:item]], [str(p) for p in loc[item + 1:]]
    if kind == "extra_forbidden":
        expected = ", ".join(sorted(fields_at(PolicyFile, loc)))
        message = f"unknown {'table' if len(loc) == 1 else 'field'} (expected one of {expected})"
    else:
        message = words(error)
    if item < len(loc):
        message = f"entry {int(loc[item]) + 1}" + (f", field '{'.'.join(inside)}'" if inside else "") + f": {message}"
    return PolicyError(path, line_of(toml_lines(text), loc), ".".join(names), message)


def parse_policy(text: str, path: Path | None = None) -> Policy:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        match = re.search(r"line (\d+)", str(e))
        raise PolicyError(path, int(match.group(1)) if match else None, None, f"not valid TOML: {e}") from None
    try:
        parsed = PolicyFile.model_validate(raw)
    except ValidationError as e:
        raise _schema_error(e, path, text) from None
    lines = toml_lines(text)

    def fail(loc: Loc, message: str) -> PolicyError:
        return PolicyError(path, line_of(lines, loc), ".".join(str(p) for p in loc), message)

    rel = parsed.relative
    relative = tuple(Relative(m, rel.margin) if isinstance(m, str) else
                     Relative(m.name, rel.margin if m.margin is None else m.margin, m.lower_is_better)
                     for m in rel.metrics)
    names = [r.metric for r in relative]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise fail(("relative", "metrics"), f"metric {dupes[0]!r} listed twice")
    req, wb = parsed.required, parsed.writeback
    return Policy(
        path=path, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), raw=raw,
        **_baselines(parsed, fail), allow_unknown=tuple(parsed.policy.allow_unknown),
        thresholds=tuple(Bound(metric, min=spec) if isinstance(spec, float) else Bound(metric, spec.min, spec.max)
                         for metric, spec in parsed.thresholds.items()),
        relative=relative, slices=rel.slices, slice_separator=rel.slice_separator, no_baseline=rel.no_baseline,
        require_git_sha=req.git_sha, required_params=tuple(req.params), required_tags=tuple(req.tags),
        required_artifacts=tuple(req.artifacts), required_run_artifacts=tuple(req.run_artifacts),
        lineage_required=parsed.lineage.require, forbidden_gaps=tuple(parsed.lineage.forbidden_gaps),
        latency=Bound(parsed.latency.metric, max=parsed.latency.max) if parsed.latency else None,
        writeback_action=wb.action, writeback_alias=wb.alias, writeback_tag=wb.tag)


def _baselines(parsed: PolicyFile, fail: Callable[[Loc, str], PolicyError]) -> dict[str, Any]:
    """[baseline] aliases/traffic and [baseline.<platform>] overrides (or the older baseline_alias);
    nothing said: the built-in rules (DEFAULT_PLATFORM_BASELINES)."""
    table, older = parsed.baseline, parsed.policy.baseline_alias
    if older is not None and table.aliases is not None:
        raise fail(("policy", "baseline_alias"), "set either [policy] baseline_alias or [baseline] aliases, not both")
    if older is None and not table.model_fields_set:
        return {}

    def rule(spec: BaselineSpec, loc: Loc, default: BaselineRule) -> BaselineRule:
        aliases = (older,) if older is not None and spec is table else spec.aliases
        found = BaselineRule(default.aliases if aliases is None else tuple(aliases),
                             default.traffic if spec.traffic is None else spec.traffic)
        if not found.aliases and not found.traffic:
            raise fail(loc, "finds no baseline: list aliases, or set traffic = true")
        return found

    base = rule(table, ("baseline",), BaselineRule())
    platforms = [name for name in BaselineTable.model_fields if name not in BaselineSpec.model_fields]
    overrides = tuple((platform, rule(spec, ("baseline", platform), base)) for platform in platforms
                      if (spec := getattr(table, platform)) is not None)
    return {"baseline": base, "baseline_by_platform": overrides}


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
