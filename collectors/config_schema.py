"""The `governance.toml` schema as pydantic v2 models: strict (TOML's own types, nothing coerced),
unknown keys refused, one model of options per source kind (chosen by `kind`), every integer within
its range. The project's own rules (no credential in a URI, a store path inside the config's folder,
a visible person's name) raise errors with their own type codes; collectors/config.py words them.
"""
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StringConstraints, Tag,
                      ValidationInfo, field_validator)
from pydantic_core import PydanticCustomError

from collectors.config_review import normalise
from collectors.toml_errors import NonBlank

Platform = Literal["databricks", "fabric", "azureml"]
PLATFORMS = get_args(Platform)
DEFAULT_STORE_PATH = "data/waymark.duckdb"
STORE_BACKENDS = ("duckdb", "ducklake")
# Keys that look like credentials: refusing them keeps secrets out of files that get committed.
SECRET_KEYS = ("token", "password", "client_secret", "secret", "api_key", "access_key")

# Query parameters that carry a credential (SAS `sig`, OAuth `code`/`access_token`, API keys).
SECRET_QUERY_PARAMS = frozenset({"token", "access_token", "id_token", "refresh_token", "sig", "signature",
                                 "code", "password", "pwd", "secret", "client_secret", "api_key", "apikey",
                                 "api-key", "key", "x-ms-signature", "x-amz-signature", "x-goog-signature"})

# Source names end up in CLI output, page markdown, file names and logs: plain characters only.
SOURCE_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
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


def _no_secret_keys(raw: object) -> object:
    """A key that looks like a credential is refused before anything else about its source (whatever
    its kind), so the file's secret is the first thing its author hears about."""
    for key in raw if isinstance(raw, dict) else ():
        if key.lower() in SECRET_KEYS or key.lower().endswith(("_token", "_secret", "_password")):
            raise PydanticCustomError("secret_key", "secrets do not belong in the config file; use env vars, "
                                      "a Databricks profile, DefaultAzureCredential or .streamlit/secrets.toml",
                                      {"field": key})
    return raw


def _no_credentials(value: str) -> str:
    """A URI with `user:password@` or a secret query parameter would put a credential in a committed file
    (and in every error the client raises); auth belongs in env vars, profiles or credentials."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value.strip())
        password = parts.password
    except ValueError:
        raise PydanticCustomError("invalid_uri", "is not a valid URI") from None
    hint = "credentials do not belong in the config file; use env vars, a Databricks profile or DefaultAzureCredential"
    if password is not None:
        raise PydanticCustomError("password_in_uri", "contains a password (user:password@host); {hint}", {"hint": hint})
    found = {k.lower() for part in (parts.query, parts.fragment) for k, _ in parse_qsl(part, keep_blank_values=True)}
    secret = sorted(found & SECRET_QUERY_PARAMS)
    if secret:
        raise PydanticCustomError("secret_in_uri", "contains the secret query parameter {param}; {hint}",
                                  {"param": repr(secret[0]), "hint": hint})
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise PydanticCustomError("http_url", "must be an http(s) URL, got {value}", {"value": repr(value)})
    return value


def _visible_name(value: str) -> str:
    if not normalise(value):
        raise PydanticCustomError("invisible_name", "must be a non-empty string of visible characters, got {value}",
                                  {"value": repr(value)})
    return value.strip()


def _bounded(key: str) -> type[int]:
    low, high = INT_BOUNDS[key]
    return Annotated[int, Field(ge=low, le=high)]   # type: ignore[return-value]


# Every string of a source is screened for credentials; the error types say which rule failed.
Text = Annotated[str, AfterValidator(_no_credentials)]
Needed = Annotated[NonBlank, AfterValidator(_no_credentials)]   # a required string: not blank
Url = Annotated[Text, AfterValidator(_http_url)]
SourceName = Annotated[str, StringConstraints(pattern=SOURCE_NAME_PATTERN)]
CatalogName = Annotated[str, StringConstraints(pattern=r"^[^.]+$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[^.]+\.[^.]+$")]
PersonName = Annotated[str, AfterValidator(_visible_name)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CommonSource(Strict):
    """The fields of every kind, kept on SourceConfig; the kinds' own options go to `options`."""
    name: SourceName
    kind: str
    platform: Platform
    tracking_uri: Text | None = None
    registry_uri: Text | None = None
    git_sha_param: Text = "git_sha"
    lookback_seconds: _bounded("lookback_seconds") = 3600   # type: ignore[valid-type]
    experiments: list[Text] = []
    token_scope: Text | None = None
    read_model_origins: bool = True
    allow_registry_writes: bool = False
    full_every_hours: _bounded("full_every_hours") = 24   # type: ignore[valid-type]


class _Timeouts(CommonSource):
    """Per-request timeout and how long retries may go on, for every kind (defaults per kind in its collector)."""
    http_timeout_seconds: _bounded("http_timeout_seconds") | None = None   # type: ignore[valid-type]
    retry_timeout_seconds: _bounded("retry_timeout_seconds") | None = None   # type: ignore[valid-type]


class MlflowSource(_Timeouts):
    kind: Literal["mlflow"]
    tracking_uri: Needed


