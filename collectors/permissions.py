"""The API areas each source kind reads, and the role or privilege that grants each one.

One table for `python -m collectors check` (and for any collector that wants to turn a 403 into
"ask for X"). Role names are the platforms' built-in ones, checked against their docs:
- Databricks: Unity Catalog privileges (USE CATALOG, USE SCHEMA, BROWSE, EXECUTE, SELECT) and
  workspace ACLs (CAN VIEW on serving endpoints and jobs, CAN USE on vector search endpoints).
  Lineage needs BROWSE on the table's parent catalog; the metrics export needs read access to the
  endpoint (docs: "Track and export serving endpoint health metrics").
- Azure: `AzureML Data Scientist` / `Reader` (ARM reads), `Monitoring Reader`, `Log Analytics Reader`.
- Fabric: workspace roles Viewer / Contributor; service principals also need the tenant setting
  "Service principals can use Fabric APIs" (newer portals: "Service principals can call Fabric public
  APIs"), and the ML model / ML experiment lists refuse service principals altogether.
- AI Search: with role-based access enabled on the service, `Reader` reads object definitions and
  content metrics (document counts) and `Search Service Contributor` reads and writes definitions;
  `Search Index Data Reader` only queries documents, so it does not grant index statistics.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Area:
    key: str      # stable id (JSON output, tests)
    label: str    # what a person reads
    grant: str    # the role / privilege that lets the identity read this area


_UC_MODELS = ("USE CATALOG and USE SCHEMA on the parent catalog and schema, and EXECUTE "
              "(or BROWSE, metadata only) on the registered models")
_FABRIC_SP = "; a service principal also needs the tenant setting 'Service principals can use Fabric APIs'"
_SEARCH_RBAC = (" on the search service (role-based access must be enabled: "
                "Keys → API access control 'Role-based access control' or 'Both')")

AREAS: dict[str, tuple[Area, ...]] = {
    "mlflow": (
        Area("experiments", "experiments search",
             "READ permission on the experiments (MLflow server auth), or the server's own read access"),
        Area("registered_models", "registered models search",
             "READ permission on the registered models (MLflow server auth), or the server's own read access"),
    ),
    "databricks": (
        Area("uc_catalogs", "UC catalogs/schemas",
             "USE CATALOG (or BROWSE) on the catalogs and USE SCHEMA on their schemas"),
        Area("uc_models", "UC models", _UC_MODELS),
        Area("serving_endpoints", "serving endpoints", "CAN VIEW on the serving endpoints"),
        Area("serving_metrics", "serving metrics", "CAN VIEW (read access) on the serving endpoint"),
        Area("table_lineage", "table lineage", "BROWSE on the table's parent catalog"),
        Area("vector_search", "vector search",
             "CAN USE on the vector search endpoints; USE CATALOG, USE SCHEMA and SELECT on their indexes"),
        Area("jobs", "jobs", "CAN VIEW on the jobs whose runs are read"),
    ),
    "azureml": (
        Area("online_endpoints", "online endpoints", "AzureML Data Scientist or Reader on the Azure ML workspace"),
        Area("deployments", "deployments", "AzureML Data Scientist or Reader on the Azure ML workspace"),
        Area("models", "models", "AzureML Data Scientist or Reader on the Azure ML workspace"),
        Area("monitor_metrics", "Azure Monitor metrics", "Monitoring Reader (or Reader) on the online endpoints"),
        Area("log_analytics", "Log Analytics", "Log Analytics Reader on the Log Analytics workspace"),
    ),
    "fabric": (
        Area("items", "items", "workspace Viewer role (or higher)" + _FABRIC_SP),
        Area("ml_models", "ML models",
             "workspace Viewer role (or higher), as a user: this list refuses service principals and managed "
             "identities (a snapshot then falls back to /items)"),
        Area("ml_experiments", "ML experiments",
             "workspace Viewer role (or higher), as a user: this list refuses service principals and managed "
             "identities (a snapshot then falls back to /items)"),
        Area("lakehouses", "lakehouses", "workspace Viewer role (or higher)" + _FABRIC_SP),
        Area("tables", "tables",
             "workspace Contributor role (or a OneLake security role granting Read) on the lakehouse" + _FABRIC_SP),
        Area("shortcuts", "shortcuts", "workspace Viewer role (or higher) on the lakehouse" + _FABRIC_SP),
    ),
    "azuresearch": (
        Area("indexes", "indexes", "Reader or Search Service Contributor" + _SEARCH_RBAC),
        Area("indexers", "indexers", "Reader or Search Service Contributor" + _SEARCH_RBAC),
        Area("stats", "stats",
             "Reader or Search Service Contributor" + _SEARCH_RBAC
             + "; Search Index Data Reader alone queries documents but cannot read index statistics"),
    ),
}

# The mlflow kind talks to very different servers; what grants read access depends on which one.
_MLFLOW_BY_PLATFORM = {
    "databricks": {"experiments": "CAN READ on the experiments (workspace ACL)",
                   "registered_models": _UC_MODELS + " (Unity Catalog registry)"},
    "fabric": {"experiments": "workspace Viewer role (or higher) on the Fabric workspace",
               "registered_models": "workspace Viewer role (or higher) on the Fabric workspace"},
}


def areas(kind: str) -> tuple[Area, ...]:
    return AREAS[kind]


def grant(kind: str, key: str, platform: str | None = None) -> str:
    """The role or privilege that grants `key` for a source of `kind` (on `platform`, for mlflow)."""
    if kind == "mlflow" and platform in _MLFLOW_BY_PLATFORM:
        return _MLFLOW_BY_PLATFORM[platform][key]
    for area in AREAS[kind]:
        if area.key == key:
            return area.grant
    raise KeyError(f"no API area {key!r} for kind {kind!r}")
