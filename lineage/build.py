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
disagreement is a conflict gap naming every field and value (docs/lineage-vocabulary.md). Frames are walked as bulk-converted row tuples (100k runs build in seconds).
"""
from __future__ import annotations

import gc
import json
from collections import defaultdict
from typing import Any, NamedTuple

import pandas as pd

from lineage.conventions import is_git_sha, normalise_location, parse_migrated_from
from lineage.graph import Basis, EdgeKind, Evidence, Gap, GapKind, LineageGraph, NodeType
from store.lineage_rows import LineageRows

UNKNOWN_VERSION = "unknown"


def _s(value: Any) -> str | None:
    """A cell as a clean string, or None for NULL/empty (rows come through `_rows`: NaN is None)."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return text if text.strip() else None


def _i(value: Any) -> int | None:
    return None if value is None else int(value)


def _rows(frame: pd.DataFrame):
    """Rows as namedtuples with NULL/NaN as None, columns converted in bulk (Arrow-backed string
    columns are slow to iterate cell by cell)."""
    if frame is None or frame.empty:
        return iter(())
    columns = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns]
    from collections import namedtuple

    Row = namedtuple("Row", list(frame.columns), rename=True)
    return map(Row._make, zip(*columns))


class Scopes:
    """The scope segment of node ids: the platform, or `platform/source` when two sources of the
    same collector kind share a platform (two MLflow workspaces on Databricks would otherwise give
    colliding run ids). Sources of different kinds on one platform (the MLflow source and the
    Databricks workspace source of one workspace) share the plain platform scope, so the table
    both of them see is one node."""

    def __init__(self, source_platforms: dict[str, str], source_kinds: dict[str, str] | None = None):
        kinds = source_kinds or {}
        per_group: dict[tuple[str, str], list[str]] = defaultdict(list)
        for source, platform in source_platforms.items():
            per_group[(platform, kinds.get(source, "mlflow"))].append(source)
        self.platform = dict(source_platforms)
        self.scope = {s: (p if len(per_group[(p, kinds.get(s, "mlflow"))]) == 1 else f"{p}/{s}")
                      for s, p in source_platforms.items()}

    def of(self, source: str) -> str:
        return self.scope[source]


def _json_list(raw: Any) -> list[str]:
    """A JSON list column read as text (or already a list) → its strings; anything else → []."""
    if raw is None:
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return [str(v) for v in value if v is not None and str(v).strip()] if isinstance(value, list) else []


