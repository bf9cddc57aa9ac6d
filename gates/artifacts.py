"""Artifact criteria: whether the files a policy requires are in the registered version (or its
run), listed read-only through each source's own MLflow registry."""
from __future__ import annotations

import os
import threading
from typing import Any

import pandas as pd

from gates.context import Context, _s
from gates.policy import Policy
from gates.result import FAIL, PASS, UNKNOWN, Criterion


def artifact_criteria(ctx: Context, policy: Policy, source: str, name: str, version: str,
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
