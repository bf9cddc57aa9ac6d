"""The `governance.toml` contract (DESIGN.md): parsed with tomllib, validated before anything is written.

Every error names the file, the source (by name or position) and the field, so a pipeline log is
enough to fix it. Secrets never live here: auth comes from env vars, Databricks profiles,
DefaultAzureCredential or `.streamlit/secrets.toml`.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from collectors.config_review import KnownIdentity, ReviewConfig, Reviewer, normalise

if TYPE_CHECKING:
    from store.ducklake import DuckLakeSpec

# Every kind has a collector (collectors/runner.py SOURCE_KINDS).
KINDS = ("mlflow", "databricks", "azureml", "fabric", "azuresearch")
PLATFORMS = ("databricks", "fabric", "azureml")
DEFAULT_STORE_PATH = "data/waymark.duckdb"
STORE_BACKENDS = ("duckdb", "ducklake")
# Keys that look like credentials: refusing them keeps secrets out of files that get committed.
SECRET_KEYS = ("token", "password", "client_secret", "secret", "api_key", "access_key")

# Query parameters that carry a credential (SAS `sig`, OAuth `code`/`access_token`, API keys).
SECRET_QUERY_PARAMS = frozenset({"token", "access_token", "id_token", "refresh_token", "sig", "signature",
                                 "code", "password", "pwd", "secret", "client_secret", "api_key", "apikey",
                                 "api-key", "key", "x-ms-signature", "x-amz-signature", "x-goog-signature"})

# Source names end up in CLI output, page markdown, file names and logs: plain characters only.
SOURCE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Allowed range of every integer setting (any kind); a typo like 36000000 fails here, not mid-pass.
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "lookback_seconds": (0, 30 * 86_400),
    "http_timeout_seconds": (1, 600),
    "retry_timeout_seconds": (1, 3_600),
    "full_every_hours": (0, 366 * 24),
    "lineage_depth": (0, 10),
    "metrics_window_hours": (1, 93 * 24),       # Azure Monitor keeps platform metrics 93 days
    "metrics_grain_minutes": (1, 1_440),
}


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


_SOURCE_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "kind": (str,),
    "platform": (str,),
    "tracking_uri": (str,),
    "registry_uri": (str,),
    "git_sha_param": (str,),
    "lookback_seconds": (int,),
    "experiments": (list,),
    "token_scope": (str,),
    "read_model_origins": (bool,),
    "allow_registry_writes": (bool,),
    "full_every_hours": (int,),
}
# Fields each kind needs (the Azure kinds are added below with their options).
_REQUIRED_BY_KIND = {"mlflow": ("tracking_uri",), "databricks": ()}
# Extra keys a kind accepts beyond the common ones; anything else is a typo and is refused.
# Per-request timeout and how long retries may go on, for every kind (defaults per kind in its collector).
_TIMEOUT_OPTIONS: dict[str, tuple[type, ...]] = {"http_timeout_seconds": (int,), "retry_timeout_seconds": (int,)}
_OPTIONS_BY_KIND: dict[str, set[str]] = {"mlflow": set(_TIMEOUT_OPTIONS)}
# kind "databricks" (collectors/databricks_source.py). Auth is Databricks unified auth: host/profile/
# auth_type here, the credential itself from env vars, a profile, OAuth M2M or the Azure CLI.
_DATABRICKS_OPTIONS: dict[str, tuple[type, ...]] = {
    "host": (str,), "profile": (str,), "auth_type": (str,), "catalogs": (list,), "schemas": (list,),
    "lineage_depth": (int,), "metrics": (bool,), "http_timeout_seconds": (int,), "retry_timeout_seconds": (int,),
}
_OPTIONS_BY_KIND["databricks"] = set(_DATABRICKS_OPTIONS)
# kinds "azureml", "fabric", "azuresearch" (collectors/azureml_source.py, fabric_source.py, search_source.py).
# Auth is DefaultAzureCredential; *_endpoint overrides exist for sovereign clouds and local stubs.
_AZURE_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "azureml": {"subscription_id": (str,), "resource_group": (str,), "workspace": (str,), "arm_endpoint": (str,),
                "api_version": (str,), "metrics_endpoint": (str,), "logs_endpoint": (str,),
                "log_analytics_workspace_id": (str,), "metrics_window_hours": (int,),
                "metrics_grain_minutes": (int,)},
    "fabric": {"workspace_id": (str,), "fabric_endpoint": (str,), "onelake_table_endpoint": (str,),
               "item_types": (list,), "lakehouse_tables": (bool,), "shortcuts": (bool,)},
    "azuresearch": {"search_endpoint": (str,), "api_version": (str,), "indexes": (list,)},
}
_REQUIRED_BY_KIND.update({"azureml": ("subscription_id", "resource_group", "workspace"),
                          "fabric": ("workspace_id",), "azuresearch": ("search_endpoint",)})
for _options in _AZURE_OPTIONS.values():
    _options.update(_TIMEOUT_OPTIONS)
_OPTIONS_BY_KIND.update({kind: set(options) for kind, options in _AZURE_OPTIONS.items()})


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


def _array_of_tables(raw: Any, where: str, name: str, not_a_list: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """([[name]] #i, table) for each entry of an array of tables, with errors naming the entry."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: {not_a_list}")
    for i, entry in enumerate(raw, start=1):
        label = f"[[{name}]] #{i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {label}: must be a table")
        yield label, entry


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    where = str(path) if path else "<config>"
    base = path.parent if path else Path.cwd()

    unknown_top = set(raw) - {"store", "sources", "review", "slo"}
    if unknown_top:
        raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown_top)} "
                          "(expected [store], [[sources]], [review], [[slo]])")

    resolved_store = _parse_store(raw.get("store", {}), where, base)

    sources_raw = raw.get("sources", [])
    if not isinstance(sources_raw, list):
        raise ConfigError(f"{where}: 'sources' must be an array of tables ([[sources]])")
    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for i, s in enumerate(sources_raw, start=1):
        sources.append(_parse_source(s, i, where, seen))
    review = _parse_review(raw.get("review", {}), where, base)
    slos = _parse_slos(raw.get("slo", []), where)
    return Config(path=path, store_path=resolved_store, sources=tuple(sources), review=review, slos=slos)


