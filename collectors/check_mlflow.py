"""The check's MLflow probe: who the tracking server sees, then experiments and registered models."""
from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from urllib.parse import urlsplit

from collectors.azure_common import default_credential
from collectors.check_base import UNAUTHENTICATED, Blocked, Page, Probe, classify, token_identity
from collectors.check_databricks import DatabricksProbe
from collectors.environment import temporary_env
from collectors.mlflow_access import bearer_token
from collectors.mlflow_source import MlflowSource


class MlflowProbe(Probe):
    def identity(self) -> dict[str, str]:
        uri = self.source.tracking_uri or ""
        parts = urlsplit(uri)
        out: dict[str, str] = {}
        if uri == "databricks" or parts.scheme == "databricks":
            profile = parts.netloc or os.environ.get("DATABRICKS_CONFIG_PROFILE")
            out["tracking"] = "databricks"
            out["auth"] = "Databricks unified auth" + (f", profile {profile}" if profile else "")
            # Ask the workspace who we are through the SDK with the check's budget first: MLflow's own
            # Databricks client retries a dead host for the SDK's default 300 s, out of reach here.
            who = DatabricksProbe(replace(self.source, kind="databricks", options={"profile": parts.netloc}
                                           if parts.netloc else {}), self.timeout, self.sample).identity()
            out.update(host=who["host"], user=who["user"], kind=who["kind"])
        elif parts.scheme in ("http", "https"):
            out["tracking"] = parts.hostname or uri
            out["auth"] = self._http_auth()
        else:
            out["tracking"] = f"{parts.scheme or 'file'} store (local)"
            out["auth"] = "none (local store)"
        if self.source.registry_uri and self.source.registry_uri != uri:
            out["registry"] = urlsplit(self.source.registry_uri).hostname or self.source.registry_uri.split(":")[0]
        if self.source.token_scope:
            try:
                token = default_credential().get_token(self.source.token_scope).token
            except Exception as e:
                raise Blocked(UNAUTHENTICATED, classify(e)[1]) from None
            out.update(token_identity(token))
        return out

    def _http_auth(self) -> str:
        if self.source.token_scope:
            return f"Entra ID bearer token (DefaultAzureCredential, scope {self.source.token_scope})"
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            return "bearer token from MLFLOW_TRACKING_TOKEN"
        if os.environ.get("MLFLOW_TRACKING_USERNAME"):
            return f"basic auth as {os.environ['MLFLOW_TRACKING_USERNAME']}"
        return "none"

    def context(self) -> contextlib.AbstractContextManager:
        stack = contextlib.ExitStack()
        # One attempt per call, bounded: a check must not sit in MLflow's default retry loop.
        stack.enter_context(temporary_env({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
                                           "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(self.timeout)))}))
        stack.enter_context(bearer_token(self.source.token_scope))
        return stack

    @property
    def client(self):
        if not hasattr(self, "_client"):
            self._client = MlflowSource(self.source, self.report).client
        return self._client

    def area_experiments(self) -> Page:
        page = self.client.search_experiments(max_results=self.sample)
        return len(page), bool(page.token)

    def area_registered_models(self) -> Page:
        page = self.client.search_registered_models(max_results=self.sample)
        return len(page), bool(page.token)
