"""Evidence from the model registry and the artifacts: logged models, model versions and their
producer (registry fields, the MLmodel origin, the migrated-from tag) and aliases."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from lineage.build_state import BuilderState, _i, _rows, _s, node_id
from lineage.conventions import parse_migrated_from
from lineage.graph import Basis, EdgeKind, GapKind, NodeType


class RegistryEvidence(BuilderState):
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
