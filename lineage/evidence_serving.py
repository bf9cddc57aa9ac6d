"""Evidence from serving: Databricks served entities (active config) and Azure ML deployments →
the model versions they serve, with traffic % and routes on the edge."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from lineage.build_state import BuilderState, _i, _json_dict, _rows, _s
from lineage.graph import Basis, EdgeKind, Evidence, GapKind


class ServingEvidence(BuilderState):
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

    def _endpoint_history(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r.source, r.endpoint): {"first_seen": _i(r.first_seen), "current": bool(r.current)}
                for r in _rows(self.rows.endpoint_history)}