def _parse_store(store: Any, where: str, base: Path) -> "Path | DuckLakeSpec":
    """[store]: the DuckDB file (`path`, the default backend) or a shared DuckLake store
    (`backend = "ducklake"`, `catalog`: a PostgreSQL connection string without a password,
    `data_path`: a folder or an abfss:// / s3:// / gs:// URL for the Parquet files)."""
    from store.ducklake import DuckLakeSpec, SpecError, check_catalog

    if not isinstance(store, dict):
        raise ConfigError(f"{where}: [store] must be a table")
    backend = store.get("backend", "duckdb")
    if backend not in STORE_BACKENDS:
        raise ConfigError(f"{where}: [store] field 'backend' must be one of {', '.join(STORE_BACKENDS)}, "
                          f"not {backend!r}")
    allowed = {"backend", "path"} if backend == "duckdb" else {"backend", "catalog", "data_path"}
    unknown_store = set(store) - allowed
    if unknown_store:
        raise ConfigError(f"{where}: [store]: unknown field(s) {sorted(unknown_store)} for backend {backend!r} "
                          f"(expected {sorted(allowed)})")
    if backend == "duckdb":
        store_path = store.get("path", DEFAULT_STORE_PATH)
        if not isinstance(store_path, str) or not store_path.strip():
            raise ConfigError(f"{where}: [store] field 'path' must be a non-empty string")
        if Path(store_path).is_absolute():
            return Path(store_path)
        resolved = base / store_path
        if not resolved.resolve().is_relative_to(base.resolve()):
            raise ConfigError(f"{where}: [store] field 'path': {store_path!r} points outside the config's folder "
                              f"({base}); write it as an absolute path if that is intended")
        return resolved
    for name in ("catalog", "data_path"):
        value = store.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: [store] field {name!r} must be a non-empty string (backend 'ducklake')")
    try:
        check_catalog(store["catalog"])
    except SpecError as e:
        raise ConfigError(f"{where}: [store] {e}") from None
    data_path = store["data_path"].strip()
    if "://" not in data_path and not Path(data_path).is_absolute():
        local = base / data_path            # a local folder, relative to the config like `path`
        if not local.resolve().is_relative_to(base.resolve()):
            raise ConfigError(f"{where}: [store] field 'data_path': {data_path!r} points outside the config's "
                              f"folder ({base}); write it as an absolute path if that is intended")
        data_path = str(local)
    return DuckLakeSpec(store["catalog"].strip(), data_path)


