"""The `governance.toml` contract (DESIGN.md): parsed with tomllib, validated before anything is written.

Every error names the file, the source (by name or position) and the field, so a pipeline log is
enough to fix it. Secrets never live here: auth comes from env vars, Databricks profiles,
DefaultAzureCredential or `.streamlit/secrets.toml`.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Kinds with a collector in this version; the contract reserves databricks | fabric | azureml too.
KINDS = ("mlflow",)
RESERVED_KINDS = ("databricks", "fabric", "azureml")
PLATFORMS = ("databricks", "fabric", "azureml")
DEFAULT_STORE_PATH = "data/waymark.duckdb"
# Keys that look like credentials: refusing them keeps secrets out of files that get committed.
SECRET_KEYS = ("token", "password", "client_secret", "secret", "api_key", "access_key")


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
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind}, {self.platform})"


@dataclass(frozen=True)
class Config:
    path: Path | None
    store_path: Path
    sources: tuple[SourceConfig, ...]

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
}
# Fields each kind needs; kinds landing later add theirs here.
_REQUIRED_BY_KIND = {"mlflow": ("tracking_uri",)}
# Extra keys a kind accepts beyond the common ones; anything else is a typo and is refused.
_OPTIONS_BY_KIND: dict[str, set[str]] = {"mlflow": set()}


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError naming file, source and field."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read config file: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    return parse_config(raw, p)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> Config:
    where = str(path) if path else "<config>"
    base = path.parent if path else Path.cwd()

    unknown_top = set(raw) - {"store", "sources"}
    if unknown_top:
        raise ConfigError(f"{where}: unknown top-level key(s) {sorted(unknown_top)} (expected [store], [[sources]])")

    store = raw.get("store", {})
    if not isinstance(store, dict):
        raise ConfigError(f"{where}: [store] must be a table")
    unknown_store = set(store) - {"path"}
    if unknown_store:
        raise ConfigError(f"{where}: [store]: unknown field(s) {sorted(unknown_store)}")
    store_path = store.get("path", DEFAULT_STORE_PATH)
    if not isinstance(store_path, str) or not store_path.strip():
        raise ConfigError(f"{where}: [store] field 'path' must be a non-empty string")
    resolved_store = Path(store_path) if Path(store_path).is_absolute() else (base / store_path)

    sources_raw = raw.get("sources", [])
    if not isinstance(sources_raw, list):
        raise ConfigError(f"{where}: 'sources' must be an array of tables ([[sources]])")
    sources: list[SourceConfig] = []
    seen: set[str] = set()
    for i, s in enumerate(sources_raw, start=1):
        sources.append(_parse_source(s, i, where, seen))
    return Config(path=path, store_path=resolved_store, sources=tuple(sources))


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
        if key not in _SOURCE_FIELDS:
            continue  # kind-specific options, checked by the kind's collector
        if not isinstance(value, _SOURCE_FIELDS[key]) or (isinstance(value, bool) and bool not in _SOURCE_FIELDS[key]):
            want = " or ".join(t.__name__ for t in _SOURCE_FIELDS[key])
            raise fail(key, f"must be {want}, got {type(value).__name__} {value!r}")
    if not name.strip() or any(c.isspace() for c in name):
        raise fail("name", f"must be a non-empty name without spaces, got {name!r}")
    if name in seen:
        raise fail("name", "duplicate source name (names must be unique)")
    seen.add(name)
    if s["kind"] in RESERVED_KINDS:
        raise fail("kind", f"kind {s['kind']!r} is not available in this version (available: {', '.join(KINDS)})")
    if s["kind"] not in KINDS:
        raise fail("kind", f"unknown kind {s['kind']!r} (expected one of {', '.join(KINDS)})")
    if s["platform"] not in PLATFORMS:
        raise fail("platform", f"unknown platform {s['platform']!r} (expected one of {', '.join(PLATFORMS)})")
    for req in _REQUIRED_BY_KIND[s["kind"]]:
        if not s.get(req):
            raise fail(req, f"missing (required for kind {s['kind']!r})")
    if s.get("lookback_seconds", 0) < 0:
        raise fail("lookback_seconds", "must be >= 0")
    experiments = s.get("experiments", [])
    if not all(isinstance(e, str) for e in experiments):
        raise fail("experiments", "must be a list of experiment names")
    extra = sorted(set(s) - set(_SOURCE_FIELDS) - _OPTIONS_BY_KIND[s["kind"]])
    if extra:
        raise fail(extra[0], f"unknown field for kind {s['kind']!r}")
    known = {k: v for k, v in s.items() if k in _SOURCE_FIELDS}
    known["experiments"] = tuple(experiments)
    options = {k: v for k, v in s.items() if k not in _SOURCE_FIELDS}
    return SourceConfig(**known, options=options)
