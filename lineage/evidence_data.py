"""Evidence from the Databricks data plane: UC tables and table lineage, storage identity with
OneLake shortcuts, features and feature lineage, UC model-version dependencies, vector indexes."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from lineage.build_state import BuilderState, _json_list, _rows, _s, node_id
from lineage.conventions import normalise_location
from lineage.graph import Basis, EdgeKind, GapKind, NodeType


class DataEvidence(BuilderState):
    # -- tables as a whole, UC lineage, storage identity ------------------------------------------
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
