"""The `governance.toml` contract (DESIGN.md): parsed with tomllib, validated before anything is written
by the pydantic models of collectors/config_schema.py.

Every error names the file, its line, the source (by name or position) and the field, so a pipeline
log is enough to fix it; it is worded by the error's type and never repeats a secret. Secrets never
live here: auth comes from env vars, Databricks profiles, DefaultAzureCredential or `.streamlit/secrets.toml`.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from collectors.config_review import KnownIdentity, ReviewConfig, Reviewer, normalise
from collectors.config_schema import (  # noqa: F401 (DEFAULT_STORE_PATH, SECRET_*: the contract's names)
    DEFAULT_STORE_PATH, INT_BOUNDS, KINDS, PLATFORMS, SECRET_KEYS, SECRET_QUERY_PARAMS, SOURCE_MODELS, STORE_BACKENDS,
    CommonSource, ConfigFile, DuckDbStore, DuckLakeStore, IdentityEntry, ReviewerEntry, ReviewTable, SloEntry)
from collectors.toml_errors import Loc, choices, file_lines, first_error, line_of, words

if TYPE_CHECKING:
    from store.ducklake import DuckLakeSpec


class ConfigError(ValueError):
    """A config problem; the message names file, source and field."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    platform: str
    tracking_uri: str | None = None
    registry_uri: str | None = None
    # Param that carries the git SHA when `mlflow.source.git.commit` is absent (seed 001 logs `git_sha`).
    git_sha_param: str = "git_sha"
    # Incremental runs are fetched from `watermark - lookback` so late-starting clocks are not missed.
    lookback_seconds: int = 3600
    # Optional: only these experiment names (default: every experiment the identity can see).
    experiments: tuple[str, ...] = ()
    # Azure AD scope for a bearer token (Fabric's MLflow endpoint); fetched with DefaultAzureCredential.
    token_scope: str | None = None
    read_model_origins: bool = True
    allow_registry_writes: bool = False
    # An incremental pass cannot see tags changed on a finished run or a deleted run restored; a pass
    # becomes full when the last full one is older than this (0: every pass is full).
    full_every_hours: int = 24
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind}, {self.platform})"

    @property
    def effective_registry_uri(self) -> str:
        """The registry to talk to, always explicit (with None, MlflowClient would fall back to the
        process-global registry URI): the configured one, else `databricks-uc` for a Databricks
        tracking URI, else the tracking URI itself."""
        if self.registry_uri:
            return self.registry_uri
        tracking = self.tracking_uri or ""
        return "databricks-uc" if tracking.startswith("databricks") else tracking


@dataclass(frozen=True)
class Config:
    path: Path | None
    store_path: "Path | DuckLakeSpec"   # the DuckDB file, or the shared DuckLake store; Store() takes either
    sources: tuple[SourceConfig, ...]
    review: ReviewConfig = field(default_factory=ReviewConfig)
    slos: tuple["Slo", ...] = ()   # [[slo]]: endpoint health thresholds (Endpoint health page)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"{self._where()}: no source named {name!r} (known: {known})")

    def _where(self) -> str:
        return str(self.path) if self.path else "<config>"


@dataclass(frozen=True)
class Slo:
    """One [[slo]] entry: thresholds for the endpoints it matches (first match wins).

    A limit is red when crossed and amber from `amber_at` × limit; `serves` ("model@alias") is what
    the endpoint should serve — a deployment serving another version is flagged as drift."""
    endpoint: str = "*"                 # fnmatch glob over endpoint names
    platform: str | None = None
    serves: str | None = None           # "model@alias"
    registry_source: str | None = None  # source whose registry holds that alias (default: any)
    latency_p95_ms: float | None = None
    error_rate_pct: float | None = None
    min_requests_per_minute: float | None = None
    amber_at: float = 0.8
    stale_after_minutes: float = 60.0


def read_toml(path: Path, what: str, error: type[Exception]) -> dict[str, Any]:
    """A TOML file's contents, or `error` naming the file and what is wrong with it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read {what}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError naming file, source and field."""
    p = Path(path)
    return parse_config(read_toml(p, "config file", ConfigError), p)



# The fields every kind has, kept on SourceConfig; a kind's own options go to SourceConfig.options.
_SOURCE_FIELDS = tuple(CommonSource.model_fields)
# A credential in the file is reported before anything else wrong with it.
_SECRET_ERRORS = ("secret_key", "password_in_uri", "secret_in_uri", "invalid_uri", "password_in_catalog")
# What a list field holds, for "must be a list of …"; and what a field's pattern asks for.
_LIST_OF = {"experiments": "experiment names", "catalogs": "catalog names (no dots)",
            "schemas": "'catalog.schema' names", "models": "model-name globs", "also_known_as": "names"}
