"""Every pair of fields that can name what produced a model version is compared: agreement is
corroboration listed on the edge's evidence, disagreement an `origin_conflict` naming both."""
from __future__ import annotations

from lineage.build import build_graph
from lineage.graph import EdgeKind, GapKind
from tests.test_lineage_build import make_rows, run, version


def origin(source, name, v, run_id=None, model_id=None):
    return {"source": source, "name": name, "version": str(v), "read_status": "ok", "origin_run_id": run_id,
            "origin_model_id": model_id}


def logged(source, model_id, run_id):
    return {"source": source, "model_id": model_id, "experiment_id": "1", "name": "model", "source_run_id": run_id}


def conflicts(g, node):
    return [x for x in g.gaps.get(node, []) if x.kind == GapKind.ORIGIN_CONFLICT]


def fields(g, s, t):
    e = g.edge_dict(s, t)["evidence"]
    return [e["field"]] + [c["field"] for c in e.get("corroborated_by", [])]


def test_registry_run_and_logged_model_source_run_agree_or_conflict():
    rows = make_rows(runs=[run("dbx", "r1"), run("dbx", "r2")],
                     logged_models=[logged("dbx", "m-1", "r1"), logged("dbx", "m-2", "r2")],
                     model_versions=[version("dbx", "A", 1, run_id="r1", model_id="m-1"),
                                     version("dbx", "A", 2, run_id="r1", model_id="m-2")])
    g = build_graph(rows)
    assert fields(g, "run:databricks:r1", "model_version:databricks:A/1") == [
        "model_versions.run_id", "logged_models.source_run_id of m-1 (model_versions.model_id)"]
    assert not conflicts(g, "model_version:databricks:A/1")
    (gap,) = conflicts(g, "model_version:databricks:A/2")
    assert set(gap.candidates) == {"r1", "r2"}
    assert "model_versions.run_id = r1" in gap.message and "logged_models.source_run_id of m-2" in gap.message


def test_registry_model_id_and_mlmodel_model_id_agree_or_conflict():
    rows = make_rows(runs=[run("dbx", "r1")],
                     logged_models=[logged("dbx", "m-1", "r1"), logged("dbx", "m-9", "r1")],
                     model_versions=[version("dbx", "A", 1, model_id="m-1"), version("dbx", "A", 2, model_id="m-1")],
                     model_origins=[origin("dbx", "A", 1, "r1", "m-1"), origin("dbx", "A", 2, "r1", "m-9")])
    g = build_graph(rows)
    assert fields(g, "logged_model:databricks:m-1", "model_version:databricks:A/1") == [
        "model_versions.source (models:/<id>)", "model_origins.origin_model_id (MLmodel model_id)"]
    assert not conflicts(g, "model_version:databricks:A/1")
    (gap,) = conflicts(g, "model_version:databricks:A/2")
    assert set(gap.candidates) == {"m-1", "m-9"} and "model_versions.model_id = m-1" in gap.message


def test_migrated_from_tag_is_corroborated_or_contradicted_by_the_copys_origin():
    rows = make_rows(runs=[run("dbx", "r1"), run("dbx", "r2")],
                     model_versions=[version("dbx", "A", 1, run_id="r1"),
                                     version("fab", "B", 1, tag="databricks:A/1"),
                                     version("fab", "B", 2, tag="databricks:A/1")],
                     model_origins=[origin("fab", "B", 1, "r1"), origin("fab", "B", 2, "r2")])
    g = build_graph(rows)
    src = "model_version:databricks:A/1"
    good = g.edge_dict(src, "model_version:fabric:B/1")
    assert good["kind"] == EdgeKind.MIGRATED_FROM.value
    assert [c["basis"] for c in good["evidence"]["corroborated_by"]] == ["artifact_origin"]
    assert not conflicts(g, "model_version:fabric:B/1")
    (gap,) = conflicts(g, "model_version:fabric:B/2")
    assert set(gap.candidates) == {"run:databricks:r1", "run:databricks:r2"}
    assert "model_versions.run_id" in gap.message and "MLmodel run_id" in gap.message
    # Both links stay drawn: the tag's and the MLmodel's.
    assert set(g.predecessors("model_version:fabric:B/2")) == {src, "run:databricks:r2"}