def _json_dict(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return dict(value) if isinstance(value, dict) else {}


def node_id(type: NodeType, scope: str | None, key: str) -> str:
    return f"{type.value}:{key}" if scope is None else f"{type.value}:{scope}:{key}"


def table_node_id(scope: str, name: str, version: int | None) -> str:
    return node_id(NodeType.TABLE, scope, f"{name}@{UNKNOWN_VERSION if version is None else version}")


class _Delta(NamedTuple):
    """One Delta input of a run: its row, run and dataset nodes, table, and recorded version."""
    r: Any
    run: str
    ds: str
    table: str
    version: int | None


def _run_id_of(graph: LineageGraph, run: str) -> str:
    return graph.node_data(run)["attrs"].get("run_id", run)


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


class _Builder:
    def __init__(self, rows: LineageRows):
        self.rows = rows
        platforms = dict(rows.source_platforms)
        for source, point in rows.points.items():
            platforms.setdefault(source, point.platform)
        self.scopes = Scopes(platforms, rows.source_kinds)
        self.graph = LineageGraph()
        self.runs_by_id: dict[str, list[str]] = defaultdict(list)            # run_id → node ids (all sources)
        self.run_node: dict[tuple[str, str], str] = {}                       # (source, run_id) → node id
        self.models_by_id: dict[str, list[str]] = defaultdict(list)          # logged model id → node ids
        self.model_node: dict[tuple[str, str], str] = {}
        self.versions_by_key: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (platform, name, version)
        self.version_node: dict[tuple[str, str, str], str] = {}              # (source, name, version)
        self.migrations: list[tuple[str, str, Any, str, str]] = []          # (source version, copy, row, tag, value)
        # (platform, table name) → {table@version node: (source, snapshot_id, valid_from)} of run reads.
        self.table_versions: dict[tuple[str, str], dict[str, tuple[str, Any, Any]]] = defaultdict(dict)
        self.whole_tables: dict[str, tuple[str, str]] = {}                  # table node → (platform, name)
        self.endpoint_nodes: dict[tuple[str, str], str] = {}                # (scope, endpoint name) → node id
        self.job_runs: dict[tuple[str, str], list[Any]] = defaultdict(list)  # (platform, job_run_id) → rows

    def ev(self, field: str, snapshot_id: Any, source: str, basis: Basis, seen_since: Any = None,
           detail: str | None = None) -> Evidence:
        return Evidence(field, int(snapshot_id), source, basis, _i(seen_since), detail)

    def gap(self, kind: GapKind, node: str, message: str, candidates: list[str] | tuple[str, ...] = ()) -> None:
        self.graph.add_gap(Gap(kind, node, message, tuple(sorted(candidates))))

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

    # -- tracking --------------------------------------------------------------------------------
    def _experiments(self) -> dict[tuple[str, str], str]:
        out = {}
        for r in _rows(self.rows.experiments):
            scope = self.scopes.of(r.source)
            nid = self.graph.add_node(node_id(NodeType.EXPERIMENT, scope, r.experiment_id), NodeType.EXPERIMENT,
                                      self.scopes.platform[r.source], _s(r.name) or r.experiment_id,
                                      source=r.source, experiment_id=r.experiment_id)
            out[(r.source, r.experiment_id)] = nid
        return out

    def _runs(self, experiments: dict[tuple[str, str], str]) -> None:
        g = self.graph
        conv_cols = [(f"conv_param_{i}", p) for i, p in enumerate(self.rows.version_params)
                     if f"conv_param_{i}" in self.rows.runs.columns]
        git_cols = [(f"git_tag_{i}", f"runs.tags.{t}") for i, t in enumerate(self.rows.git_sha_tags)
                    if f"git_tag_{i}" in self.rows.runs.columns]
        git_cols += [(f"git_param_{i}", f"runs.params.{p}") for i, p in enumerate(self.rows.git_sha_params)
                     if f"git_param_{i}" in self.rows.runs.columns]
        self.run_conventions: dict[str, dict[str, str]] = {}
        for r in _rows(self.rows.runs):
            scope = self.scopes.of(r.source)
            exp_node = experiments.get((r.source, _s(r.experiment_id)))
            declared = self._git_fields(r, git_cols)
            valid = {f: v for f, v in declared.items() if is_git_sha(v)}
            recorded = _s(r.git_sha)
            sha = recorded.strip() if recorded and is_git_sha(recorded) else next(iter(valid.values()), None)
            job_run_id = _s(getattr(r, "job_run_id", None))
            job = self._job_run(r.source, job_run_id) if job_run_id else None
            nid = g.add_node(node_id(NodeType.RUN, scope, r.run_id), NodeType.RUN, self.scopes.platform[r.source],
                             _s(r.run_name) or r.run_id, None, source=r.source, run_id=r.run_id,
                             run_name=_s(r.run_name), experiment_id=_s(r.experiment_id),
                             experiment=g.node_data(exp_node)["name"] if exp_node else None,
                             status=_s(r.status), lifecycle_stage=_s(r.lifecycle_stage),
                             start_time=_i(r.start_time), git_sha=sha, git_sha_from=_s(r.git_sha_from),
                             git_fields=declared or None, job_run_id=job_run_id, collected=True,
                             **({} if job is None else {"job_run_url": _s(job.run_page_url),
                                                        "job_git_url": _s(job.git_url),
                                                        "job_git_branch": _s(job.git_branch)}))
            self.runs_by_id[r.run_id].append(nid)
            self.run_node[(r.source, r.run_id)] = nid
            if exp_node:
                g.add_edge(exp_node, nid, EdgeKind.EXPERIMENT_RUN,
                           self.ev("runs.experiment_id", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))
            commits = self._code_versions(r, nid, declared, valid)
            job_sha = self._job_commit(r, nid, sha, job, valid, commits) if job is not None else None
            invalid = {f: v for f, v in declared.items() if f not in valid}
            if not valid and not job_sha and not invalid:
                self.gap(GapKind.NO_GIT_SHA, nid, f"run {r.run_id} ({_s(r.run_name) or 'unnamed'}) records no git "
                         "commit: no mlflow.source.git.commit tag, no git SHA param"
                         + (f" and job run {job_run_id} has no git commit" if job is not None else ""))
            if _s(r.lifecycle_stage) == "deleted":
                self.gap(GapKind.RUN_DELETED, nid, f"run {r.run_id} is deleted in {r.source}; its record may be "
                         "purged at any time")
            if conv_cols:
                found = {param: v for col, param in conv_cols if (v := _s(getattr(r, col)))}
                if found:
                    self.run_conventions[nid] = found

    @staticmethod
    def _git_fields(r: Any, git_cols: list[tuple[str, str]]) -> dict[str, str]:
        """Every field of the run that names its git commit → its value: the one the collector
        picked (`runs.git_sha`, from `git_sha_from`) and the tags and params of the convention."""
        out: dict[str, str] = {}
        recorded, origin = _s(r.git_sha), _s(r.git_sha_from) or ""
        if recorded:
            kind, _, name = origin.partition(":")
            field = {"tag": f"runs.tags.{name}", "param": f"runs.params.{name}"}.get(kind, "runs.git_sha")
            out[field] = recorded.strip()
        for col, field in git_cols:
            value = _s(getattr(r, col))
            if value:
                out.setdefault(field, value.strip())
        return out

    def _code_versions(self, r: Any, nid: str, declared: dict[str, str], valid: dict[str, str]) -> list[str]:
        """One commit → run edge per distinct commit; fields naming the same commit (an abbreviation
        counts as the same) corroborate one edge; two commits are `commit_mismatch`, both shown;
        a value that is no SHA is `invalid_git_sha` and makes no commit node."""
        g = self.graph
        for field, value in declared.items():
            if field not in valid:
                shown = value if len(value) <= 80 else value[:77] + "…"
                self.gap(GapKind.INVALID_GIT_SHA, nid, f"run {r.run_id}: {field} = {shown!r} is not a git commit SHA "
                         "(7–40 hex digits); it is not counted as code evidence")
        commits: dict[str, list[str]] = {}          # full (longest) SHA → fields naming it
        for field, value in sorted(valid.items(), key=lambda kv: -len(kv[1])):
            low = value.lower()
            same = next((c for c in commits if c.startswith(low)), None)
            commits.setdefault(same or low, []).append(field)
        for commit, fields in commits.items():
            cid = g.add_node(node_id(NodeType.COMMIT, None, commit), NodeType.COMMIT, None, commit, sha=commit)
            for field in fields:
                g.add_edge(cid, nid, EdgeKind.CODE_VERSION,
                           self.ev(field, r.snapshot_id, r.source, Basis.CONVENTION, r.valid_from,
                                   detail=None if valid[field].lower() == commit else f"abbreviated: {valid[field]}"))
        if len(commits) > 1:
            named = "; ".join(f"{', '.join(fields)} = {commit}" for commit, fields in commits.items())
            self.gap(GapKind.COMMIT_MISMATCH, nid, f"run {r.run_id} names {len(commits)} git commits: {named}. "
                     "mlflow.source.git.commit is set from the entry point's repository, which may not be the "
                     "repository the pipeline records; all are shown, none picked", sorted(commits))
        return list(commits)

    def _run_inputs(self) -> None:
        g = self.graph
        frame = self.rows.run_inputs
        with_inputs: set[str] = set()
        delta: dict[str, list[_Delta]] = defaultdict(list)      # run → its Delta inputs
        for r in _rows(frame):
            run = self.run_node.get((r.source, r.run_id))
            if run is None:
                continue
            with_inputs.add(run)
            scope = self.scopes.of(r.source)
            platform = self.scopes.platform[r.source]
            name = _s(r.dataset_name) or "dataset"
            digest = _s(r.digest) or "nodigest"
            ds = g.add_node(node_id(NodeType.DATASET, scope, f"{name}@{digest}"), NodeType.DATASET, platform, name,
                            digest, source=r.source, digest=digest, source_type=_s(r.source_type), path=_s(r.path))
            g.add_edge(ds, run, EdgeKind.DATASET_INPUT,
                       self.ev("run.inputs.dataset_inputs", r.snapshot_id, r.source, Basis.RUN_INPUT, r.valid_from,
                               detail=f"context={_s(r.context) or 'none'}"))
            table = _s(r.table_name) or (_s(r.path) if _s(r.source_type) == "delta_table" else None)
            if table is None:
                continue
            known = bool(r.version_known) if r.version_known is not None else False
            delta[run].append(_Delta(r, run, ds, table, _i(r.table_version) if known else None))
        # Which input each run's version param speaks of, then which dataset records are shared by
        # runs that declare different versions (MLflow keeps one record per experiment, name and
        # digest, with the source of the run that logged it first).
        declared: dict[int, tuple[str, int]] = {}                 # id(_Delta) → (param, version)
        for run, inputs in delta.items():
            for x, claim in self._attribute_declaration(run, inputs):
                declared[id(x)] = claim
        claims: dict[str, dict[str, tuple[str, int, _Delta]]] = defaultdict(dict)   # ds → run → claim
        for inputs in delta.values():
            for x in inputs:
                if id(x) in declared:
                    claims[x.ds][x.run] = (*declared[id(x)], x)
        shared_conflict = {ds for ds, by_run in claims.items() if len({v for _, v, _ in by_run.values()}) > 1}
        for ds in sorted(shared_conflict):
            by_run = claims[ds]
            d = g.node_data(ds)
            tables = sorted({x.table for _, _, x in by_run.values()})
            recorded = sorted({"no version" if x.version is None else str(x.version) for _, _, x in by_run.values()})
            who = ", ".join(f"run {g.node_data(run)['attrs']['run_id']} declares {v} ({p})"
                            for run, (p, v, _) in sorted(by_run.items()))
            self.gap(GapKind.INPUT_VERSION_CONFLICT, ds, f"dataset record {d['name']}@{d['version']} of "
                     f"{', '.join(tables)} is shared by runs that declare different Delta versions: {who}; the "
                     f"record itself holds {' / '.join(recorded)} (run_inputs.source_json.delta_table_version), "
                     "the version of whichever run logged it first, so it is not per-run evidence",
                     [table_node_id(self.scopes.of(x.r.source), x.table, v) for _, v, x in by_run.values()])
        # A param fills the version of a record that holds none only when every run sharing the
        # record declares that same version; otherwise each declaration goes to its own run.
        sharers: dict[str, set[str]] = defaultdict(set)
        for inputs in delta.values():
            for x in inputs:
                sharers[x.ds].add(x.run)
        fills_record = {ds for ds, by_run in claims.items()
                        if set(by_run) == sharers[ds] and len({v for _, v, _ in by_run.values()}) == 1}
        for inputs in delta.values():
            for x in inputs:
                self._delta_edges(x, declared.get(id(x)), x.ds in fills_record)
        for (_source, run_id), nid in self.run_node.items():
            if nid not in with_inputs:
                self.gap(GapKind.NO_INPUTS, nid, f"run {run_id} records no "
                         "dataset inputs: the data it trained on is not known")

    def _declared_version(self, run: str) -> tuple[str, int] | None:
        """The Delta version the run's convention param(s) declare: (param, version); None when
        none, not an integer, or params disagree (an ambiguity gap)."""
        params = self.run_conventions.get(run) or {}
        values: dict[str, int] = {}
        for param, value in params.items():
            try:
                values[param] = int(value)
            except ValueError:
                continue
        if len(set(values.values())) > 1:
            self.gap(GapKind.AMBIGUOUS, run, f"convention params disagree on the run's Delta version: {values}; "
                     "none picked", [f"{p}={v}" for p, v in values.items()])
            return None
        return next(iter(values.items()), None)

    def _attribute_declaration(self, run: str, inputs: list[_Delta]) -> list[tuple[_Delta, tuple[str, int]]]:
        """The Delta inputs a run's version param speaks of. It fills the one unversioned input; with
        none unversioned it checks the one input, or agrees with those of its version. A param that
        matches none of several recorded versions is a conflict naming them all."""
        claim = self._declared_version(run) if self.run_conventions.get(run) else None
        if claim is None:
            return []
        unversioned = [x for x in inputs if x.version is None]
        if unversioned:
            if len({x.ds for x in unversioned}) > 1:
                self.gap(GapKind.AMBIGUOUS, run, f"convention param {claim[0]}={claim[1]} could version any of "
                         f"{len({x.ds for x in unversioned})} unversioned Delta inputs; none picked",
                         sorted({x.ds for x in unversioned}))
                return []
            return [(x, claim) for x in unversioned]
        if len({(x.ds, x.table) for x in inputs}) == 1:
            return [(x, claim) for x in inputs]
        matching = [x for x in inputs if x.version == claim[1]]
        if matching:
            return [(x, claim) for x in matching]
        param, version = claim
        recorded = ", ".join(f"{x.table}@{x.version}" for x in inputs)
        self.gap(GapKind.INPUT_VERSION_CONFLICT, run, f"run {_run_id_of(self.graph, run)} declares Delta version "
                 f"{version} (runs.params.{param}), but none of its dataset records has that version "
                 f"(run_inputs.source_json.delta_table_version: {recorded}); which input the param means is "
                 "not recorded", sorted({table_node_id(self.scopes.of(x.r.source), x.table, x.version) for x in inputs}))
        self.graph.node_data(run)["attrs"]["declared_input_version"] = {f"runs.params.{param}": version}
        return []

    def _delta_edges(self, x: _Delta, claim: tuple[str, int] | None, fills_record: bool) -> None:
        """table@version → dataset for what the dataset record says; the run's own declaration as
        corroboration when it agrees, a fill when the record has no version (and every run sharing
        it declares the same), and otherwise a `declared_input_version` edge to the run, with an
        `input_version_conflict` gap when the record holds another version."""
        g, r = self.graph, x.r
        scope = self.scopes.of(r.source)
        recorded = self.ev("run_inputs.source_json.delta_table_version", r.snapshot_id, r.source, Basis.RUN_INPUT,
                           r.valid_from)
        run_id = r.run_id
        if claim is not None:
            param, version = claim
            own = self.ev(f"runs.params.{param}", r.snapshot_id, r.source, Basis.CONVENTION, r.valid_from,
                          detail=f"run {run_id} declares version {version}")
            if x.version is None and fills_record:
                self._table_edge(x, version, x.ds, own._replace(
                    detail=f"run {run_id}: the Delta source recorded no version; filled from its param"))
                return
            if x.version == version:
                self._table_edge(x, version, x.ds, recorded)
                self._table_edge(x, version, x.ds, own)         # corroboration: a second proof of one edge
                return
            self._table_edge(x, version, x.run, own, kind=EdgeKind.DECLARED_INPUT_VERSION)
            if x.version is not None:
                self.gap(GapKind.INPUT_VERSION_CONFLICT, x.run, f"run {run_id}: dataset input "
                         f"{g.node_data(x.ds)['name']}@{g.node_data(x.ds)['version']} records {x.table}@{x.version} "
                         f"(run_inputs.source_json.delta_table_version) but the run declares version {version} "
                         f"(runs.params.{param}). MLflow keeps one dataset record per experiment, name and digest, "
                         "so a record shared with an earlier run carries that run's source; both are shown",
                         [table_node_id(scope, x.table, x.version), table_node_id(scope, x.table, version)])
        self._table_edge(x, x.version, x.ds, recorded)
        if x.version is None:
            self.gap(GapKind.UNVERSIONED_INPUT, table_node_id(scope, x.table, None), f"run {run_id} read {x.table} "
                     "without a recorded Delta version: unknown, or 0 (MLflow omits version 0 from the dataset source)")

    def _table_edge(self, x: _Delta, version: int | None, target: str, evidence: Evidence,
                    kind: EdgeKind = EdgeKind.TABLE_READ_AS_DATASET) -> None:
        r = x.r
        platform = self.scopes.platform[r.source]
        tid = self.graph.add_node(table_node_id(self.scopes.of(r.source), x.table, version), NodeType.TABLE, platform,
                                  x.table, UNKNOWN_VERSION if version is None else str(version), source=r.source,
                                  table=x.table, version_known=version is not None,
                                  version_from=evidence.field if version is not None else None)
        self.graph.add_edge(tid, target, kind, evidence)
        self.table_versions[(platform, x.table.rstrip("/"))].setdefault(tid, (r.source, r.snapshot_id, r.valid_from))

    # -- models ----------------------------------------------------------------------------------
    def _logged_models(self) -> None:
        g = self.graph
        for r in _rows(self.rows.logged_models):
            scope = self.scopes.of(r.source)
            nid = g.add_node(node_id(NodeType.LOGGED_MODEL, scope, r.model_id), NodeType.LOGGED_MODEL,
                             self.scopes.platform[r.source], _s(r.name) or r.model_id, None, source=r.source,
                             model_id=r.model_id, source_run_id=_s(r.source_run_id))
            self.models_by_id[r.model_id].append(nid)
            self.model_node[(r.source, r.model_id)] = nid
            run_id = _s(r.source_run_id)
            if run_id is None:
                continue
            run = self.run_node.get((r.source, run_id))
            if run is None:
                self.gap(GapKind.RUN_NOT_FOUND, nid, f"logged model {r.model_id} names source run {run_id}, "
                         f"which {r.source} does not hold (deleted or in another workspace)")
                continue
            g.add_edge(run, nid, EdgeKind.RUN_LOGGED_MODEL,
                       self.ev("logged_models.source_run_id", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))

    def _model_versions(self) -> None:
        g = self.graph
        frame = self.rows.model_versions
        for r in _rows(frame):
            scope = self.scopes.of(r.source)
            platform = self.scopes.platform[r.source]
            nid = g.add_node(node_id(NodeType.MODEL_VERSION, scope, f"{r.name}/{r.version}"), NodeType.MODEL_VERSION,
                             platform, r.name, str(r.version), source=r.source, status=_s(r.status),
                             stage=_s(r.stage), source_uri=_s(r.source_uri), run_id=_s(r.run_id),
                             model_id=_s(r.model_id), creation_time=_i(r.creation_time))
            self.versions_by_key[(platform, r.name, str(r.version))].append(nid)
            self.version_node[(r.source, r.name, str(r.version))] = nid
        origins = {(r.source, r.name, str(r.version)): r for r in _rows(self.rows.model_origins)}
        tag_cols = [(f"conv_tag_{i}", t) for i, t in enumerate(self.rows.migration_tags)
                    if f"conv_tag_{i}" in frame.columns]
        for r in _rows(frame):
            key = (r.source, r.name, str(r.version))
            nid = self.version_node[key]
            linked = self._registry_links(r, nid)
            linked |= self._origin_links(r, nid, origins.get(key), registry_run=_s(r.run_id))
            self._producer_agreement(r, nid, origins.get(key))
            for col, tag in tag_cols:
                value = _s(getattr(r, col))
                if value:
                    linked |= self._migration_link(r, nid, tag, value)
            if not linked and (origin := origins.get(key)) is not None and _s(origin.read_status) == "unreadable":
                self.gap(GapKind.ORIGIN_UNREADABLE, nid, f"{r.name}/{r.version}: no run or model in the registry, "
                         f"and its MLmodel could not be read ({_s(origin.detail) or 'no detail'})")
            elif not linked:
                where = _s(r.source_uri) or "an unknown location"
                self.gap(GapKind.NO_ORIGIN, nid, f"{r.name}/{r.version} was registered from {where} with no run, "
                         "no logged model and no MLmodel origin: what produced it is not recorded")
        self._migration_agreement()

    def _producing_runs(self) -> dict[str, dict[str, str]]:
        """model version → {run node: field of the edge} for every run → version edge staged so far."""
        out: dict[str, dict[str, str]] = defaultdict(dict)
        for (s, t), d in self.graph.staged_edges():
            if d["kind"] in (EdgeKind.RUN_REGISTERED, EdgeKind.ARTIFACT_ORIGIN):
                out[t][s] = d["evidence"].field
        return out

    def _migration_agreement(self) -> None:
        """A migrated-from tag against the copy's own registry / MLmodel run: the same run
        corroborates the migration edge; another run is `origin_conflict` naming both."""
        if not self.migrations:
            return
        producers = self._producing_runs()
        for src, nid, r, tag, value in self.migrations:
            before, after = producers.get(src, {}), producers.get(nid, {})
            if not before or not after:
                continue
            shared = sorted(set(before) & set(after))
            if shared:
                self.graph.add_edge(src, nid, EdgeKind.MIGRATED_FROM, self.ev(
                    f"{after[shared[0]]} = {before[shared[0]]} of the source version", r.snapshot_id, r.source,
                    Basis.ARTIFACT_ORIGIN, r.valid_from, detail=f"both name {shared[0]}"))
                continue
            named = "; ".join([f"{src} was produced by {run} ({field})" for run, field in sorted(before.items())]
                              + [f"{nid} names {run} ({field})" for run, field in sorted(after.items())])
            self.gap(GapKind.ORIGIN_CONFLICT, nid, f"{r.name}/{r.version}: tag {tag}={value!r} says it was copied "
                     f"from {src}, but they name different runs: {named}; both are shown",
                     sorted(set(before) | set(after)))

    def _producer_agreement(self, r: Any, nid: str, origin: Any) -> None:
        """Every field naming the run (or LoggedModel) that produced a version, compared: the
        registry's `run_id` / `model_id`, the MLmodel's `run_id` / `model_id`, and the
        `source_run_id` of each LoggedModel named. Agreeing fields corroborate the run → version
        edge; different values are `origin_conflict`, every field and value named."""
        g = self.graph
        runs: dict[str, str] = {}                       # field → run id
        models: dict[str, str] = {}                     # field → logged model id
        if (v := _s(r.run_id)):
            runs["model_versions.run_id"] = v
        if (v := _s(r.model_id)):
            models["model_versions.model_id"] = v
        if origin is not None and _s(origin.read_status) == "ok":
            if (v := _s(origin.origin_run_id)):
                runs["model_origins.origin_run_id (MLmodel run_id)"] = v
            v = _s(origin.origin_model_id) or (
                _s(origin.origin_model_uuid) if (_s(origin.origin_model_uuid) or "").startswith("m-") else None)
            if v:
                models["model_origins.origin_model_id (MLmodel model_id)"] = v
        for field, model_id in list(models.items()):
            found = self._candidates(self.models_by_id, model_id, r.source)
            source_run = _s(g.node_data(found[0])["attrs"].get("source_run_id")) if len(found) == 1 else None
            if source_run:
                runs[f"logged_models.source_run_id of {model_id} ({field.split(' ')[0]})"] = source_run
        for what, claims in (("run", runs), ("logged model", models)):
            if len(set(claims.values())) > 1:
                named = "; ".join(f"{f} = {v}" for f, v in claims.items())
                self.gap(GapKind.ORIGIN_CONFLICT, nid, f"{r.name}/{r.version}: the fields naming the {what} that "
                         f"produced it disagree: {named}; all are shown, none picked", sorted(set(claims.values())))
        if len(runs) > 1 and len(set(runs.values())) == 1:
            (run_id,) = set(runs.values())
            for run in self.runs_by_id.get(run_id, []):
                if g.has_edge(run, nid):
                    for field in runs:
                        if field.startswith("logged_models."):
                            g.add_edge(run, nid, EdgeKind.RUN_REGISTERED,
                                       self.ev(field, r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))

    def _registry_links(self, r: Any, nid: str) -> bool:
        g = self.graph
        linked = False
        run_id = _s(r.run_id)
        if run_id:
            run = self.run_node.get((r.source, run_id))
            if run is None:
                # Another collector of the same workspace (e.g. the Databricks UC registry next to
                # the MLflow tracking source) may hold the run: one candidate is a link, two a gap.
                platform = self.scopes.platform[r.source]
                others = [n for n in self._candidates(self.runs_by_id, run_id, r.source)
                          if self.graph.node_data(n)["platform"] == platform]
                if len(others) > 1:
                    self.gap(GapKind.AMBIGUOUS, nid, f"{r.name}/{r.version} names run {run_id}, held by "
                             f"{len(others)} sources of platform {platform}; none picked", others)
                    return False
                run = others[0] if others else None
            if run is None:
                run = g.add_node(node_id(NodeType.RUN, self.scopes.of(r.source), run_id), NodeType.RUN,
                                 self.scopes.platform[r.source], run_id, None, source=r.source, run_id=run_id,
                                 collected=False)
                self.gap(GapKind.RUN_NOT_FOUND, run, f"{r.name}/{r.version} names run {run_id}, which {r.source} "
                         "does not hold (deleted and purged, or in a workspace not collected)")
            g.add_edge(run, nid, EdgeKind.RUN_REGISTERED,
                       self.ev("model_versions.run_id", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))
            linked = True
        model_id = _s(r.model_id)
        if model_id:
            model = self.model_node.get((r.source, model_id))
            if model is None:
                self.gap(GapKind.LOGGED_MODEL_NOT_FOUND, nid, f"{r.name}/{r.version} names logged model {model_id}, "
                         f"which {r.source} does not hold")
            else:
                field = ("model_versions.source (models:/<id>)" if _s(r.source_uri) == f"models:/{model_id}"
                         else "model_versions.model_id")
                g.add_edge(model, nid, EdgeKind.MODEL_REGISTERED,
                           self.ev(field, r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))
                linked = True
        return linked

    def _candidates(self, index: dict[str, list[str]], key: str, source: str) -> list[str]:
        """Same-source match first (ids are unique per workspace); else every source that holds it."""
        found = index.get(key, [])
        attrs = {n: self.graph.node_data(n)["attrs"] for n in found}
        same = [n for n in found if attrs[n].get("source") == source and attrs[n].get("collected", True)]
        return same or [n for n in found if attrs[n].get("collected", True)]

    def _origin_links(self, r: Any, nid: str, origin: Any, registry_run: str | None) -> bool:
        if origin is None or _s(origin.read_status) != "ok":
            return False
        linked = False
        run_id = _s(origin.origin_run_id)
        if run_id:
            found = self._origin_edge(self.runs_by_id, run_id, "run", "origin_run_id (MLmodel run_id)", r, nid, origin)
            linked = bool(found)
            if found is None and not registry_run:
                self.gap(GapKind.RUN_NOT_FOUND, nid, f"the MLmodel of {r.name}/{r.version} names run {run_id}, which "
                         "no collected source holds (deleted, or in a workspace not collected)")
        model_id = _s(origin.origin_model_id) or (
            _s(origin.origin_model_uuid) if (_s(origin.origin_model_uuid) or "").startswith("m-") else None)
        if model_id:
            found = self._origin_edge(self.models_by_id, model_id, "logged model",
                                      "origin_model_id (MLmodel model_id)", r, nid, origin)
            linked = linked or bool(found)
        return linked

    def _origin_edge(self, index: dict[str, list[str]], key: str, what: str, field: str, r: Any, nid: str,
                     origin: Any) -> bool | None:
        """One MLmodel-origin edge when exactly one source holds `key`; two or more is an ambiguity gap
        (False); None when no collected source holds it (the caller names that gap)."""
        candidates = self._candidates(index, key, r.source)
        if len(candidates) == 1:
            self.graph.add_edge(candidates[0], nid, EdgeKind.ARTIFACT_ORIGIN,
                                self.ev(f"model_origins.{field}", origin.snapshot_id, r.source,
                                        Basis.ARTIFACT_ORIGIN, origin.valid_from))
            return True
        if candidates:
            self.gap(GapKind.AMBIGUOUS, nid, f"the MLmodel of {r.name}/{r.version} names {what} {key}, held by "
                     f"{len(candidates)} sources; none picked", candidates)
            return False
        return None

    def _migration_link(self, r: Any, nid: str, tag: str, value: str) -> bool:
        parsed = parse_migrated_from(value)
        if parsed is None:
            self.gap(GapKind.MIGRATION_SOURCE_NOT_FOUND, nid, f"{r.name}/{r.version}: tag {tag}={value!r} is not "
                     "in the documented form <platform>:<model>/<version>")
            return False
        candidates = [c for c in self.versions_by_key.get(parsed, []) if c != nid]
        if len(candidates) == 1:
            self.graph.add_edge(candidates[0], nid, EdgeKind.MIGRATED_FROM,
                                self.ev(f"model_versions.tags.{tag}", r.snapshot_id, r.source, Basis.CONVENTION,
                                        r.valid_from, detail=value))
            self.migrations.append((candidates[0], nid, r, tag, value))
            return True
        if candidates:
            self.gap(GapKind.AMBIGUOUS, nid, f"{r.name}/{r.version}: tag {tag}={value!r} matches versions on "
                     f"{len(candidates)} sources; none picked", candidates)
        else:
            self.gap(GapKind.MIGRATION_SOURCE_NOT_FOUND, nid, f"{r.name}/{r.version}: tag {tag}={value!r} names a "
                     "version no collected source holds at this time")
        return False

    def _aliases(self) -> None:
        g = self.graph
        for r in _rows(self.rows.model_aliases):
            scope = self.scopes.of(r.source)
            nid = g.add_node(node_id(NodeType.ALIAS, scope, f"{r.name}@{r.alias}"), NodeType.ALIAS,
                             self.scopes.platform[r.source], r.name, str(r.version), source=r.source, alias=r.alias,
                             model=r.name, points_to=str(r.version), since_snapshot=_i(r.valid_from))
            version = self.version_node.get((r.source, r.name, str(r.version)))
            if version is None:
                version = g.add_node(node_id(NodeType.MODEL_VERSION, scope, f"{r.name}/{r.version}"),
                                     NodeType.MODEL_VERSION, self.scopes.platform[r.source], r.name, str(r.version),
                                     source=r.source, collected=False)
                self.gap(GapKind.NO_ORIGIN, version, f"alias {r.name}@{r.alias} points at version {r.version}, "
                         f"which {r.source} did not list")
            g.add_edge(version, nid, EdgeKind.ALIAS_OF,
                       self.ev("model_aliases.version", r.snapshot_id, r.source, Basis.REGISTRY, r.valid_from))

    # -- job runs (git commit of the Databricks job run behind an MLflow run) --------------------
    def _index_job_runs(self) -> None:
        for r in _rows(self.rows.job_runs):
            self.job_runs[(self.scopes.platform[r.source], str(r.job_run_id))].append(r)

    def _job_run(self, source: str, job_run_id: str) -> Any:
        """The job run of the same platform (the Databricks source of the MLflow source's workspace)."""
        found = self.job_runs.get((self.scopes.platform[source], job_run_id), [])
        same = [j for j in found if j.source == source]
        found = same or found
        commits = {(_s(j.git_used_commit) or _s(j.git_commit) or "").lower() for j in found}
        if len(found) > 1 and len(commits) > 1:
            return None          # two workspaces' job runs with one id and different commits: not joined
        return found[0] if found else None

    def _job_commit(self, r: Any, nid: str, sha: str | None, job: Any, valid: dict[str, str],
                    commits: list[str]) -> str | None:
        """Corroborate (or fill, or contradict) the run's git commit fields with its job run's git commit."""
        field = "git_used_commit" if _s(job.git_used_commit) else "git_commit"
        commit = _s(getattr(job, field))
        if commit is None:
            return None
        g = self.graph
        if not is_git_sha(commit):
            self.gap(GapKind.INVALID_GIT_SHA, nid, f"run {r.run_id}: its job run {job.job_run_id} records "
                     f"job_runs.{field} = {commit[:80]!r}, which is not a git commit SHA (7–40 hex digits)")
            return None
        commit = commit.strip()
        evidence = self.ev(f"job_runs.{field}", job.snapshot_id, job.source, Basis.REGISTRY, job.valid_from,
                           detail=f"Databricks job run {job.job_run_id} git source")
        low = commit.lower()
        same = next((c for c in commits if c.startswith(low) or low.startswith(c)), None)
        if same is not None:
            g.add_edge(node_id(NodeType.COMMIT, None, same), nid, EdgeKind.CODE_VERSION, evidence)
            g.node_data(nid)["attrs"]["git_sha_corroborated_by"] = f"job_runs.{field}"
            return commit
        cid = g.add_node(node_id(NodeType.COMMIT, None, commit), NodeType.COMMIT, None, commit, sha=commit)
        g.add_edge(cid, nid, EdgeKind.CODE_VERSION, evidence)
        if valid:
            named = "; ".join(f"{f} = {v}" for f, v in valid.items())
            self.gap(GapKind.COMMIT_MISMATCH, nid, f"run {r.run_id} records git commit {named} but its job run "
                     f"{job.job_run_id} ran commit {commit} (job_runs.{field}); both are shown",
                     sorted({*(v for v in valid.values()), commit}))
        elif not sha:
            attrs = g.node_data(nid)["attrs"]
            attrs["git_sha"], attrs["git_sha_from"] = commit, f"job_runs.{field}"
        return commit

    # -- tables as a whole, UC lineage, storage identity ------------------------------------------
    def _table(self, source: str, name: str, **attrs: Any) -> str:
        """The table as a whole (no version): what lineage, dependencies and features name."""
        name = name.rstrip("/") or name
        platform = self.scopes.platform[source]
        nid = self.graph.add_node(node_id(NodeType.TABLE, self.scopes.of(source), name), NodeType.TABLE, platform,
                                  name, None, source=source, table=name, whole_table=True, **attrs)
        self.whole_tables[nid] = (platform, name)
        return nid

    def _uc_tables(self) -> dict[str, list[tuple[str, Any]]]:
        """UC tables as a whole; returns storage location (normalised) → [(node, row)]."""
        storage: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for r in _rows(self.rows.uc_tables):
            loc = _s(r.storage_location)
            nid = self._table(r.source, r.full_name, storage_location=loc, table_type=_s(r.table_type),
                              read_status=_s(r.read_status))
            if loc:
                storage[normalise_location(loc)].append((nid, r))
        return storage

    def _table_lineage(self) -> None:
        g = self.graph
        for r in _rows(self.rows.table_lineage):
            kind = _s(r.upstream_kind) or "table"
            up = self._table(r.source, r.upstream, upstream_kind=kind)
            down = self._table(r.source, r.downstream)
            who = [f"{label} {', '.join(ids)}" for label, raw in (("jobs", r.job_ids), ("notebooks", r.notebook_ids),
                                                                  ("pipelines", r.pipeline_ids))
                   if (ids := _json_list(raw))]
            if up != down:
                g.add_edge(up, down, EdgeKind.TABLE_LINEAGE,
                           self.ev("table_lineage.upstream", r.snapshot_id, r.source, Basis.RUN_INPUT, r.valid_from,
                                   detail="; ".join(who) or None))

    def _storage_identity(self, storage: dict[str, list[tuple[str, Any]]]) -> None:
        g = self.graph
        for r in _rows(self.rows.fabric_shortcuts):
            name = _s(r.onelake_path) or f"{r.item_id}/{r.path}/{r.name}"
            target = _s(r.target_location)
            nid = self._table(r.source, name, shortcut=_s(r.name), item_id=_s(r.item_id), path=_s(r.path),
                              target_type=_s(r.target_type), target_location=target)
            if not target:
                continue
            found = {n: row for n, row in storage.get(normalise_location(target), [])}
            if len(found) == 1:
                (uc, row), = found.items()
                g.add_edge(uc, nid, EdgeKind.SAME_STORAGE,
                           self.ev("fabric_shortcuts.target_location = uc_tables.storage_location", r.snapshot_id,
                                   r.source, Basis.STORAGE_IDENTITY, r.valid_from,
                                   detail=f"{target}; {row.source} snapshot {row.snapshot_id}"))
            elif found:
                self.gap(GapKind.AMBIGUOUS, nid, f"shortcut {r.name} targets {target}, the storage location of "
                         f"{len(found)} UC tables; none picked", sorted(found))

    def _table_versions(self) -> None:
        """table (whole) → table@version, for every version a run read (same platform, same name)."""
        g = self.graph
        for nid, key in self.whole_tables.items():
            for tid, (source, sid, seen) in self.table_versions.get(key, {}).items():
                g.add_edge(nid, tid, EdgeKind.TABLE_VERSION,
                           self.ev("run_inputs.table_name", sid, source, Basis.RUN_INPUT, seen,
                                   detail="the version a run read of this table"))

    # -- features and UC model-version dependencies -----------------------------------------------
    def _version_for(self, source: str, name: str, version: str) -> tuple[str | None, list[str]]:
        """The model version a serving/feature/dependency row names: same source first, else the
        one version of that name on the platform; (None, candidates) when none or several."""
        nid = self.version_node.get((source, name, version))
        if nid is not None:
            return nid, [nid]
        found = [c for c in self.versions_by_key.get((self.scopes.platform[source], name, version), [])
                 if self.graph.node_data(c)["attrs"].get("collected", True)]
        return (found[0] if len(found) == 1 else None), found

    def _features(self) -> None:
        g = self.graph
        feature_node: dict[tuple[str, str], str] = {}

        def feature(source: str, full_name: str, short: str | None, table: str | None, r: Any, field: str) -> str:
            nid = g.add_node(node_id(NodeType.FEATURE_TABLE, self.scopes.of(source), full_name), NodeType.FEATURE_TABLE,
                             self.scopes.platform[source], full_name, None, source=source, feature=short,
                             source_table=table)
            feature_node[(source, full_name)] = nid
            if table:
                g.add_edge(self._table(source, table), nid, EdgeKind.TABLE_FEEDS_FEATURES,
                           self.ev(field, r.snapshot_id, source, Basis.RUN_INPUT, r.valid_from))
            return nid

        for r in _rows(self.rows.features):
            feature(r.source, r.full_name, _s(r.name), _s(r.source_table), r, "features.source_table")
        for r in _rows(self.rows.feature_lineage):
            nid = feature_node.get((r.source, r.feature)) or feature(
                r.source, r.feature, r.feature.split(".")[-1], _s(r.source_table), r, "feature_lineage.source_table")
            if r.target_kind != "model":
                used = g.node_data(nid)["attrs"].setdefault("used_by", [])
                used.append(f"{r.target_kind}:{r.target_name}")
                continue
            version, _ = self._version_for(r.source, r.target_name, str(r.target_version))
            if version is None:
                g.node_data(nid)["attrs"].setdefault("unresolved_models", []).append(
                    f"{r.target_name}/{r.target_version}")
                continue
            g.add_edge(nid, version, EdgeKind.FEATURE_LOOKUP,
                       self.ev("feature_lineage.target_version", r.snapshot_id, r.source, Basis.RUN_INPUT, r.valid_from))

    def _dependencies(self) -> None:
        g = self.graph
        for r in _rows(self.rows.model_version_dependencies):
            version = self.version_node.get((r.source, r.name, str(r.version)))
            if version is None:
                continue
            if r.dependency_type != "table":
                g.node_data(version)["attrs"].setdefault("dependencies", []).append(
                    f"{r.dependency_type}:{r.dependency_name}")
                continue
            g.add_edge(self._table(r.source, r.dependency_name), version, EdgeKind.MODEL_DEPENDENCY,
                       self.ev("model_version_dependencies.dependency_name", r.snapshot_id, r.source,
                               Basis.RUN_INPUT, r.valid_from))

    # -- serving (evidence kind 4) ----------------------------------------------------------------
    def _endpoint(self, source: str, name: str, **attrs: Any) -> str:
        scope = self.scopes.of(source)
        nid = self.graph.add_node(node_id(NodeType.ENDPOINT, scope, name), NodeType.ENDPOINT,
                                  self.scopes.platform[source], name, None, source=source, endpoint=name, **attrs)
        self.endpoint_nodes[(scope, name)] = nid
        return nid

    def _serve(self, endpoint: str, routes: dict[str, list[dict[str, Any]]], evidence: dict[str, Evidence],
               config: str) -> None:
        """One serves edge per (version, endpoint), traffic summed over its routes."""
        for version, rs in routes.items():
            pcts = [x["traffic_pct"] for x in rs if x.get("traffic_pct") is not None]
            self.graph.add_edge(version, endpoint, EdgeKind.SERVES, evidence[version],
                                attrs={"traffic_pct": sum(pcts) if pcts else None, "config": config, "routes": rs})

    def _unserved(self, endpoint: str, what: str, model: str, version: str, candidates: list[str]) -> None:
        if len(candidates) > 1:
            self.gap(GapKind.AMBIGUOUS, endpoint, f"endpoint {what} serves {model}/{version}, held by "
                     f"{len(candidates)} registries; none picked", candidates)
        else:
            self.gap(GapKind.SERVED_VERSION_NOT_FOUND, endpoint, f"endpoint {what} serves {model}/{version}, which "
                     "no collected registry holds at this time")

    def _databricks_serving(self) -> None:
        """Active config: version → endpoint edges. Pending config (an update in progress): attrs only."""
        g = self.graph
        config_version: dict[tuple[str, str], int | None] = {}
        for r in _rows(self.rows.serving_endpoints):
            self._endpoint(r.source, r.name, ready=_s(r.ready), config_update=_s(r.config_update),
                           config_version=_i(r.config_version), pending_config_version=_i(r.pending_config_version),
                           endpoint_url=_s(r.endpoint_url), task=_s(r.task), read_status=_s(r.read_status))
            config_version[(r.source, r.name)] = _i(r.config_version)
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        evidence: dict[str, dict[str, Evidence]] = defaultdict(dict)
        for r in _rows(self.rows.served_entities):
            ep = self.endpoint_nodes.get((self.scopes.of(r.source), r.endpoint)) or self._endpoint(r.source, r.endpoint)
            route = {"served_entity": r.served_entity_name, "model": _s(r.entity_name),
                     "version": _s(r.entity_version), "traffic_pct": None if r.traffic_pct is None else float(r.traffic_pct),
                     "deployment_state": _s(r.deployment_state)}
            attrs = g.node_data(ep)["attrs"]
            if r.config == "pending":
                attrs.setdefault("pending_config", []).append(route)
                continue
            if r.external or not _s(r.entity_version):
                attrs.setdefault("external_entities", []).append(route)
                continue
            attrs.setdefault("routes", []).append(route)
            version, candidates = self._version_for(r.source, r.entity_name, str(r.entity_version))
            if version is None:
                self._unserved(ep, r.endpoint, r.entity_name, r.entity_version, candidates)
                continue
            grouped[ep][version].append(route)
            cv = config_version.get((r.source, r.endpoint))
            evidence[ep].setdefault(version, self.ev(
                "served_entities.entity_version", r.snapshot_id, r.source, Basis.SERVING, r.valid_from,
                detail=f"active config{'' if cv is None else f' v{cv}'}: served entity {r.served_entity_name}"
                       + ("" if route["traffic_pct"] is None else f", {route['traffic_pct']:g}% of traffic")))
        for ep, routes in grouped.items():
            self._serve(ep, routes, evidence[ep], "active")

    def _azureml_serving(self) -> None:
        """Azure ML online endpoints: one node per endpoint; each deployment is a route on the edge
        from the version it serves (model reference parsed by the collector), with its traffic %."""
        g = self.graph
        traffic: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        for r in _rows(self.rows.aml_endpoints):
            split, mirror = _json_dict(r.traffic), _json_dict(r.mirror_traffic)
            self._endpoint(r.source, r.endpoint, provisioning_state=_s(r.provisioning_state),
                           scoring_uri=_s(r.scoring_uri), traffic=split, mirror_traffic=mirror or None)
            traffic[(r.source, r.endpoint)] = (split, mirror)
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        evidence: dict[str, dict[str, Evidence]] = defaultdict(dict)
        for r in _rows(self.rows.aml_deployments):
            ep = self.endpoint_nodes.get((self.scopes.of(r.source), r.endpoint)) or self._endpoint(r.source, r.endpoint)
            split, mirror = traffic.get((r.source, r.endpoint), ({}, {}))
            pct = split.get(r.deployment, 0)
            route = {"deployment": r.deployment, "model": _s(r.model_name), "version": _s(r.model_version),
                     "traffic_pct": float(pct) if pct is not None else None,
                     "mirror_pct": mirror.get(r.deployment), "provisioning_state": _s(r.provisioning_state),
                     "model_ref": _s(r.model_ref)}
            g.node_data(ep)["attrs"].setdefault("routes", []).append(route)
            name, ver = _s(r.model_name), _s(r.model_version)
            if name is None or ver is None:
                self.gap(GapKind.SERVED_VERSION_NOT_FOUND, ep, f"deployment {r.endpoint}/{r.deployment} serves "
                         f"{_s(r.model_ref) or 'no model'}, a reference that names no model version")
                continue
            if _s(r.model_registry):
                self.gap(GapKind.SERVED_VERSION_NOT_FOUND, ep, f"deployment {r.endpoint}/{r.deployment} serves "
                         f"{name}/{ver} from Azure ML registry {r.model_registry}, which is not collected")
                continue
            version, candidates = self._version_for(r.source, name, ver)
            if version is None:
                self._unserved(ep, f"{r.endpoint} (deployment {r.deployment})", name, ver, candidates)
                continue
            grouped[ep][version].append(route)
            evidence[ep].setdefault(version, self.ev(
                "aml_deployments.model_ref", r.snapshot_id, r.source, Basis.SERVING, r.valid_from,
                detail=f"deployment {r.deployment}, {route['traffic_pct'] or 0:g}% of traffic"))
        for ep, routes in grouped.items():
            for version, rs in routes.items():   # several deployments of one version: name them all
                if len(rs) > 1:
                    first = evidence[ep][version]
                    evidence[ep][version] = first._replace(detail="deployments " + ", ".join(
                        f"{x['deployment']} {x['traffic_pct'] or 0:g}%" for x in rs))
            self._serve(ep, routes, evidence[ep], "active")

    # -- vector search ----------------------------------------------------------------------------
    def _vector_indexes(self) -> None:
        g = self.graph
        for r in _rows(self.rows.vector_indexes):
            scope = self.scopes.of(r.source)
            nid = g.add_node(node_id(NodeType.VECTOR_INDEX, scope, r.name), NodeType.VECTOR_INDEX,
                             self.scopes.platform[r.source], r.name, None, source=r.source,
                             vector_search_endpoint=_s(r.endpoint_name), index_type=_s(r.index_type),
                             ready=r.ready, source_table=_s(r.source_table))
            if _s(r.source_table):
                g.add_edge(self._table(r.source, r.source_table), nid, EdgeKind.INDEXES,
                           self.ev("vector_indexes.source_table", r.snapshot_id, r.source, Basis.RUN_INPUT,
                                   r.valid_from))
            for name in _json_list(r.embedding_model_endpoints):
                ep = self.endpoint_nodes.get((scope, name))
                if ep is None:
                    ep = self._endpoint(r.source, name, collected=False)
                    self.gap(GapKind.ENDPOINT_NOT_FOUND, ep, f"vector index {r.name} embeds with endpoint {name}, "
                             f"which {r.source} did not list")
                g.add_edge(ep, nid, EdgeKind.EMBEDS,
                           self.ev("vector_indexes.embedding_model_endpoints", r.snapshot_id, r.source,
                                   Basis.RUN_INPUT, r.valid_from))

    def _endpoint_history(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r.source, r.endpoint): {"first_seen": _i(r.first_seen), "current": bool(r.current)}
                for r in _rows(self.rows.endpoint_history)}

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
        """Edges point downstream, so a cycle can only come from a convention (a migration tag loop)."""
        g = self.graph
        while (cycle := g.find_cycle()) is not None:
            weakest = next(((s, t) for s, t in cycle if g.g.edges[s, t]["evidence"].basis == Basis.CONVENTION),
                           cycle[-1])
            g.g.remove_edge(*weakest)
            self.gap(GapKind.CYCLE, weakest[1], f"the link {weakest[0]} → {weakest[1]} would close a cycle "
                     f"({' → '.join(s for s, _ in cycle)}); it was dropped", [s for s, _ in cycle])