class DatabricksSource(_Timeouts):
    """collectors/databricks_source.py. Auth is Databricks unified auth: host/profile/auth_type here,
    the credential itself from env vars, a profile, OAuth M2M or the Azure CLI."""
    kind: Literal["databricks"]
    platform: Literal["databricks"]   # it collects a Databricks workspace
    host: Annotated[Needed, StringConstraints(pattern=r"^https?://")] | None = None
    profile: Needed | None = None
    auth_type: Needed | None = None
    catalogs: list[CatalogName] | None = None
    schemas: list[SchemaName] | None = None
    lineage_depth: _bounded("lineage_depth") | None = None   # type: ignore[valid-type]
    metrics: bool | None = None


# The Azure kinds (collectors/azureml_source.py, fabric_source.py, search_source.py). Auth is
# DefaultAzureCredential; *_endpoint overrides exist for sovereign clouds and local stubs.
class AzureMLSource(_Timeouts):
    kind: Literal["azureml"]
    subscription_id: Needed
    resource_group: Needed
    workspace: Needed
    arm_endpoint: Url | None = None
    api_version: Text | None = None
    metrics_endpoint: Url | None = None
    logs_endpoint: Url | None = None
    log_analytics_workspace_id: Text | None = None
    metrics_window_hours: _bounded("metrics_window_hours") | None = None   # type: ignore[valid-type]
    metrics_grain_minutes: _bounded("metrics_grain_minutes") | None = None   # type: ignore[valid-type]


class FabricSource(_Timeouts):
    kind: Literal["fabric"]
    workspace_id: Needed
    fabric_endpoint: Url | None = None
    onelake_table_endpoint: Url | None = None
    item_types: list[Needed] | None = None
    lakehouse_tables: bool | None = None
    shortcuts: bool | None = None


class SearchSource(_Timeouts):
    kind: Literal["azuresearch"]
    search_endpoint: Annotated[Needed, AfterValidator(_http_url)]
    api_version: Text | None = None
    indexes: list[Needed] | None = None


Source = Annotated[MlflowSource | DatabricksSource | AzureMLSource | FabricSource | SearchSource,
                   Field(discriminator="kind"), BeforeValidator(_no_secret_keys)]
SOURCE_MODELS = {get_args(m.model_fields["kind"].annotation)[0]: m
                 for m in (MlflowSource, DatabricksSource, AzureMLSource, FabricSource, SearchSource)}
# Every kind has a collector (collectors/runner.py SOURCE_KINDS).
KINDS = tuple(SOURCE_MODELS)


def _outside(value: str, info: ValidationInfo) -> str:
    """A relative store path stays inside the config's folder (it resolves against it)."""
    base: Path = (info.context or {}).get("base", Path.cwd())
    relative = value.strip()
    if "://" not in relative and not Path(relative).is_absolute() \
            and not (base / relative).resolve().is_relative_to(base.resolve()):
        raise PydanticCustomError("outside_config_folder", "{value} points outside the config's folder ({base}); "
                                  "write it as an absolute path if that is intended",
                                  {"value": repr(value), "base": str(base)})
    return value


class DuckDbStore(Strict):
    backend: Literal["duckdb"] = "duckdb"
    path: Annotated[NonBlank, AfterValidator(_outside)] = DEFAULT_STORE_PATH


class DuckLakeStore(Strict):
    """`catalog`: a PostgreSQL connection string without a password; `data_path`: a folder or an
    abfss:// / s3:// / gs:// URL for the Parquet files."""
    backend: Literal["ducklake"]
    catalog: NonBlank
    data_path: Annotated[NonBlank, AfterValidator(_outside)]

    @field_validator("catalog")
    @classmethod
    def _no_password(cls, value: str) -> str:
        from store.ducklake import SpecError, check_catalog

        try:
            check_catalog(value)
        except SpecError as e:
            raise PydanticCustomError("password_in_catalog", "{reason}",
                                      {"reason": str(e).removeprefix("field 'catalog' ")}) from None
        return value


def _backend(raw: object) -> object:
    return raw.get("backend", "duckdb") if isinstance(raw, dict) else "duckdb"


Store = Annotated[Annotated[DuckDbStore, Tag("duckdb")] | Annotated[DuckLakeStore, Tag("ducklake")],
                  Discriminator(_backend)]


class ReviewerEntry(Strict):
    identity: PersonName
    models: list[NonBlank] = Field(default=["*"], min_length=1)   # fnmatch globs over model names


class IdentityEntry(Strict):
    identity: PersonName
    also_known_as: list[PersonName] = []


class ReviewTable(Strict):
    local_identity: PersonName | None = None
    policy_dir: NonBlank | None = None
    allow_unknown_authors: bool = False
    reviewers: list[ReviewerEntry] = []
    identities: list[IdentityEntry] = []


NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class SloEntry(Strict):
    endpoint: str = "*"
    platform: Platform | None = None
    serves: Annotated[str, StringConstraints(pattern=r"^[^@]+@[^@]+$")] | None = None
    registry_source: str | None = None
    latency_p95_ms: NonNegative | None = None
    error_rate_pct: NonNegative | None = None
    min_requests_per_minute: NonNegative | None = None
    amber_at: Annotated[float, Field(gt=0, le=1)] = 0.8
    stale_after_minutes: NonNegative = 60.0


class ConfigFile(Strict):
    store: Store = DuckDbStore()
    sources: list[Source] = []
    review: ReviewTable = ReviewTable()
    slo: list[SloEntry] = []