_PATTERN = {"name": "must be 1-64 characters from A-Z a-z 0-9 . _ - (no spaces)",
            "host": "must be a workspace URL starting with https://", "serves": "must be 'model@alias'"}


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    base = path.parent if path else Path.cwd()
    try:
        parsed = ConfigFile.model_validate(raw, context={"base": base})
    except ValidationError as e:
        raise _fail(path, *_message(first_error(e, lambda error: error["type"] in _SECRET_ERRORS), raw)) from None
    sources: list[SourceConfig] = []
    for i, s in enumerate(parsed.sources):
        if any(s.name == seen.name for seen in sources):
            raise _fail(path, ("sources", i, "name"), f"source {s.name!r}: field 'name': "
                        "duplicate source name (names must be unique)")
        known = {k: getattr(s, k) for k in s.model_fields_set if k in _SOURCE_FIELDS}
        sources.append(SourceConfig(**{**known, "experiments": tuple(s.experiments)},
                                    options={k: v for k, v in raw["sources"][i].items() if k not in _SOURCE_FIELDS}))
    return Config(path=path, store_path=_store_path(parsed.store, base), sources=tuple(sources),
                  review=_review(parsed.review, path, base),
                  slos=tuple(Slo(**entry.model_dump(exclude_unset=True)) for entry in parsed.slo))


def _store_path(store: DuckDbStore | DuckLakeStore, base: Path) -> "Path | DuckLakeSpec":
    """[store]: the DuckDB file (`path`, the default backend) or a shared DuckLake store; relative
    paths are relative to the config's folder (the schema refused any that leave it)."""
    if isinstance(store, DuckDbStore):
        return Path(store.path) if Path(store.path).is_absolute() else base / store.path
    from store.ducklake import DuckLakeSpec

    data_path = store.data_path.strip()
    if "://" not in data_path and not Path(data_path).is_absolute():
        data_path = str(base / data_path)
    return DuckLakeSpec(store.catalog.strip(), data_path)


def _review(review: ReviewTable, path: Path | None, base: Path) -> ReviewConfig:
    """[review]; names are compared in the canonical form of `normalise`: one person, one name."""
    policy_dir = None
    if review.policy_dir is not None:
        policy_dir = Path(review.policy_dir) if Path(review.policy_dir).is_absolute() else base / review.policy_dir
    identities: list[KnownIdentity] = []
    owner: dict[str, str] = {}      # canonical name -> the identity that claims it
    for i, entry in enumerate(review.identities):
        label, identity = f"[[review.identities]] #{i + 1}", entry.identity
        if normalise(identity) in {normalise(k.identity) for k in identities}:
            raise _fail(path, ("review", "identities", i, "identity"),
                        f"{label}: identity {identity!r} is listed twice")
        for claimed in (identity, *entry.also_known_as):
            key = normalise(claimed)
            if owner.setdefault(key, normalise(identity)) != normalise(identity):
                raise _fail(path, ("review", "identities", i, "also_known_as"),
                            f"{label} ({identity}): the name {claimed!r} is already an identity or alias of "
                            f"{owner[key]!r}: one name can only be one person")
        identities.append(KnownIdentity(identity, tuple(entry.also_known_as)))
    return ReviewConfig(local_identity=review.local_identity, policy_dir=policy_dir, identities=tuple(identities),
                        reviewers=tuple(Reviewer(r.identity, tuple(r.models)) for r in review.reviewers),
                        allow_unknown_authors=review.allow_unknown_authors)


def _fail(path: Path | None, loc: Loc, message: str) -> ConfigError:
    line = line_of(file_lines(path), loc)
    return ConfigError(f"{path or '<config>'}" + (f", line {line}" if line else "") + f": {message}")


