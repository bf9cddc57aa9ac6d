"""AppTest of the Audit trace and Lineage explorer pages on the demo workspace."""
from __future__ import annotations

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.safe_text import md



APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_page(monkeypatch, config_path, page: str) -> AppTest:
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_audit_trace_shows_the_cross_platform_chain_and_downloads(monkeypatch, demo_copy):  # noqa: F811
    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/audit_trace.py")
    assert at.title[0].value == "Audit trace"
    at.selectbox(key="audit_alias").set_value("churn_model@Production · fabric").run()
    assert not at.exception, at.exception
    chain = at.dataframe[2].value
    assert "run gbm-tuned-depth (databricks)" in set(chain["upstream"])         # a name, not a node id
    assert "run:databricks:" in " ".join(chain["upstream_id"])                  # the id alongside
    assert {"registry", "artifact_origin"} <= set(chain["basis"])
    assert chain["snapshot_time"].notna().all()
    runs = at.dataframe[0].value
    assert runs["run_name"].tolist() == ["gbm-tuned-depth"]
    inputs = at.dataframe[1].value
    versions = inputs[inputs["level"] == "version"]
    assert set(zip(versions["name"], versions["version"])) == {("churn.gold.features", "14"), ("churn.gold.holdout", "5")}
    assert "churn.silver.customer_events" in set(inputs["name"])        # upstream, by UC table lineage
    assert len(at.get("download_button")) == 3      # Markdown, printable HTML, JSON
    assert len(at.get("vega_lite_chart")) == 1      # alias history timeline


def test_audit_trace_on_a_past_date_names_the_later_move(monkeypatch, demo_copy):  # noqa: F811
    import duckdb

    con = duckdb.connect(str(demo_copy / "waymark.duckdb"), read_only=True)
    first_move = con.execute("""SELECT s.finished_at FROM model_aliases a JOIN snapshots s ON s.snapshot_id = a.valid_from
                                WHERE a.name = 'churn-prediction-gbm' AND a.alias = 'Production' AND a.version = '1'
                                """).fetchall()[0][0]
    con.close()
    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/audit_trace.py")
    at.selectbox(key="audit_alias").set_value("churn-prediction-gbm@Production · databricks").run()
    at.text_input(key="audit_day").input(first_move.date().isoformat()).run()
    assert not at.exception, at.exception
    # The later move is information, not a gap.
    assert not any("moved" in w.value for w in at.warning)
    assert any("Production" in i.value for i in at.info)
    assert at.dataframe[0].value["run_name"].tolist() == ["gbm-baseline"]


def test_audit_trace_from_an_endpoint_shows_traffic_runs_and_shas(monkeypatch, demo_copy):  # noqa: F811
    from demo.build import git_sha

    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/audit_trace.py")
    at.radio(key="audit_start").set_value("Endpoint").run()
    labels = at.selectbox(key="audit_endpoint").options
    assert {"churn-scoring · databricks", "churn-aml · azureml"} <= set(labels)
    at.selectbox(key="audit_endpoint").set_value("churn-aml · azureml").run()
    assert not at.exception, at.exception
    serving = at.dataframe[0].value
    assert set(zip(serving["route"], serving["version"], serving["traffic_pct"])) == {("blue", "2", 90), ("green", "3", 10)}
    chain = at.dataframe[3].value
    assert chain["upstream_id"].iloc[0] == "model_version:azureml:churn-model/2"
    assert chain["upstream"].iloc[0] == "model version churn-model v2 (azureml)"
    runs = at.dataframe[1].value
    assert set(runs["git_sha"]) == {git_sha("tuned"), git_sha("retrain-nov")}
    assert len(at.get("download_button")) == 3
    assert len(at.get("vega_lite_chart")) == 0      # no alias history for an endpoint


RAW_NODE_ID = re.compile(r"\b(?:table|feature_table|dataset|experiment|run|commit|logged_model|model_version|alias|"
                         r"endpoint|vector_index|search_index):[A-Za-z0-9]")