def _parse_review(r: Any, where: str, base: Path) -> ReviewConfig:
    """[review] local_identity, policy_dir, allow_unknown_authors, [[review.reviewers]] identity + models
    (globs), [[review.identities]] identity + also_known_as. Names are compared in the canonical form
    of `normalise`, so one that is empty there (only invisible characters) is an error."""
    if not isinstance(r, dict):
        raise ConfigError(f"{where}: [review] must be a table")
    expected = "local_identity, policy_dir, allow_unknown_authors, [[review.reviewers]], [[review.identities]]"
    unknown = sorted(set(r) - {"local_identity", "reviewers", "policy_dir", "identities", "allow_unknown_authors"})
    if unknown:
        raise ConfigError(f"{where}: [review]: unknown field {unknown[0]!r} (expected {expected})")

    def name(value: Any, what: str) -> str:
        if not isinstance(value, str) or not normalise(value):
            raise ConfigError(f"{where}: {what}: must be a non-empty string of visible characters, got {value!r}")
        return value.strip()

    local = r.get("local_identity")
    if local is not None:
        local = name(local, "[review] field 'local_identity'")
    policy_dir = r.get("policy_dir")
    if policy_dir is not None and (not isinstance(policy_dir, str) or not policy_dir.strip()):
        raise ConfigError(f"{where}: [review] field 'policy_dir': must be a non-empty string, got {policy_dir!r}")
    resolved_dir = None
    if policy_dir is not None:
        resolved_dir = Path(policy_dir) if Path(policy_dir).is_absolute() else base / policy_dir
    allow_unknown = r.get("allow_unknown_authors", False)
    if not isinstance(allow_unknown, bool):
        raise ConfigError(f"{where}: [review] field 'allow_unknown_authors': must be true or false, "
                          f"got {allow_unknown!r}")
    reviewers = []
    for label, rv in _array_of_tables(r.get("reviewers", []), where, "review.reviewers",
                                      "[review] field 'reviewers': must be an array of tables ([[review.reviewers]])"):
        extra = sorted(set(rv) - {"identity", "models"})
        if extra:
            raise ConfigError(f"{where}: {label}: unknown field {extra[0]!r} (expected identity, models)")
        identity = name(rv.get("identity"), f"{label}: field 'identity'")
        models = rv.get("models", ["*"])
        if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
            raise ConfigError(f"{where}: {label} ({identity}): field 'models': must be a non-empty list of "
                              f"model-name globs, got {models!r}")
        reviewers.append(Reviewer(identity, tuple(models)))
    identities = []
    owner: dict[str, str] = {}      # canonical name -> the identity that claims it
    for label, entry in _array_of_tables(r.get("identities", []), where, "review.identities",
                                         "[review] field 'identities': must be an array of tables "
                                         "([[review.identities]])"):
        extra = sorted(set(entry) - {"identity", "also_known_as"})
        if extra:
            raise ConfigError(f"{where}: {label}: unknown field {extra[0]!r} (expected identity, also_known_as)")
        identity = name(entry.get("identity"), f"{label}: field 'identity'")
        aliases = entry.get("also_known_as", [])
        if not isinstance(aliases, list):
            raise ConfigError(f"{where}: {label} ({identity}): field 'also_known_as': must be a list of names, "
                              f"got {aliases!r}")
        aliases = [name(a, f"{label} ({identity}): field 'also_known_as'") for a in aliases]
        if normalise(identity) in {normalise(k.identity) for k in identities}:
            raise ConfigError(f"{where}: {label}: identity {identity!r} is listed twice")
        for claimed in (identity, *aliases):
            key = normalise(claimed)
            if owner.setdefault(key, normalise(identity)) != normalise(identity):
                raise ConfigError(f"{where}: {label} ({identity}): the name {claimed!r} is already an identity or "
                                  f"alias of {owner[key]!r}: one name can only be one person")
        identities.append(KnownIdentity(identity, tuple(aliases)))
    return ReviewConfig(local_identity=local, reviewers=tuple(reviewers), policy_dir=resolved_dir,
                        identities=tuple(identities), allow_unknown_authors=allow_unknown)


