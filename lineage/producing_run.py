"""Which run produced a model version: one rule for every page, gate and report.

Three recorded fields can name the run, in this order of precedence:
1. `model_versions.run_id`: what the registry says;
2. `model_origins.origin_run_id`: the `run_id` in the version's MLmodel file (a copy registered
   from copied artifacts keeps its original's run here);
3. `logged_models.source_run_id`: the LoggedModel the version was registered from.

The answer is the first field that names a run some source collected; when none does, the first
field that names a run at all (shown as "not collected"). When the fields name different runs,
`conflict` is set: the lineage graph reports that as an `origin_conflict` gap, and a reader should
not trust either silently.
"""
from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass

import pandas as pd

REGISTRY = "model_versions.run_id"
MLMODEL = "model_origins.origin_run_id"
LOGGED_MODEL = "logged_models.source_run_id"
PRECEDENCE = (REGISTRY, MLMODEL, LOGGED_MODEL)


@dataclass(frozen=True)
class ProducingRun:
    run_id: str | None                      # the answer (None: no field names a run)
    via: str | None                         # the field that named it
    collected: bool                         # some source holds that run
    named: tuple[tuple[str, str], ...] = ()  # every (field, run id) recorded, in precedence order

    @property
    def conflict(self) -> bool:
        return len({run for _, run in self.named}) > 1


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def producing_run(registry_run_id: object = None, origin_run_id: object = None, logged_run_id: object = None,
                  collected: Container[str] | Callable[[str], bool] = ()) -> ProducingRun:
    """The producing run from the three fields' values; `collected` says which run ids a source holds."""
    is_collected = collected if callable(collected) else (lambda run: run in collected)
    named = tuple((field, run) for field, run in zip(PRECEDENCE, map(_text, (registry_run_id, origin_run_id,
                                                                              logged_run_id))) if run)
    for field, run in named:
        if is_collected(run):
            return ProducingRun(run, field, True, named)
    if named:
        return ProducingRun(named[0][1], named[0][0], False, named)
    return ProducingRun(None, None, False, ())


def producing_runs(versions: pd.DataFrame, origins: pd.DataFrame | None = None,
                   logged_models: pd.DataFrame | None = None,
                   collected: Container[str] | Callable[[str], bool] = ()) -> pd.DataFrame:
    """`versions` (source, name, version, run_id[, model_id]) with `producing_run`, `producing_run_via`,
    `producing_run_collected` and `producing_run_conflict` added, by `producing_run` row by row."""
    keys = ["source", "name", "version"]
    frame = versions.copy()
    frame["_version"] = frame["version"].astype(str)
    if origins is not None and not origins.empty:
        o = origins[keys + ["origin_run_id"]].copy()
        o["_version"] = o.pop("version").astype(str)
        frame = frame.merge(o.drop_duplicates(["source", "name", "_version"]), on=["source", "name", "_version"],
                            how="left")
    else:
        frame["origin_run_id"] = None
    if logged_models is not None and not logged_models.empty and "model_id" in frame:
        lm = logged_models[["source", "model_id", "source_run_id"]].drop_duplicates(["source", "model_id"])
        frame = frame.merge(lm, on=["source", "model_id"], how="left")
    else:
        frame["source_run_id"] = None
    answers = [producing_run(r, o, lr, collected) for r, o, lr in
               zip(frame["run_id"], frame["origin_run_id"], frame["source_run_id"])]
    frame["producing_run"] = [a.run_id for a in answers]
    frame["producing_run_via"] = [a.via for a in answers]
    frame["producing_run_collected"] = [a.collected for a in answers]
    frame["producing_run_conflict"] = [a.conflict for a in answers]
    return frame.drop(columns=["_version"])
