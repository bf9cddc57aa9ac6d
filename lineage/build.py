"""Build the lineage graph from store rows: a pure function of `LineageRows` (no I/O).

Joins in DESIGN.md order, within and across platforms:
  1. registry fields: version `run_id` → run; `models:/<id>` → LoggedModel → `source_run_id`;
  2. artifact origin: the version's MLmodel `run_id` / `model_id` → the run / LoggedModel that made
     it, on any collected source (the cross-platform join for copied artifacts);
  3. run inputs: dataset → run; Delta source → table@version (0 and unknown kept apart);
  3b. data lineage from the Databricks collector: UC table lineage (table → table), features and
     feature lineage (table → feature → model version), UC model-version dependencies
     (table → model version), vector indexes (source table → index, embedding endpoint → index);
     a table read by a run at a version hangs under the table as a whole (table → table@version);
  4. serving config: Databricks served entities (active config) and Azure ML deployments → the
     model versions they serve, with traffic % and routes on the edge; a pending config is
     recorded on the endpoint, not drawn (it serves nothing yet);
  5. storage identity: a OneLake shortcut whose target is a UC table's storage location is drawn
     UC table → shortcut (`same_storage`): one table seen from two platforms;
  Job runs: the git commit of a run's Databricks job run corroborates its git SHA (a second proof
     on the commit → run edge), fills it when the run records none, and is a gap when it differs.
  6. conventions: git SHA (every git field of the run: the `mlflow.source.git.commit` tag and the
     git SHA param; a value that is no 7–40 hex SHA is `invalid_git_sha`), `delta_feature_version`
     (fills an unknown Delta version, corroborates a recorded one, or is drawn to the run as
     `declared_input_version` when the dataset record — shared per experiment, name and digest —
     says otherwise), the `waymark.migrated_from` version tag.
A link that cannot be proven becomes a named gap on the node; two candidates are a gap naming
both, never a pick. Where two fields speak of one fact (commit fields, the producer of a version,
a run's Delta version) agreement is listed as corroboration on the edge's evidence, and
disagreement is a conflict gap naming every field and value (docs/ARCHITECTURE.md). Frames are walked as bulk-converted row tuples (100k runs build in seconds).
"""
from __future__ import annotations

from __future__ import annotations

import gc
from collections import defaultdict
from typing import Any

import pandas as pd

from lineage.build_state import _i, _rows
from lineage.evidence_data import DataEvidence
from lineage.evidence_registry import RegistryEvidence
from lineage.evidence_serving import ServingEvidence
from lineage.evidence_tracking import TrackingEvidence
from lineage.graph import Basis, GapKind, LineageGraph
from store.lineage_rows import LineageRows


def build_graph(rows: LineageRows) -> LineageGraph:
    """The graph of `rows` (conventions were applied when the rows were read: see `lineage.load`)."""
    # Hundreds of thousands of small dicts: the cyclic GC would rescan them again and again while
    # nothing here can form a reference cycle, so it is paused for the build (≈ a third of the time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _Builder(rows).build()
    finally:
        if enabled:
            gc.enable()



class _Builder(TrackingEvidence, RegistryEvidence, DataEvidence, ServingEvidence):
    """The evidence kinds in DESIGN.md order; each kind is a mixin over the shared `BuilderState`."""

    def build(self) -> LineageGraph:
        g = self.graph
        g.snapshots = {s: {"snapshot_id": p.snapshot_id, "finished_at": p.finished_at.isoformat(),
                           "platform": p.platform, "scope": self.scopes.of(s)}
                       for s, p in sorted(self.rows.points.items())}
        g.scopes = dict(self.scopes.scope)
        g.alias_history = self._alias_history()
        g.endpoint_history = self._endpoint_history()
        experiments = self._experiments()
        self._index_job_runs()
        self._runs(experiments)
        self._run_inputs()
        self._logged_models()
        self._model_versions()
        self._aliases()
        storage = self._uc_tables()
        self._table_lineage()
        self._storage_identity(storage)
        self._features()
        self._dependencies()
        self._databricks_serving()
        self._azureml_serving()
        self._vector_indexes()
        self._table_versions()
        g.freeze()
        self._break_cycles()
        return g

    # -- history and checks -----------------------------------------------------------------------
    def _alias_history(self) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        out: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in _rows(self.rows.alias_history):
            out[(r.source, r.name, r.alias)].append({
                "version": str(r.version), "valid_from": int(r.valid_from), "valid_to": _i(r.valid_to),
                "seen_from": pd.Timestamp(r.seen_from).isoformat(),
                "seen_until": None if r.seen_until is None else pd.Timestamp(r.seen_until).isoformat()})
        return dict(out)

    def _break_cycles(self) -> None:
        """Edges point downstream, so a cycle can only lie among edges within one rank: a migration
        tag loop, or UC table lineage that says each of two tables feeds the other. The edge dropped
        is the one of weakest basis, ties broken by its ids, so it never depends on row order."""
        g = self.graph
        strength = {b: i for i, b in enumerate(Basis)}          # Basis is listed strongest first
        while cycles := g.cycle_edges():
            weakest = max(cycles, key=lambda e: (strength[g.edge_data(*e)["evidence"].basis], e))
            g.remove_edge(*weakest)
            self.gap(GapKind.CYCLE, weakest[1], f"the link {weakest[0]} → {weakest[1]} would close a cycle "
                     f"among {', '.join(cycles[weakest])}; it was dropped", cycles[weakest])