def open_explorer(monkeypatch, config_path, **params: str) -> AppTest:
    """The explorer as a pasted link opens it: query parameters set before the page runs."""
    monkeypatch.setenv("WAYMARK_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    for name, value in params.items():
        at.query_params[name] = value
    at.switch_page("pages/lineage_explorer.py").run()
    assert not at.exception, at.exception
    return at


def drawn_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "nodes drawn" in c.value)


def test_lineage_explorer_draws_and_clicks_through(monkeypatch, demo_copy):  # noqa: F811
    at = open_page(monkeypatch, demo_copy / "governance.toml", "pages/lineage_explorer.py")
    assert at.title[0].value == "Lineage explorer"
    focus = at.selectbox(key="lineage_focus")
    assert focus.value.startswith("alias:")
    assert len(at.get("graphviz_chart")) == 1          # the static drawing stays, for print and packs
    neighbour = at.button[0]
    neighbour.click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lineage_focus").value == neighbour.key.split(":", 1)[1]
    assert at.query_params["node"] == at.selectbox(key="lineage_focus").value     # the link follows
    at.multiselect(key="lineage_types").set_value(["commit"]).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lineage_focus").value.startswith("commit:")
    edges = at.dataframe[-1].value
    assert set(edges["Link"]) >= {"code version"}
    json.dumps(edges.to_dict())   # plain data


def test_lineage_explorer_opens_the_node_a_link_names(monkeypatch, demo_copy):  # noqa: F811
    """`?node=…&depth=…` (an auditor's pasted link) opens that node at that depth, and the page keeps
    the link in step with its widgets."""
    run = "run:databricks:" + _run_id(demo_copy, "gbm-bad-seed")
    at = open_explorer(monkeypatch, demo_copy / "governance.toml", node=run, depth="2")
    assert at.selectbox(key="lineage_focus").value == run
    assert at.slider(key="lineage_depth").value == 2
    assert md("run gbm-bad-seed (databricks)") in [h.value for h in at.subheader]     # its detail, by name
    # Its gaps are listed with the node's name, as gaps (not conflicts).
    gaps = at.dataframe[0].value
    assert set(gaps["What"]) >= {"run deleted", "no inputs"} and set(gaps["Mark"]) == {"gap"}
    assert set(gaps["Node"]) == {"run gbm-bad-seed (databricks)"}
    at.radio(key="lineage_direction").set_value("upstream").run()
    at.select_slider(key="lineage_cap").set_value(60).run()
    assert not at.exception, at.exception
    assert dict(at.query_params) == {"node": run, "depth": "2", "dir": "upstream", "cap": "60"}
    # A link to a node that is not in the lineage says so and shows another node.
    at = open_explorer(monkeypatch, demo_copy / "governance.toml", node="run:databricks:no-such-run", depth="x")
    assert any("not in the lineage" in w.value for w in at.warning)
    assert at.selectbox(key="lineage_focus").value.startswith("alias:")
    assert at.slider(key="lineage_depth").value == 3              # a mangled depth falls back
    # The date is part of the link too: a day before the first snapshot shows that day, and says so.
    at = open_explorer(monkeypatch, demo_copy / "governance.toml", node=run, as_of="2020-01-31")
    assert str(at.date_input(key="lineage_day").value) == "2020-01-31"
    assert any("Nothing collected at that time" in i.value for i in at.info)


def test_lineage_explorer_caps_a_deep_neighbourhood(monkeypatch, demo_copy):  # noqa: F811
    """At depth 8 around a gold table, the cap keeps the nearest nodes and counts the rest."""
    node = "table:databricks:churn.gold.features"
    at = open_explorer(monkeypatch, demo_copy / "governance.toml", node=node, depth="8", cap="15")
    caption = drawn_caption(at)
    assert caption.startswith("15 nodes drawn;"), caption
    assert "more within 8 hops are left out" in caption
    at.select_slider(key="lineage_cap").set_value(120).run()
    assert not at.exception, at.exception
    wide = drawn_caption(at)
    assert "left out" not in wide and int(wide.split()[0]) > 15
    at.slider(key="lineage_depth").set_value(1).run()
    assert int(drawn_caption(at).split()[0]) < int(wide.split()[0])


