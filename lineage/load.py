"""Read the store at a point in time and build its graph (the one I/O step before the pure builder)."""
from __future__ import annotations

from dataclasses import replace
from collections.abc import Iterable
from typing import Any

from lineage.build import build_graph
from lineage.conventions import DEFAULT_CONVENTIONS, Conventions
from lineage.graph import LineageGraph
from store.db import Store
from store.lineage_rows import LineageRows, load_lineage_rows
from store.queries import AsOf, SnapshotPoint


def load_rows(store: Store, as_of: AsOf | dict[str, SnapshotPoint] = None,
              conventions: Conventions = DEFAULT_CONVENTIONS) -> LineageRows:
    return load_lineage_rows(store, as_of, version_params=conventions.version_params,
                             migration_tags=conventions.migration_tags, git_sha_tags=conventions.git_sha_tags,
                             git_sha_params=conventions.git_sha_params)


def load_graph(store: Store, as_of: AsOf | dict[str, SnapshotPoint] = None,
               conventions: Conventions = DEFAULT_CONVENTIONS) -> LineageGraph:
    return build_graph(load_rows(store, as_of, conventions))


def conventions_for(sources: Iterable[Any], base: Conventions = DEFAULT_CONVENTIONS) -> Conventions:
    """The conventions plus each configured source's `git_sha_param`, so a run whose
    `mlflow.source.git.commit` tag won the collector's pick is still compared with its param."""
    params = dict.fromkeys(base.git_sha_params)
    params.update(dict.fromkeys(p for s in sources if (p := getattr(s, "git_sha_param", None))))
    return replace(base, git_sha_params=tuple(params))
