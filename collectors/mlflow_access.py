"""How the MLflow collector reaches a server without side effects: a bearer token for Fabric's
endpoint (kept out of the store), no sqlite store created by mistake, and Unity Catalog model files
read without the stock repository's own client or lineage POST."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from collectors.report import register_secret


@contextlib.contextmanager
def bearer_token(scope: str | None) -> Iterator[None]:
    """Fabric's MLflow endpoint wants an Entra ID token; MLflow sends MLFLOW_TRACKING_TOKEN as bearer."""
    if not scope:
        yield
        return
    from azure.identity import DefaultAzureCredential

    token = DefaultAzureCredential().get_token(scope).token
    register_secret(token)   # a server echoing it back must not get it into the store
    before = os.environ.get("MLFLOW_TRACKING_TOKEN")
    os.environ["MLFLOW_TRACKING_TOKEN"] = token
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        else:
            os.environ["MLFLOW_TRACKING_TOKEN"] = before


def require_existing_sqlite(uri: str | None) -> None:
    """MLflow silently creates a missing sqlite store (and its directories): a mistyped path would look
    like a source whose every run was removed. A collector only reads, so a missing file is an error."""
    if not uri or not uri.startswith("sqlite:"):
        return
    from sqlalchemy.engine.url import make_url

    database = make_url(uri).database
    if database and database != ":memory:" and not Path(database).is_file():
        raise FileNotFoundError(f"no MLflow store at {database} (from {uri!r}); "
                                "the collector only reads and will not create one")


class UcModelFiles:
    """MLflow's Unity Catalog artifact repository (mlflow 3.17.2) on a given client, read-only.

    Two things of the stock repository are left out: its own `MlflowClient` on the process-global
    tracking URI (which creates `mlflow.db` in the working folder), and the best-effort "emit
    lineage" POST it sends before a Files API read (reading never writes)."""

    @staticmethod
    def open(client, registry_uri: str, name: str, version: str):
        from mlflow.store.artifact.artifact_repo import ArtifactRepository
        from mlflow.store.artifact.databricks_sdk_models_artifact_repo import DatabricksSDKModelsArtifactRepository
        from mlflow.store.artifact.unity_catalog_models_artifact_repo import UnityCatalogModelsArtifactRepository
        from mlflow.utils._unity_catalog_utils import is_databricks_sdk_models_artifact_repository_enabled
        from mlflow.utils.databricks_utils import get_databricks_host_creds

        class Repo(UnityCatalogModelsArtifactRepository):
            def __init__(self) -> None:   # what the stock __init__ sets, with this source's client
                ArtifactRepository.__init__(self, f"models:/{name}/{version}", client.tracking_uri, registry_uri)
                self.registry_uri, self.client = registry_uri, client
                self.model_name, self.model_version = name, str(version)

            def _get_artifact_repo(self, lineage_header_info=None):
                if is_databricks_sdk_models_artifact_repository_enabled(get_databricks_host_creds(self.registry_uri)):
                    return DatabricksSDKModelsArtifactRepository(self.model_name, self.model_version,
                                                                 registry_uri=self.registry_uri)
                return super()._get_artifact_repo(lineage_header_info)

        return Repo()