def test_lineage_explorer_shows_a_legend_and_names_not_ids(monkeypatch, demo_copy):  # noqa: F811
    at = open_explorer(monkeypatch, demo_copy / "governance.toml", depth="4")
    legend = at.get("html")[0].proto.body
    for words in ("recorded field", "convention (a param or tag)", "conflict", "gap", "alias", "model", "run"):
        assert words in legend
    assert not [o for o in at.selectbox(key="lineage_focus").options if RAW_NODE_ID.search(o)]
    assert not [b.label for b in at.button if RAW_NODE_ID.search(b.label)]
    edges = at.dataframe[-1].value
    assert not edges.empty
    for column in ("From", "To"):
        assert not edges[column].str.contains(RAW_NODE_ID).any(), edges[column].tolist()
    texts = [e.value for e in (*at.caption, *at.subheader, *at.markdown, *at.warning)]
    assert not [t for t in texts if RAW_NODE_ID.search(t) or re.search(r"\bNone\b|\bnan\b", t)], texts


def _run_id(demo: Path, run_name: str) -> str:
    import duckdb

    con = duckdb.connect(str(demo / "waymark.duckdb"), read_only=True)
    try:
        return con.execute("SELECT run_id FROM runs WHERE run_name = ? LIMIT 1", [run_name]).fetchall()[0][0]
    finally:
        con.close()


# -- the graph view's pieces, on a small hand-built graph --------------------------------------------
def _fan_graph(width: int = 6):
    """table → `width` runs → one model version each → one alias each; a conflict on run 0."""
    from lineage.graph import Basis, EdgeKind, Evidence, Gap, GapKind, LineageGraph, NodeType

    g = LineageGraph()
    ev = Evidence("runs.inputs", 1, "dbx", Basis.RUN_INPUT)
    table = g.add_node("table:databricks:gold.features", NodeType.TABLE, "databricks", "gold.features")
    for i in range(width):
        run = g.add_node(f"run:databricks:r{i}", NodeType.RUN, "databricks", f"r{i}", run_id=f"{i:032x}",
                         run_name=f"train-{i}")
        mv = g.add_node(f"model_version:databricks:churn/{i}", NodeType.MODEL_VERSION, "databricks", "churn", str(i))
        alias = g.add_node(f"alias:databricks:churn@a{i}", NodeType.ALIAS, "databricks", "churn", str(i), alias=f"a{i}")
        g.add_edge(table, run, EdgeKind.DECLARED_INPUT_VERSION, ev._replace(basis=Basis.CONVENTION))
        g.add_edge(run, mv, EdgeKind.RUN_REGISTERED, ev._replace(basis=Basis.REGISTRY))
        g.add_edge(mv, alias, EdgeKind.ALIAS_OF, ev._replace(basis=Basis.REGISTRY))
    g.freeze()
    g.add_gap(Gap(GapKind.ORIGIN_CONFLICT, "run:databricks:r0", "registry run_id and MLmodel run_id disagree"))
    g.add_gap(Gap(GapKind.NO_GIT_SHA, "run:databricks:r1", "no git commit recorded"))
    return g


