"""The data one gate evaluation reads: entities at one point in time, and the lineage graph
built on first use — shared by every evaluation of a page or a CLI call."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from lineage.graph import LineageGraph
from lineage.load import load_graph
from lineage.producing_run import LOGGED_MODEL, MLMODEL, REGISTRY, producing_run
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
        self.run_ids = frozenset(self.runs["run_id"])
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
        o = self.origins
        hit = o[(o["source"] == source) & (o["name"] == name) & (o["version"].astype(str) == str(version))]
        origin = hit.iloc[0]["origin_run_id"] if not hit.empty else None
        logged = None
        if _s(mv.get("model_id")):
            lm = self.logged_models
            lhit = lm[(lm["source"] == source) & (lm["model_id"] == mv["model_id"])]
            logged = lhit.iloc[0]["source_run_id"] if not lhit.empty else None
        answer = producing_run(_s(mv.get("run_id")), _s(origin), _s(logged), collected=self.run_ids)
        if answer.run_id is None:
            return None, "the registry records no run and the MLmodel names none", None
        via = f"{_FIELD_WORDS[answer.via]} ({source})"
        if not answer.collected:
            return None, f"{via} names run {answer.run_id}, which no collected source holds", answer.run_id
        runs = self.runs[self.runs["run_id"] == answer.run_id]
        same = runs[runs["source"] == source]
        return (same if not same.empty else runs).iloc[0], via, answer.run_id


_FIELD_WORDS = {REGISTRY: "model_versions.run_id", MLMODEL: "model_origins.origin_run_id: the MLmodel file",
               LOGGED_MODEL: "logged_models.source_run_id"}


def _s(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