def _parse_source(s: Any, index: int, where: str, seen: set[str]) -> SourceConfig:
    label = f"source #{index}"
    if not isinstance(s, dict):
        raise ConfigError(f"{where}: {label}: must be a table")
    name = s.get("name")
    if isinstance(name, str) and name.strip():
        label = f"source {name!r}"

    def fail(field_name: str, msg: str) -> ConfigError:
        return ConfigError(f"{where}: {label}: field '{field_name}': {msg}")

    for key in s:
        if key.lower() in SECRET_KEYS or key.lower().endswith(("_token", "_secret", "_password")):
            raise fail(key, "secrets do not belong in the config file; use env vars, a Databricks profile, "
                            "DefaultAzureCredential or .streamlit/secrets.toml")
    for req in ("name", "kind", "platform"):
        if req not in s:
            raise fail(req, "missing")
    for key, value in s.items():
        if isinstance(value, str):
            _refuse_credentials_in_uri(value, key, fail)
    for key, value in s.items():
        if key not in _SOURCE_FIELDS:
            continue  # kind-specific options, checked by the kind's collector
        if not isinstance(value, _SOURCE_FIELDS[key]) or (isinstance(value, bool) and bool not in _SOURCE_FIELDS[key]):
            want = " or ".join(t.__name__ for t in _SOURCE_FIELDS[key])
            raise fail(key, f"must be {want}, got {type(value).__name__} {value!r}")
    if not SOURCE_NAME.fullmatch(name):
        raise fail("name", f"must be 1-64 characters from A-Z a-z 0-9 . _ - (no spaces), got {name!r}")
    if name in seen:
        raise fail("name", "duplicate source name (names must be unique)")
    seen.add(name)
    if s["kind"] not in KINDS:
        raise fail("kind", f"unknown kind {s['kind']!r} (expected one of {', '.join(KINDS)})")
    if s["platform"] not in PLATFORMS:
        raise fail("platform", f"unknown platform {s['platform']!r} (expected one of {', '.join(PLATFORMS)})")
    for req in _REQUIRED_BY_KIND[s["kind"]]:
        if not s.get(req):
            raise fail(req, f"missing (required for kind {s['kind']!r})")
    for key, (low, high) in INT_BOUNDS.items():
        value = s.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise fail(key, f"must be between {low} and {high}, got {value}")
    experiments = s.get("experiments", [])
    if not all(isinstance(e, str) for e in experiments):
        raise fail("experiments", "must be a list of experiment names")
    extra = sorted(set(s) - set(_SOURCE_FIELDS) - _OPTIONS_BY_KIND[s["kind"]])
    if s["kind"] == "databricks" and not extra:
        _check_databricks(s, fail)
    if s["kind"] in _AZURE_OPTIONS and not extra:
        _check_azure(s, fail)
    if s["kind"] == "mlflow":
        for key, types in _TIMEOUT_OPTIONS.items():
            if key in s and (not isinstance(s[key], types) or isinstance(s[key], bool)):
                raise fail(key, f"must be int, got {type(s[key]).__name__} {s[key]!r}")
    if extra:
        raise fail(extra[0], f"unknown field for kind {s['kind']!r}")
    known = {k: v for k, v in s.items() if k in _SOURCE_FIELDS}
    known["experiments"] = tuple(experiments)
    options = {k: v for k, v in s.items() if k not in _SOURCE_FIELDS}
    return SourceConfig(**known, options=options)


def _refuse_credentials_in_uri(value: str, key: str, fail) -> None:
    """A URI with `user:password@` or a secret query parameter would put a credential in a committed file
    (and in every error the client raises); auth belongs in env vars, profiles or credentials."""
    if "://" not in value:
        return
    try:
        parts = urlsplit(value.strip())
        password = parts.password
    except ValueError:
        raise fail(key, "is not a valid URI") from None
    hint = "credentials do not belong in the config file; use env vars, a Databricks profile or DefaultAzureCredential"
    if password is not None:
        raise fail(key, f"contains a password (user:password@host); {hint}")
    secret = sorted({k.lower() for k, _ in parse_qsl(parts.query, keep_blank_values=True)} & SECRET_QUERY_PARAMS
                    | {k.lower() for k, _ in parse_qsl(parts.fragment, keep_blank_values=True)} & SECRET_QUERY_PARAMS)
    if secret:
        raise fail(key, f"contains the secret query parameter {secret[0]!r}; {hint}")