def test_the_cap_keeps_the_nearest_nodes_and_counts_the_rest():
    from lineage.explore import neighbourhood

    g = _fan_graph(6)                  # 19 nodes; from the table: 6 runs at 1 hop, 6 versions at 2, 6 aliases at 3
    full = neighbourhood(g, "table:databricks:gold.features", "downstream", 3)
    assert len(full.nodes) == 19 and full.hidden == {}
    capped = neighbourhood(g, "table:databricks:gold.features", "downstream", 3, cap=10)
    assert len(capped.nodes) == 10 and "table:databricks:gold.features" in capped.nodes
    assert max(capped.distance.values()) == 2 and all(capped.distance[f"run:databricks:r{i}"] == 1 for i in range(6))
    # Every left-out node is counted once, behind the drawn node it hangs from, on its side.
    assert capped.hidden_total == 9
    assert all(side == "downstream" for _, side in capped.hidden)
    # Kept: the table, 6 runs, versions 0-2. Versions 3-5 and their aliases hang from runs 3-5; aliases 0-2
    # from their versions.
    assert capped.hidden == {**{(f"run:databricks:r{i}", "downstream"): 2 for i in (3, 4, 5)},
                             **{(f"model_version:databricks:churn/{i}", "downstream"): 1 for i in (0, 1, 2)}}
    assert {e["source"] for e in capped.edges} | {e["target"] for e in capped.edges} <= capped.nodes
    up = neighbourhood(g, "alias:databricks:churn@a0", "upstream", 3, cap=2)
    assert up.hidden == {("model_version:databricks:churn/0", "upstream"): 2}


def test_graph_elements_carry_names_marks_and_stubs():
    from lineage.explore import neighbourhood
    from ui import lineage_graph_view as view

    g = _fan_graph(3)
    hood = neighbourhood(g, "table:databricks:gold.features", "downstream", 3, cap=5)
    els = view.elements(g, hood)
    by_id = {n["data"]["id"]: n["data"] for n in els["nodes"]}
    assert by_id["run:databricks:r0"]["name"] == "run train-0 (databricks)"
    conflict, gap = by_id["run:databricks:r0"], by_id["run:databricks:r1"]
    assert conflict["_border_color"] == view.ALERT and conflict["_border_style"] == "solid"
    assert gap["_border_color"] == view.ALERT and gap["_border_style"] == "dashed" and "no git sha" in gap["gaps"]
    assert by_id["run:databricks:r2"]["_border_color"] != view.ALERT
    assert by_id["table:databricks:gold.features"]["_size"] > by_id["run:databricks:r2"]["_size"]   # the focus
    stubs = [d for d in by_id.values() if d["label"] == view.MORE]
    assert sorted(d["name"] for d in stubs) == ["1 more", "2 more", "2 more"]
    assert {e["data"]["label"] for e in els["edges"]} == {"convention", "recorded", view.MORE}
    # A tap on a stub refocuses on the node it hangs from; other component values are ignored.
    stub = stubs[0]["id"]
    owner = stub.split(":", 2)[2]
    assert view.picked_node({"action": view.PICK_EVENT, "data": {"target_id": stub}}) == owner
    tap = {"action": view.PICK_EVENT, "data": {"target_id": "run:databricks:r2"}}
    assert view.picked_node(tap) == "run:databricks:r2"
    assert view.picked_node({"action": "remove", "data": {"node_ids": ["x"]}}) is None
    assert view.picked_node(None) is None


def test_url_state_parses_a_link_and_writes_only_what_differs():
    from datetime import date

    from ui.lineage_loaders import DEFAULTS, url_params, url_state

    state = url_state({"node": "alias:fabric:m@Production", "depth": "99", "dir": "upstream", "cap": "50",
                       "as_of": "2026-10-03"})
    assert state == {"node": "alias:fabric:m@Production", "depth": 8, "dir": "upstream", "cap": 60,
                     "as_of": date(2026, 10, 3)}
    assert url_state({"depth": "two", "dir": "sideways", "as_of": "03/10/2026"}) == {"node": None, **DEFAULTS,
                                                                                   "as_of": None}
    assert url_params("n", DEFAULTS["depth"], DEFAULTS["dir"], DEFAULTS["cap"], None) == {"node": "n"}
    assert url_params("n", 5, "upstream", 120, date(2026, 10, 3)) == {"node": "n", "depth": "5", "dir": "upstream",
                                                                     "cap": "120", "as_of": "2026-10-03"}
