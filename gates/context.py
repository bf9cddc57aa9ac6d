"""The data one gate evaluation reads: entities at one point in time, and the lineage graph
built on first use — shared by every evaluation of a page or a CLI call."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lineage.graph import LineageGraph
from lineage.load import load_graph
from store.db import Store
from store.queries import AsOf, SnapshotPoint, entity_as_of, resolve_as_of


class Context:
    """Entities at one point in time (and the lineage graph, built on first use), shared by evaluations."""

    def __init__(self, store: Store, as_of: AsOf = None, points: dict[str, SnapshotPoint] | None = None,
                 graph: LineageGraph | None = None):
        """`graph`: an already built lineage graph for the same snapshots (the app shares its cached
        one), so a gate never rebuilds what the lineage pages hold."""
        self.store = store
        self.points = resolve_as_of(store, as_of) if points is None else points
        self.versions = entity_as_of(store, "model_versions", points=self.points)
        self.aliases = entity_as_of(store, "model_aliases", points=self.points)
        self.origins = entity_as_of(store, "model_origins", points=self.points)
        self.runs = entity_as_of(store, "runs", points=self.points)
        self.logged_models = entity_as_of(store, "logged_models", points=self.points)
        self._graph: LineageGraph | None = graph
        self._cache: dict[str, Any] = {}

    @property
    def snapshot_ids(self) -> dict[str, int]:
        return {s: p.snapshot_id for s, p in sorted(self.points.items())}

    def graph(self) -> LineageGraph:
        if self._graph is None:
            self._graph = load_graph(self.store, self.points)
        return self._graph

    def cached(self, key: str, read):
        """`read()` once per context (the serving rows and history frames the baseline looks at for
        every model)."""
        if key not in self._cache:
            self._cache[key] = read()
        return self._cache[key]

    # lookups ------------------------------------------------------------------------------------
    def version_row(self, source: str, name: str, version: str) -> pd.Series | None:
        v = self.versions
        hit = v[(v["source"] == source) & (v["name"] == name) & (v["version"].astype(str) == str(version))]
        return None if hit.empty else hit.iloc[0]

    def alias_version(self, source: str, name: str, alias: str) -> str | None:
        a = self.aliases
        hit = a[(a["source"] == source) & (a["name"] == name) & (a["alias"] == alias)]
        return None if hit.empty else str(hit.iloc[0]["version"])

    def producing_run(self, source: str, name: str, version: str) -> tuple[pd.Series | None, str, str | None]:
        """(run row, how it was found, the run id named) — registry run_id, MLmodel origin, logged model."""
        mv = self.version_row(source, name, version)
        if mv is None:
            return None, "version not collected", None
        named: list[tuple[str, str]] = []
        if _s(mv.get("run_id")):
            named.append((mv["run_id"], f"model_versions.run_id ({source})"))
        o = self.origins
        hit = o[(o["source"] == source) & (o["name"] == name) & (o["version"].astype(str) == str(version))]
        if not hit.empty and _s(hit.iloc[0]["origin_run_id"]):
            named.append((hit.iloc[0]["origin_run_id"], f"model_origins.origin_run_id: the MLmodel file ({source})"))
        if _s(mv.get("model_id")):
            lm = self.logged_models
            lhit = lm[(lm["source"] == source) & (lm["model_id"] == mv["model_id"])]
            if not lhit.empty and _s(lhit.iloc[0]["source_run_id"]):
                named.append((lhit.iloc[0]["source_run_id"], f"logged_models.source_run_id ({source})"))
        for run_id, via in named:
            runs = self.runs[self.runs["run_id"] == run_id]
            if runs.empty:
                continue
            same = runs[runs["source"] == source]
            row = (same if not same.empty else runs).iloc[0]
            return row, via, run_id
        if named:
            return None, f"{named[0][1]} names run {named[0][0]}, which no collected source holds", named[0][0]
        return None, "the registry records no run and the MLmodel names none", None

def _s(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