def _check_type(key: str, value: Any, types: tuple[type, ...], fail) -> None:
    """One option's type; a bool is not an int here unless bool is listed."""
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        want = " or ".join(t.__name__ for t in types)
        raise fail(key, f"must be {want}, got {type(value).__name__} {value!r}")


def _check_databricks(s: dict[str, Any], fail) -> None:
    """Types and shapes of the databricks options (unknown keys were refused before)."""
    if s["platform"] != "databricks":
        raise fail("platform", f"kind 'databricks' collects a Databricks workspace: platform must be 'databricks', "
                               f"got {s['platform']!r}")
    for key, types in _DATABRICKS_OPTIONS.items():
        if key not in s:
            continue
        value = s[key]
        _check_type(key, value, types, fail)
        if isinstance(value, str) and not value.strip():
            raise fail(key, "must not be empty")
    host = s.get("host")
    if host is not None and not host.startswith(("https://", "http://")):
        raise fail("host", f"must be a workspace URL starting with https://, got {host!r}")
    catalogs = s.get("catalogs", [])
    if not all(isinstance(c, str) and c and "." not in c for c in catalogs):
        raise fail("catalogs", f"must be a list of catalog names (no dots), got {catalogs!r}")
    schemas = s.get("schemas", [])
    if not all(isinstance(x, str) and len(x.split(".")) == 2 and all(x.split(".")) for x in schemas):
        raise fail("schemas", f"must be a list of 'catalog.schema' names, got {schemas!r}")


def _check_azure(s: dict[str, Any], fail) -> None:
    """Types of the azureml / fabric / azuresearch options (unknown keys were refused before)."""
    for key, types in _AZURE_OPTIONS[s["kind"]].items():
        if key not in s:
            continue
        value = s[key]
        _check_type(key, value, types, fail)
        if isinstance(value, list) and not all(isinstance(v, str) and v for v in value):
            raise fail(key, "must be a list of non-empty strings")
        if key.endswith("_endpoint") and not value.startswith(("https://", "http://")):
            raise fail(key, f"must be an http(s) URL, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
            raise fail(key, f"must be > 0, got {value}")


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


_SLO_FIELDS: dict[str, tuple[type, ...]] = {
    "endpoint": (str,), "platform": (str,), "serves": (str,), "registry_source": (str,),
    "latency_p95_ms": (int, float), "error_rate_pct": (int, float), "min_requests_per_minute": (int, float),
    "amber_at": (int, float), "stale_after_minutes": (int, float),
}


def _parse_slos(raw: Any, where: str) -> tuple[Slo, ...]:
    out = []
    for label, entry in _array_of_tables(raw, where, "slo", "'slo' must be an array of tables ([[slo]])"):
        if isinstance(entry.get("endpoint"), str):
            label = f"[[slo]] {entry['endpoint']!r}"
        for key, value in entry.items():
            if key not in _SLO_FIELDS:
                raise ConfigError(f"{where}: {label}: unknown field {key!r} (expected {', '.join(_SLO_FIELDS)})")
            types = _SLO_FIELDS[key]
            if not isinstance(value, types) or isinstance(value, bool):
                want = " or ".join(t.__name__ for t in types)
                raise ConfigError(f"{where}: {label}: field '{key}': must be {want}, got {value!r}")
            if float in types and value < 0:
                raise ConfigError(f"{where}: {label}: field '{key}': must be >= 0, got {value!r}")
        if entry.get("platform") is not None and entry["platform"] not in PLATFORMS:
            raise ConfigError(f"{where}: {label}: field 'platform': unknown platform {entry['platform']!r} "
                              f"(expected one of {', '.join(PLATFORMS)})")
        serves = entry.get("serves")
        if serves is not None and (serves.count("@") != 1 or not all(serves.split("@"))):
            raise ConfigError(f"{where}: {label}: field 'serves': must be 'model@alias', got {serves!r}")
        if not 0 < entry.get("amber_at", 0.8) <= 1:
            raise ConfigError(f"{where}: {label}: field 'amber_at': must be in (0, 1], got {entry['amber_at']!r}")
        out.append(Slo(**{k: (float(v) if isinstance(v, int) and float in _SLO_FIELDS[k] else v)
                          for k, v in entry.items()}))
    return tuple(out)
