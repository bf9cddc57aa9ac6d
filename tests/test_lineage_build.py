"""The lineage builder as a pure function of rows: properties (hypothesis) and the join rules."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lineage.build import build_graph
from lineage.graph import NODE_RANK, Basis, EdgeKind, GapKind, NodeType
from store.lineage_rows import LineageRows
from store.queries import SnapshotPoint

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
COLUMNS = {
    "experiments": ["source", "experiment_id", "name"],
    "runs": ["source", "run_id", "experiment_id", "run_name", "status", "lifecycle_stage", "start_time", "git_sha",
             "git_sha_from", "conv_param_0"],
    "run_inputs": ["source", "run_id", "input_key", "dataset_name", "digest", "source_type", "context", "table_name",
                   "table_version", "version_known", "path"],
    "logged_models": ["source", "model_id", "experiment_id", "name", "source_run_id"],
    "model_versions": ["source", "name", "version", "run_id", "source_uri", "model_id", "status", "stage",
                       "creation_time", "conv_tag_0"],
    "model_aliases": ["source", "name", "alias", "version"],
    "model_origins": ["source", "name", "version", "read_status", "origin_run_id", "origin_model_uuid",
                      "origin_model_id", "detail"],
}
SOURCES = {"dbx": ("databricks", 7), "fab": ("fabric", 8), "dbx2": ("databricks", 9)}


def make_rows(sources=("dbx", "fab"), **tables: list[dict]) -> LineageRows:
    points = {s: SnapshotPoint(s, SOURCES[s][1], T0, SOURCES[s][0]) for s in sources}
    frames = {}
    for table, cols in COLUMNS.items():
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
                       alias_history=history, version_params=("delta_feature_version",),
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
    return make_rows(("dbx", "fab", "dbx2"), runs=list(runs.values()), run_inputs=list(inputs.values()),
                     logged_models=list(logged.values()), model_versions=list(versions.values()),
                     model_origins=list(origins.values()), model_aliases=list(aliases.values()))


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
        else:
            assert NODE_RANK[s.type] < NODE_RANK[t.type], edge
        assert edge.evidence.field and edge.evidence.source in rows.points
        assert edge.evidence.snapshot_id in snapshot_ids
        assert edge.evidence.seen_since is None or edge.evidence.seen_since <= edge.evidence.snapshot_id
    for gap in graph.all_gaps():
        assert gap.node in graph
    for node in graph.nodes():
        assert (node.platform is None) == (node.type == NodeType.COMMIT)


@settings(max_examples=60, deadline=None)
@given(random_rows())
def test_build_is_deterministic(rows):
    a, b = build_graph(rows), build_graph(rows)
    assert sorted(a.g.nodes) == sorted(b.g.nodes)
    assert sorted(e.to_dict()["source"] + e.to_dict()["target"] for e in a.edges()) == \
        sorted(e.to_dict()["source"] + e.to_dict()["target"] for e in b.edges())


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
    assert {"run:databricks/dbx:r1", "run:databricks/dbx2:r1", "model_version:fabric:M/1"} <= set(g.g.nodes)
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
