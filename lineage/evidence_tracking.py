"""Evidence from tracking: experiments, runs, their git commits (fields of the run and of its
Databricks job run), and run inputs (dataset → run; Delta source → table@version, with the
`delta_feature_version` convention filling, corroborating or contradicting the record)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from lineage.build_state import (
    UNKNOWN_VERSION, BuilderState, _Delta, _i, _rows, _run_id_of, _s, node_id, table_node_id)
from lineage.conventions import is_git_sha
from lineage.graph import Basis, EdgeKind, Evidence, GapKind, NodeType


def _longest_first(item: tuple[str, str]) -> int:
    return -len(item[1])


class TrackingEvidence(BuilderState):
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
        for field, value in (sorted(valid.items(), key=_longest_first) if len(valid) > 1 else valid.items()):
            low = value.lower()
            for commit, fields in commits.items():
                if commit.startswith(low):
                    fields.append(field)
                    break
            else:
                commits[low] = [field]
        snapshot_id, seen_since = int(r.snapshot_id), _i(r.valid_from)
        for commit, fields in commits.items():
            cid = g.add_node(node_id(NodeType.COMMIT, None, commit), NodeType.COMMIT, None, commit, sha=commit)
            for field in fields:
                value = valid[field]
                g.add_edge(cid, nid, EdgeKind.CODE_VERSION,
                           Evidence(field, snapshot_id, r.source, Basis.CONVENTION, seen_since,
                                    None if len(value) == len(commit) else f"abbreviated: {value}"))
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
