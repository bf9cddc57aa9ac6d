"""Conventions: param/tag names that link what no registry field proves (DESIGN.md evidence kind 6).

Edges made from a convention carry `basis = convention` and the field they came from, so an
auditor can weigh them. Defaults follow the seeds: the Databricks pipeline logs the Delta version
of its feature table as the `delta_feature_version` param (which also fills the version MLflow
drops when it is 0), and migration notebooks tag a copied version with
`waymark.migrated_from = "<platform>:<model>/<version>"`.
(The git SHA convention — `mlflow.source.git.commit` tag, else the `git_sha` param — is applied by
the collector, per source: `git_sha_param` in governance.toml; the run row records which field it
came from.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

MIGRATED_FROM_TAG = "waymark.migrated_from"
_MIGRATED_FROM = re.compile(r"^(?P<platform>databricks|fabric|azureml):(?P<name>.+)/(?P<version>[^/]+)$")


@dataclass(frozen=True)
class Conventions:
    # Params whose value is the Delta version of the run's one unversioned Delta input.
    version_params: tuple[str, ...] = ("delta_feature_version",)
    # Version tags naming the version it was copied from: "<platform>:<model>/<version>".
    migration_tags: tuple[str, ...] = (MIGRATED_FROM_TAG,)


DEFAULT_CONVENTIONS = Conventions()


def parse_migrated_from(value: str) -> tuple[str, str, str] | None:
    """`databricks:churn-prediction-gbm/2` → (platform, model name, version); None if malformed."""
    match = _MIGRATED_FROM.match(value.strip())
    if not match:
        return None
    return match["platform"], match["name"], match["version"]
