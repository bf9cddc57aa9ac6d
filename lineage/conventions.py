"""Conventions: param/tag names that link what no registry field proves (DESIGN.md evidence kind 6).

Edges made from a convention carry `basis = convention` and the field they came from, so an
auditor can weigh them. Defaults follow the seeds: the Databricks pipeline logs the Delta version
of its feature table as the `delta_feature_version` param (which also fills the version MLflow
drops when it is 0), and migration notebooks tag a copied version with
`waymark.migrated_from = "<platform>:<model>/<version>"`.
The git SHA convention — `mlflow.source.git.commit` tag, else the `git_sha` param — is applied by
the collector, per source (`git_sha_param` in governance.toml; the run row records which field it
came from). MLflow sets the tag from the repository of the entry point, which is often not the
repository the pipeline names in its param, so the graph reads every git field again and shows
a disagreement (`commit_mismatch`) instead of trusting the collector's pick.
Also here: the shared readings of registry values (a git SHA, a migrated-from tag, a storage
location, the order of versions) that the graph, the gates and the checklist all use.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MIGRATED_FROM_TAG = "waymark.migrated_from"
# The tags MLflow and Databricks set with the commit of the entry point (the collector's
# `collectors.mlflow_records.GIT_SHA_TAGS`; a test keeps them equal).
GIT_SHA_TAGS = ("mlflow.source.git.commit", "mlflow.databricks.gitRepoCommit")
# What counts as a commit: 7 to 40 hex digits (abbreviated or full SHA-1). Anything else is a gap.
GIT_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
_MIGRATED_FROM = re.compile(r"^(?P<platform>databricks|fabric|azureml):(?P<name>.+)/(?P<version>[^/]+)$")


@dataclass(frozen=True)
class Conventions:
    # Params whose value is the Delta version of the run's one unversioned Delta input.
    version_params: tuple[str, ...] = ("delta_feature_version",)
    # Version tags naming the version it was copied from: "<platform>:<model>/<version>".
    migration_tags: tuple[str, ...] = (MIGRATED_FROM_TAG,)
    # Run params (besides the field the collector picked) that declare the run's git commit.
    git_sha_params: tuple[str, ...] = ("git_sha",)
    git_sha_tags: tuple[str, ...] = GIT_SHA_TAGS


DEFAULT_CONVENTIONS = Conventions()


def is_git_sha(value: str) -> bool:
    return bool(GIT_SHA.match(value.strip()))


def parse_migrated_from(value: str) -> tuple[str, str, str] | None:
    """`databricks:churn-prediction-gbm/2` → (platform, model name, version); None if malformed."""
    match = _MIGRATED_FROM.match(value.strip())
    if not match:
        return None
    return match["platform"], match["name"], match["version"]


def migrated_from_name(value: object) -> str | None:
    """The asset a `migrated_from` value names when it names a whole asset (an experiment, an
    endpoint, an index) rather than a version: `<platform or source>:<name>` or `<name>`."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    return value.split(":", 1)[1] if ":" in value else value


def normalise_location(location: str) -> str:
    """Storage URLs compared as one: no trailing slash; scheme and authority (container@account)
    are case-insensitive, the path is not."""
    text = location.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"


def version_order(version: object) -> tuple[int, int | str]:
    """Sort key of a registry version: numbers in numeric order ("2" before "10"), then any other
    label by its text (the one ordering the gates and the checklist use)."""
    text = str(version)
    return (0, int(text)) if text.isdigit() else (1, text)
