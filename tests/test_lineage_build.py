"""The lineage builder as a pure function of rows: properties (hypothesis) and the join rules."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.build import build_graph
from lineage.graph import NODE_RANK, WITHIN_RANK_KINDS, Basis, EdgeKind, GapKind, NodeType
from lineage.trace import trace
from store.lineage_rows import LineageRows
from store.queries import SnapshotPoint

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
COLUMNS = {
    "experiments": ["source", "experiment_id", "name"],
    "runs": ["source", "run_id", "experiment_id", "run_name", "status", "lifecycle_stage", "start_time", "git_sha",
             "git_sha_from", "conv_param_0", "job_run_id"],
    "run_inputs": ["source", "run_id", "input_key", "dataset_name", "digest", "source_type", "context", "table_name",
                   "table_version", "version_known", "path"],
    "logged_models": ["source", "model_id", "experiment_id", "name", "source_run_id"],
    "model_versions": ["source", "name", "version", "run_id", "source_uri", "model_id", "status", "stage",
                       "creation_time", "conv_tag_0"],
    "model_aliases": ["source", "name", "alias", "version"],
    "model_origins": ["source", "name", "version", "read_status", "origin_run_id", "origin_model_uuid",
                      "origin_model_id", "detail"],
}
# Platform tables (store/lineage_rows.py reads the same columns).
PLATFORM_COLUMNS = {
    "serving_endpoints": ["source", "name", "ready", "config_update", "config_version", "pending_config_version",
                          "endpoint_url", "task", "read_status"],
    "served_entities": ["source", "endpoint", "config", "served_entity_name", "entity_name", "entity_version",
                        "traffic_pct", "deployment_state", "external"],
    "aml_endpoints": ["source", "endpoint", "provisioning_state", "scoring_uri", "traffic", "mirror_traffic"],
    "aml_deployments": ["source", "endpoint", "deployment", "provisioning_state", "model_ref", "model_ref_format",
                        "model_name", "model_version", "model_registry"],
    "uc_tables": ["source", "full_name", "table_type", "storage_location", "read_status"],
    "table_lineage": ["source", "upstream", "downstream", "upstream_kind", "lineage_timestamp", "job_ids",
                      "notebook_ids", "pipeline_ids", "depth"],
    "features": ["source", "full_name", "name", "source_table"],
    "feature_lineage": ["source", "feature", "target_kind", "target_name", "target_version", "source_table"],
    "model_version_dependencies": ["source", "name", "version", "dependency_type", "dependency_name"],
    "vector_indexes": ["source", "name", "endpoint_name", "index_type", "source_table", "embedding_model_endpoints",
                       "ready"],
    "job_runs": ["source", "job_run_id", "job_id", "run_page_url", "git_url", "git_branch", "git_commit",
                 "git_used_commit", "read_status"],
    "fabric_shortcuts": ["source", "item_id", "path", "name", "target_type", "target_location", "onelake_path"],
}
# dbx-ws: the Databricks workspace source next to the MLflow source `dbx` (same workspace);
# fab-ws: the Fabric REST source; aml: Azure ML.
SOURCES = {"dbx": ("databricks", 7), "fab": ("fabric", 8), "dbx2": ("databricks", 9), "dbx-ws": ("databricks", 10),
           "fab-ws": ("fabric", 11), "aml": ("azureml", 12)}
KINDS = {"dbx-ws": "databricks", "fab-ws": "fabric", "aml": "azureml"}


def make_rows(sources=("dbx", "fab"), **tables: list[dict]) -> LineageRows:
    points = {s: SnapshotPoint(s, SOURCES[s][1], T0, SOURCES[s][0]) for s in sources}
    frames = {}
    for table, cols in {**COLUMNS, **PLATFORM_COLUMNS}.items():
        records = []
        for r in tables.get(table, []):
            rec = {c: r.get(c) for c in cols}
            rec["valid_from"] = r.get("valid_from", 1)
            rec["snapshot_id"] = points[r["source"]].snapshot_id
            records.append(rec)
        frames[table] = pd.DataFrame(records, columns=cols + ["valid_from", "snapshot_id"])
    history = pd.DataFrame(tables.get("alias_history", []),
                           columns=["source", "name", "alias", "version", "valid_from", "valid_to", "seen_from",
                                    "seen_until"])
    return LineageRows(points=points, source_platforms={s: SOURCES[s][0] for s in sources},
                       source_kinds={s: KINDS.get(s, "mlflow") for s in sources}, alias_history=history, version_params=("delta_feature_version",),
                       migration_tags=("waymark.migrated_from",), **frames)


def run(source, run_id, sha=None, param=None, deleted=False):
    return {"source": source, "run_id": run_id, "experiment_id": "1", "run_name": run_id, "status": "FINISHED",
            "lifecycle_stage": "deleted" if deleted else "active", "start_time": 1, "git_sha": sha,
            "git_sha_from": "param:git_sha" if sha else None, "conv_param_0": param}


def delta_input(source, run_id, table, version, known=True, name="features"):
    return {"source": source, "run_id": run_id, "input_key": f"{name}|{table}|{version}", "dataset_name": name,
            "digest": f"d-{table}-{version}-{run_id}", "source_type": "delta_table", "context": "training",
            "table_name": table, "table_version": version if known else None, "version_known": known}


def version(source, name, v, run_id=None, model_id=None, tag=None, uri=None):
    return {"source": source, "name": name, "version": str(v), "run_id": run_id, "model_id": model_id,
            "source_uri": uri or (f"models:/{model_id}" if model_id else "/some/path"), "status": "READY",
            "conv_tag_0": tag}


# -- properties ---------------------------------------------------------------------------------
ids = st.sampled_from(["r1", "r2", "r3", "r4"])
models = st.sampled_from(["m-1", "m-2", "m-3"])
source_names = st.sampled_from(["dbx", "fab", "dbx2"])
maybe = lambda s: st.one_of(st.none(), s)  # noqa: E731


@st.composite
def random_rows(draw) -> LineageRows:
    runs = {(r["source"], r["run_id"]): r for r in draw(st.lists(st.builds(
        run, source_names, ids, maybe(st.sampled_from(["a" * 40, "b" * 40])), maybe(st.sampled_from(["0", "3", "x"])),
        st.booleans()), max_size=8))}
    inputs = {(r["source"], r["run_id"], r["input_key"]): r for r in draw(st.lists(st.builds(
        delta_input, source_names, ids, st.sampled_from(["t.a", "t.b"]), st.integers(0, 3), st.booleans(),
        st.sampled_from(["features", "holdout"])), max_size=8))}
    logged = {(r["source"], r["model_id"]): r for r in draw(st.lists(st.builds(
        lambda s, m, r: {"source": s, "model_id": m, "experiment_id": "1", "name": "model", "source_run_id": r},
        source_names, models, maybe(ids)), max_size=5))}
    tags = maybe(st.sampled_from(["databricks:A/1", "fabric:A/1", "fabric:B/2", "databricks:B/2", "nonsense"]))
    versions = {(r["source"], r["name"], r["version"]): r for r in draw(st.lists(st.builds(
        version, source_names, st.sampled_from(["A", "B"]), st.integers(1, 2), maybe(ids), maybe(models), tags),
        max_size=8))}
    origins = {(r["source"], r["name"], r["version"]): r for r in draw(st.lists(st.builds(
        lambda s, n, v, status, r, m: {"source": s, "name": n, "version": str(v), "read_status": status,
                                       "origin_run_id": r, "origin_model_id": m},
        source_names, st.sampled_from(["A", "B"]), st.integers(1, 2), st.sampled_from(["ok", "missing", "unreadable"]),
        maybe(ids), maybe(models)), max_size=6))}
    aliases = {(r["source"], r["name"], r["alias"]): r for r in draw(st.lists(st.builds(
        lambda s, n, a, v: {"source": s, "name": n, "alias": a, "version": str(v)},
        source_names, st.sampled_from(["A", "B"]), st.sampled_from(["Production", "Staging"]), st.integers(1, 3)),
        max_size=4))}
    tables = st.sampled_from(["t.a", "t.b", "t.c", "abfss://x@acct/t"])
    lineage = {(r["source"], r["upstream"], r["downstream"]): r for r in draw(st.lists(st.builds(
        lambda s, u, d, k: {"source": s, "upstream": u, "downstream": d, "upstream_kind": k, "job_ids": '["1"]'},
        st.sampled_from(["dbx-ws", "dbx"]), tables, tables, st.sampled_from(["table", "file"])), max_size=6))}
    uc = {(r["source"], r["full_name"]): r for r in draw(st.lists(st.builds(
        lambda s, t, loc: {"source": s, "full_name": t, "storage_location": loc, "read_status": "ok"},
        st.just("dbx-ws"), tables, maybe(st.sampled_from(["abfss://c@a/x", "abfss://c@a/y", "ABFSS://c@A/x/"]))),
        max_size=4))}
    shortcuts = {(r["source"], r["name"]): r for r in draw(st.lists(st.builds(
        lambda n, loc: {"source": "fab-ws", "item_id": "lh", "path": "Tables", "name": n, "target_location": loc,
                        "onelake_path": f"abfss://ws@onelake/lh/Tables/{n}"},
        st.sampled_from(["s1", "s2"]), maybe(st.sampled_from(["abfss://c@a/x", "abfss://c@a/y"]))), max_size=2))}
    served = {(r["source"], r["endpoint"], r["config"], r["served_entity_name"]): r for r in draw(st.lists(st.builds(
        lambda s, e, c, n, v, pct: {"source": s, "endpoint": e, "config": c, "served_entity_name": f"{n}-{v}",
                                    "entity_name": n, "entity_version": str(v), "traffic_pct": pct,
                                    "external": False},
        st.sampled_from(["dbx-ws", "dbx"]), st.sampled_from(["e1", "e2"]), st.sampled_from(["active", "pending"]),
        st.sampled_from(["A", "B"]), st.integers(1, 3), maybe(st.sampled_from([10.0, 90.0]))), max_size=5))}
    deployments = {(r["endpoint"], r["deployment"]): r for r in draw(st.lists(st.builds(
        lambda e, d, n, v: {"source": "aml", "endpoint": e, "deployment": d, "model_name": n, "model_version": str(v),
                            "model_ref_format": "workspace"},
        st.sampled_from(["a1", "a2"]), st.sampled_from(["blue", "green"]), st.sampled_from(["A", "B"]),
        st.integers(1, 2)), max_size=3))}
    features = [{"source": "dbx-ws", "full_name": f"c.s.f{i}", "name": f"f{i}", "source_table": t}
                for i, t in enumerate(draw(st.lists(tables, max_size=2)))]
    feature_links = [{"source": "dbx-ws", "feature": f["full_name"], "target_kind": "model", "target_name": n,
                      "target_version": str(v)} for f in features
                     for n, v in draw(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.integers(1, 2)), max_size=2,
                                               unique=True))]
    deps = {(r["name"], r["version"], r["dependency_name"]): r for r in draw(st.lists(st.builds(
        lambda n, v, t: {"source": "dbx", "name": n, "version": str(v), "dependency_type": "table",
                         "dependency_name": t}, st.sampled_from(["A", "B"]), st.integers(1, 2), tables), max_size=3))}
    jobs = [{"source": "dbx-ws", "job_run_id": j, "git_used_commit": c}
            for j, c in draw(st.dictionaries(st.sampled_from(["j1", "j2"]), maybe(st.sampled_from(["a" * 40, "c" * 40])),
                                             max_size=2)).items()]
    for r in runs.values():
        r["job_run_id"] = draw(maybe(st.sampled_from(["j1", "j2"])))
    indexes = [{"source": "dbx-ws", "name": "idx", "source_table": draw(tables),
                "embedding_model_endpoints": draw(st.sampled_from(['["e1"]', '["gone"]', "[]"]))}]
    return make_rows(("dbx", "fab", "dbx2", "dbx-ws", "fab-ws", "aml"), runs=list(runs.values()),
                     run_inputs=list(inputs.values()),
                     logged_models=list(logged.values()), model_versions=list(versions.values()),
                     model_origins=list(origins.values()), model_aliases=list(aliases.values()),
                     table_lineage=list(lineage.values()), uc_tables=list(uc.values()),
                     fabric_shortcuts=list(shortcuts.values()), served_entities=list(served.values()),
                     aml_endpoints=[{"source": "aml", "endpoint": "a1", "traffic": '{"blue": 90, "green": 10}'}],
                     aml_deployments=list(deployments.values()), features=features, feature_lineage=feature_links,
                     model_version_dependencies=list(deps.values()), job_runs=jobs, vector_indexes=indexes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_rows())
def test_edges_point_downstream_and_carry_evidence_of_an_existing_snapshot(rows):
    graph = build_graph(rows)
    snapshot_ids = {p.snapshot_id for p in rows.points.values()}
    assert graph.is_dag()
    for edge in graph.edges():
        s, t = graph.node(edge.source), graph.node(edge.target)
        if edge.kind == EdgeKind.MIGRATED_FROM:
            assert s.type == t.type == NodeType.MODEL_VERSION
        elif edge.kind in WITHIN_RANK_KINDS:
            assert s.type == t.type == NodeType.TABLE, edge
        else:
            assert NODE_RANK[s.type] < NODE_RANK[t.type], edge
        assert edge.evidence.field and edge.evidence.source in rows.points
        assert edge.evidence.snapshot_id in snapshot_ids
        assert edge.evidence.seen_since is None or edge.evidence.seen_since <= edge.evidence.snapshot_id
    for gap in graph.all_gaps():
        assert gap.node in graph
    for edge in graph.edges():
        if edge.kind == EdgeKind.SERVES:
            assert graph.node(edge.target).type == NodeType.ENDPOINT and "routes" in edge.attrs
    for node in graph.nodes():
        assert (node.platform is None) == (node.type == NodeType.COMMIT)


def _shuffled(rows: LineageRows, seed: int) -> LineageRows:
    """The same rows in another order: every frame permuted (the store promises no row order)."""
    frames = {f.name: getattr(rows, f.name) for f in dataclasses.fields(rows)}
    return dataclasses.replace(rows, **{name: frame.sample(frac=1, random_state=seed).reset_index(drop=True)
                                        for name, frame in frames.items() if isinstance(frame, pd.DataFrame)})


def _decisions(graph) -> tuple[list, list, list]:
    """What the build decided: nodes, edges with their proof, and every gap with its candidates
    (an ambiguity names all candidates and picks none, whatever order the rows came in)."""
    nodes = sorted((n.id, n.type.value, n.version) for n in graph.nodes())
    edges = sorted((e.source, e.target, e.kind.value, e.evidence.field, e.evidence.basis.value) for e in graph.edges())
    gaps = sorted((g.kind.value, g.node, g.candidates) for g in graph.all_gaps())
    return nodes, edges, gaps


@settings(max_examples=60, deadline=None)
@given(random_rows(), st.integers(0, 2**32 - 1))
def test_build_is_deterministic_whatever_the_row_order(rows, seed):
    a, b = build_graph(rows), build_graph(_shuffled(rows, seed))
    assert _decisions(a) == _decisions(b)


def test_an_ambiguity_stays_an_ambiguity_in_either_row_order():
    """Two sources hold the run an MLmodel names: whichever row comes first, no candidate is picked."""
    runs = [run("dbx", "r1"), run("dbx2", "r1")]
    built = [build_graph(make_rows(("dbx", "dbx2", "fab"), runs=order, model_versions=[version("fab", "M", 1)],
                                   model_origins=[{"source": "fab", "name": "M", "version": "1", "read_status": "ok",
                                                   "origin_run_id": "r1"}]))
             for order in (runs, runs[::-1])]
    assert _decisions(built[0]) == _decisions(built[1])
    assert ("ambiguous", "model_version:fabric:M/1", ("run:databricks/dbx2:r1", "run:databricks/dbx:r1")) \
        in _decisions(built[0])[2]


def test_a_table_lineage_loop_drops_the_same_edge_in_either_row_order():
    """UC lineage saying t.a feeds t.b and t.b feeds t.a: one edge is dropped as a cycle gap, and
    which one does not depend on the order the store returned the rows in."""
    loop = [{"source": "dbx-ws", "upstream": u, "downstream": d, "upstream_kind": "table", "job_ids": '["1"]'}
            for u, d in (("t.a", "t.b"), ("t.b", "t.a"))]
    built = [build_graph(make_rows(("dbx", "dbx-ws"), table_lineage=order)) for order in (loop, loop[::-1])]
    assert _decisions(built[0]) == _decisions(built[1])
    assert [g.kind for g in built[0].all_gaps()] == [GapKind.CYCLE]


# -- join rules ---------------------------------------------------------------------------------
def test_version_zero_and_unknown_are_distinct_and_convention_fills_only_with_evidence():
    rows = make_rows(runs=[run("dbx", "r0", param="0"), run("dbx", "r1"), run("dbx", "r2", param="7")],
                     run_inputs=[delta_input("dbx", "r0", "t.f", None, known=False),
                                 delta_input("dbx", "r1", "t.f", None, known=False),
                                 delta_input("dbx", "r2", "t.f", 0)])
    g = build_graph(rows)
    assert "table:databricks:t.f@0" in g and "table:databricks:t.f@unknown" in g
    filled = [e for e in g.edges() if e.source == "table:databricks:t.f@0" and e.evidence.basis == Basis.CONVENTION]
    assert [e.evidence.field for e in filled] == ["runs.params.delta_feature_version"]
    recorded = [e for e in g.edges() if e.source == "table:databricks:t.f@0" and e.evidence.basis == Basis.RUN_INPUT]
    assert len(recorded) == 1          # r2 recorded 0 explicitly
    assert [gap.kind for gap in g.gaps["table:databricks:t.f@unknown"]] == [GapKind.UNVERSIONED_INPUT]


def test_two_unversioned_inputs_and_one_param_is_an_ambiguity_naming_both():
    rows = make_rows(runs=[run("dbx", "r0", param="3")],
                     run_inputs=[delta_input("dbx", "r0", "t.a", None, known=False, name="a"),
                                 delta_input("dbx", "r0", "t.b", None, known=False, name="b")])
    g = build_graph(rows)
    (gap,) = [x for x in g.gaps["run:databricks:r0"] if x.kind == GapKind.AMBIGUOUS]
    assert len(gap.candidates) == 2
    assert "table:databricks:t.a@unknown" in g and "table:databricks:t.b@unknown" in g


def test_two_sources_on_one_platform_get_source_qualified_ids_and_origin_ambiguity():
    rows = make_rows(("dbx", "dbx2", "fab"), runs=[run("dbx", "r1"), run("dbx2", "r1")],
                     model_versions=[version("fab", "M", 1)],
                     model_origins=[{"source": "fab", "name": "M", "version": "1", "read_status": "ok",
                                     "origin_run_id": "r1"}])
    g = build_graph(rows)
    assert {"run:databricks/dbx:r1", "run:databricks/dbx2:r1", "model_version:fabric:M/1"} <= set(g.node_ids())
    (gap,) = [x for x in g.gaps["model_version:fabric:M/1"] if x.kind == GapKind.AMBIGUOUS]
    assert set(gap.candidates) == {"run:databricks/dbx:r1", "run:databricks/dbx2:r1"}
    assert not g.predecessors("model_version:fabric:M/1")     # never a silent pick


def test_migration_tag_loop_is_broken_and_reported():
    rows = make_rows(model_versions=[version("dbx", "A", 1, tag="fabric:B/1"), version("fab", "B", 1, tag="databricks:A/1")])
    g = build_graph(rows)
    assert g.is_dag()
    assert any(gap.kind == GapKind.CYCLE for gap in g.all_gaps())


def test_registry_and_origin_disagreeing_is_named_with_both_runs():
    rows = make_rows(runs=[run("dbx", "r1"), run("dbx", "r2")], model_versions=[version("dbx", "A", 1, run_id="r1")],
                     model_origins=[{"source": "dbx", "name": "A", "version": "1", "read_status": "ok",
                                     "origin_run_id": "r2"}])
    g = build_graph(rows)
    assert set(g.predecessors("model_version:databricks:A/1")) == {"run:databricks:r1", "run:databricks:r2"}
    (gap,) = [x for x in g.gaps["model_version:databricks:A/1"] if x.kind == GapKind.ORIGIN_CONFLICT]
    assert set(gap.candidates) == {"r1", "r2"}


def test_version_naming_a_run_not_collected_gets_a_placeholder_and_a_gap():
    g = build_graph(make_rows(model_versions=[version("dbx", "A", 1, run_id="gone")]))
    node = g.node("run:databricks:gone")
    assert node.attrs["collected"] is False
    assert [x.kind for x in g.gaps["run:databricks:gone"]] == [GapKind.RUN_NOT_FOUND]


def test_depth_limited_ancestors_and_descendants():
    rows = make_rows(runs=[run("dbx", "r1", sha="c" * 40)], run_inputs=[delta_input("dbx", "r1", "t.f", 4)],
                     model_versions=[version("dbx", "A", 1, run_id="r1")],
                     model_aliases=[{"source": "dbx", "name": "A", "alias": "Production", "version": "1"}])
    g = build_graph(rows)
    alias = "alias:databricks:A@Production"
    assert g.ancestors(alias, 1) == {"model_version:databricks:A/1"}
    assert "table:databricks:t.f@4" in g.ancestors(alias)
    assert "table:databricks:t.f@4" not in g.ancestors(alias, 3)
    assert g.descendants("commit:" + "c" * 40) == {"run:databricks:r1", "model_version:databricks:A/1", alias}


# -- platform tables (Databricks workspace, Fabric, Azure ML) -------------------------------------
def test_uc_version_resolves_its_run_on_the_mlflow_source_of_the_same_workspace():
    rows = make_rows(("dbx", "dbx-ws", "fab"), runs=[run("dbx", "r1", sha="a" * 40), run("fab", "r2")],
                     model_versions=[version("dbx-ws", "c.s.m", 1, run_id="r1"),
                                     version("dbx-ws", "c.s.m", 2, run_id="r2")])
    g = build_graph(rows)
    assert g.predecessors("model_version:databricks:c.s.m/1") == ["run:databricks:r1"]
    assert g.node("run:databricks:r1").attrs["source"] == "dbx"            # the collected run, not a placeholder
    assert not [x for x in g.all_gaps() if x.node == "model_version:databricks:c.s.m/1"]
    # A run id held only on another platform is not a registry link: a placeholder and a named gap.
    assert g.node("run:databricks:r2").attrs["collected"] is False
    assert [x.kind for x in g.gaps["run:databricks:r2"]] == [GapKind.RUN_NOT_FOUND]


def test_uc_run_id_held_by_two_sources_of_the_platform_is_an_ambiguity():
    rows = make_rows(("dbx", "dbx2", "dbx-ws"), runs=[run("dbx", "r1"), run("dbx2", "r1")],
                     model_versions=[version("dbx-ws", "c.s.m", 1, run_id="r1")])
    g = build_graph(rows)
    (gap,) = [x for x in g.gaps["model_version:databricks:c.s.m/1"] if x.kind == GapKind.AMBIGUOUS]
    assert set(gap.candidates) == {"run:databricks/dbx:r1", "run:databricks/dbx2:r1"}
    assert not g.predecessors("model_version:databricks:c.s.m/1")


def test_table_lineage_upstream_tables_are_trace_inputs():
    rows = make_rows(("dbx", "dbx-ws"), runs=[run("dbx", "r1", sha="a" * 40)],
                     run_inputs=[delta_input("dbx", "r1", "c.gold.f", 7)],
                     model_versions=[version("dbx", "M", 1, run_id="r1")],
                     table_lineage=[{"source": "dbx-ws", "upstream": "c.silver.s", "downstream": "c.gold.f",
                                     "upstream_kind": "table", "job_ids": '["5101"]'},
                                    {"source": "dbx-ws", "upstream": "abfss://land@acct/raw/", "downstream": "c.silver.s",
                                     "upstream_kind": "file"}])
    g = build_graph(rows)
    assert g.edge("table:databricks:c.gold.f", "table:databricks:c.gold.f@7").kind == EdgeKind.TABLE_VERSION
    e = g.edge("table:databricks:c.silver.s", "table:databricks:c.gold.f")
    assert (e.kind, e.evidence.field, e.evidence.detail) == (EdgeKind.TABLE_LINEAGE, "table_lineage.upstream", "jobs 5101")
    answer = trace(g, "model:M/1", as_of="now")
    inputs = {(i.name, i.version, i.level) for i in answer.inputs}
    assert inputs == {("c.gold.f", "7", "version"), ("c.silver.s", None, "table"),
                      ("abfss://land@acct/raw", None, "file")}


def test_storage_identity_joins_a_onelake_shortcut_to_the_uc_table_and_a_fabric_run_reaches_uc_lineage():
    shortcut = "abfss://ws@onelake.dfs.fabric.microsoft.com/lh/Tables/dbo/uc_features"
    rows = make_rows(("dbx-ws", "fab", "fab-ws"), runs=[run("fab", "f1", sha="b" * 40)],
                     run_inputs=[{**delta_input("fab", "f1", None, 3), "table_name": None, "path": shortcut}],
                     model_versions=[version("fab", "churn_model", 1, run_id="f1")],
                     uc_tables=[{"source": "dbx-ws", "full_name": "c.gold.features",
                                 "storage_location": "abfss://gold@Lake.dfs.core.windows.net/churn/features"}],
                     table_lineage=[{"source": "dbx-ws", "upstream": "c.silver.s", "downstream": "c.gold.features",
                                     "upstream_kind": "table"}],
                     fabric_shortcuts=[{"source": "fab-ws", "item_id": "lh", "path": "Tables/dbo", "name": "uc_features",
                                        "target_type": "AdlsGen2", "onelake_path": shortcut,
                                        "target_location": "abfss://gold@lake.dfs.core.windows.net/churn/features/"},
                                       {"source": "fab-ws", "item_id": "lh", "path": "Tables/dbo", "name": "other",
                                        "target_location": "abfss://gold@lake.dfs.core.windows.net/elsewhere",
                                        "onelake_path": "abfss://ws@onelake.dfs.fabric.microsoft.com/lh/Tables/dbo/other"}])
    g = build_graph(rows)
    e = g.edge("table:databricks:c.gold.features", f"table:fabric:{shortcut}")
    assert (e.kind, e.evidence.basis, e.evidence.source) == (EdgeKind.SAME_STORAGE, Basis.STORAGE_IDENTITY, "fab-ws")
    assert e.evidence.field == "fabric_shortcuts.target_location = uc_tables.storage_location"
    assert not g.predecessors("table:fabric:abfss://ws@onelake.dfs.fabric.microsoft.com/lh/Tables/dbo/other")
    answer = trace(g, "model:churn_model/1", as_of="now")
    names = {(i.platform, i.name, i.version) for i in answer.inputs}
    assert {("fabric", shortcut, "3"), ("databricks", "c.gold.features", None), ("databricks", "c.silver.s", None)} <= names


def test_two_uc_tables_on_one_storage_location_are_an_ambiguity():
    loc = "abfss://c@a.dfs.core.windows.net/x"
    rows = make_rows(("dbx-ws", "fab-ws"), uc_tables=[{"source": "dbx-ws", "full_name": "c.s.a", "storage_location": loc},
                                                      {"source": "dbx-ws", "full_name": "c.s.b", "storage_location": loc}],
                     fabric_shortcuts=[{"source": "fab-ws", "item_id": "lh", "path": "Tables", "name": "s",
                                        "target_location": loc, "onelake_path": "abfss://ws@onelake/lh/Tables/s"}])
    g = build_graph(rows)
    (gap,) = g.gaps["table:fabric:abfss://ws@onelake/lh/Tables/s"]
    assert gap.kind == GapKind.AMBIGUOUS and set(gap.candidates) == {"table:databricks:c.s.a", "table:databricks:c.s.b"}
    assert not g.predecessors("table:fabric:abfss://ws@onelake/lh/Tables/s")


def test_job_run_commit_corroborates_fills_or_contradicts_the_run_git_sha():
    a, b = "a" * 40, "b" * 40
    rows = make_rows(("dbx", "dbx-ws"),
                     runs=[{**run("dbx", "same", sha=a), "job_run_id": "1"}, {**run("dbx", "none"), "job_run_id": "2"},
                           {**run("dbx", "diff", sha=a), "job_run_id": "3"}],
                     job_runs=[{"source": "dbx-ws", "job_run_id": "1", "git_used_commit": a.upper()},
                               {"source": "dbx-ws", "job_run_id": "2", "git_commit": b},
                               {"source": "dbx-ws", "job_run_id": "3", "git_used_commit": b}])
    g = build_graph(rows)
    same = g.edge_dict(f"commit:{a}", "run:databricks:same")
    assert [c["field"] for c in same["evidence"]["corroborated_by"]] == ["job_runs.git_used_commit"]
    kinds = lambda n: {x.kind for x in g.gaps.get(n, [])}  # noqa: E731
    assert not kinds("run:databricks:same") & {GapKind.NO_GIT_SHA, GapKind.COMMIT_MISMATCH}
    filled = g.node("run:databricks:none").attrs
    assert (filled["git_sha"], filled["git_sha_from"]) == (b, "job_runs.git_commit")
    assert g.edge(f"commit:{b}", "run:databricks:none").evidence.basis == Basis.REGISTRY
    assert GapKind.NO_GIT_SHA not in kinds("run:databricks:none")
    (gap,) = [x for x in g.gaps["run:databricks:diff"] if x.kind != GapKind.NO_INPUTS]
    assert gap.kind == GapKind.COMMIT_MISMATCH and set(gap.candidates) == {a, b}
    assert set(g.predecessors("run:databricks:diff")) == {f"commit:{a}", f"commit:{b}"}     # both shown


def test_served_versions_not_in_any_registry_are_named_gaps():
    rows = make_rows(("dbx-ws", "aml"),
                     served_entities=[{"source": "dbx-ws", "endpoint": "e", "config": "active", "served_entity_name": "x",
                                       "entity_name": "c.s.m", "entity_version": "9", "traffic_pct": 100.0}],
                     aml_endpoints=[{"source": "aml", "endpoint": "a", "traffic": '{"blue": 100}'}],
                     aml_deployments=[{"source": "aml", "endpoint": "a", "deployment": "blue", "model_name": "m",
                                       "model_version": "1", "model_registry": "shared-reg",
                                       "model_ref": "azureml://registries/shared-reg/models/m/versions/1"}])
    g = build_graph(rows)
    assert [x.kind for x in g.gaps["endpoint:databricks:e"]] == [GapKind.SERVED_VERSION_NOT_FOUND]
    (gap,) = g.gaps["endpoint:azureml:a"]
    assert gap.kind == GapKind.SERVED_VERSION_NOT_FOUND and "shared-reg" in gap.message
    assert g.node("endpoint:azureml:a").attrs["routes"][0]["traffic_pct"] == 100


def test_versions_order_numerically_then_by_label_in_the_gates_and_the_checklist():
    """One ordering for registry versions: "2" before "10" (text order would say otherwise), and a
    label that is no number after every number."""
    from lineage.conventions import version_order

    assert sorted(["10", "2", "beta", "1"], key=version_order) == ["1", "2", "10", "beta"]