# -- words for a schema error, by its type and where it is ------------------------------------------
def _message(error: ErrorDetails, raw: dict[str, Any]) -> tuple[Loc, str]:
    """(where in the file, what is wrong there)."""
    loc, kind = error["loc"], error["type"]
    if not loc:
        return loc, "must be a TOML table of [store], [[sources]], [review] and [[slo]]"
    top = loc[0]
    if len(loc) == 1 and kind == "extra_forbidden":
        return loc, (f"unknown top-level key(s) {sorted(set(raw) - set(ConfigFile.model_fields))} "
                     "(expected [store], [[sources]], [review], [[slo]])")
    if loc in (("sources",), ("slo",)) and kind == "list_type":
        return loc, f"'{top}' must be an array of tables ([[{top}]])"
    tag: str | None = None
    if top == "sources" and len(loc) > 2 or top == "store" and len(loc) > 1:   # drop the union's tag
        at = 2 if top == "sources" else 1
        tag, loc = str(loc[at]), loc[:at] + loc[at + 1:]
    label, sep, fields, model = _place(loc, raw, tag)
    field_name = str(fields[0]) if fields else None
    if kind == "extra_forbidden":
        if top == "store":
            extra = sorted(set(raw["store"]) - set(model.model_fields))
            text = (f"[store]: unknown field(s) {extra} for backend {tag!r} "
                    f"(expected {sorted(model.model_fields)})")
        else:
            for_kind = f" for kind {tag!r}" if tag else ""
            text = f"{label}: unknown field {field_name!r}{for_kind} (expected {', '.join(model.model_fields)})"
        return loc, text
    if kind == "secret_key":   # found on the whole entry: the key is in the context
        field_name = str((error.get("ctx") or {})["field"])
        loc, text = (*loc, field_name), words(error)
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        field_name = "kind" if top == "sources" else "backend"
        allowed = KINDS if top == "sources" else STORE_BACKENDS
        value = (error.get("ctx") or {}).get("tag")
        text = "missing" if value is None else f"unknown {field_name} {value!r} (expected one of {', '.join(allowed)})"
        loc = (*loc, field_name)
    else:
        text = _words(error, field_name, fields[1] if len(fields) > 1 else None, tag)
    where = f"{label}{sep}field '{field_name}': " if field_name else f"{label}: "
    return loc, where + text


def _place(loc: Loc, raw: dict[str, Any], tag: str | None) -> tuple[str, str, Loc, Any]:
    """(how the message names the table or entry, the separator before 'field', the field path in
    it, the model of that table or entry)."""
    top = loc[0]
    if top == "store":
        return "[store]", " ", loc[1:], DuckLakeStore if tag == "ducklake" else DuckDbStore
    if top == "review" and len(loc) > 2 and isinstance(loc[2], int):
        entry = raw["review"][loc[1]][loc[2]]
        label = f"[[review.{loc[1]}]] #{loc[2] + 1}"
        identity = entry.get("identity") if isinstance(entry, dict) else None
        if isinstance(identity, str) and normalise(identity) and loc[3:4] != ("identity",):
            label += f" ({identity.strip()})"
        return label, ": ", loc[3:], ReviewerEntry if loc[1] == "reviewers" else IdentityEntry
    if top == "review":
        return "[review]", " ", loc[1:], ReviewTable
    entry = raw[top][loc[1]] if len(loc) > 1 else None
    key = "name" if top == "sources" else "endpoint"
    ident = entry.get(key) if isinstance(entry, dict) else None
    named = f"{ident!r}" if isinstance(ident, str) and ident.strip() else f"#{loc[1] + 1}" if len(loc) > 1 else ""
    label = f"source {named}" if top == "sources" else f"[[slo]] {named}"
    return label, ": ", loc[2:], SOURCE_MODELS.get(tag or "", CommonSource) if top == "sources" else SloEntry


def _words(error: ErrorDetails, field_name: str | None, item: Any, tag: str | None) -> str:
    kind, value = error["type"], error.get("input")
    if isinstance(item, int) and field_name in _LIST_OF and kind in ("string_type", "string_pattern_mismatch"):
        return f"must be a list of {_LIST_OF[field_name]}; item {item + 1} is {value!r}"
    if kind == "list_type" and field_name in _LIST_OF:
        return f"must be a list of {_LIST_OF[field_name]}, got {value!r}"
    if kind in ("greater_than_equal", "less_than_equal") and field_name in INT_BOUNDS:
        low, high = INT_BOUNDS[field_name]
        return f"must be between {low} and {high}, got {value}"
    if kind == "string_pattern_mismatch" and field_name in _PATTERN:
        return f"{_PATTERN[field_name]}, got {value!r}"
    if kind == "literal_error" and field_name == "platform" and value in PLATFORMS and tag:
        return f"must be {' or '.join(map(repr, choices(error)))} for kind {tag!r}, got {value!r}"
    if kind == "literal_error" and field_name:
        return f"unknown {field_name} {value!r} (expected one of {', '.join(choices(error))})"
    if kind == "missing" and tag in STORE_BACKENDS:
        return f"missing (required for backend {tag!r})"
    if kind == "missing" and tag and field_name not in _SOURCE_FIELDS:
        return f"missing (required for kind {tag!r})"
    return (f"item {item + 1}: " if isinstance(item, int) else "") + words(error)
