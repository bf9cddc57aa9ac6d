"""Collected text is data, never markup: every page, on a store whose names, tags, table names and
error texts carry Markdown images, `javascript:` links, HTML and Streamlit's own directives."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from tests.hostile_store import PAYLOADS, Hostile, plant, write_config
from ui.safe_text import WORD_JOINER, label, md

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = sorted(str(p.relative_to(Path(APP).parent)) for p in (Path(APP).parent / "pages").glob("*.py"))
PORT = 9  # nothing listens there; the browser test plants its own listener's port
# A payload as Streamlit would interpret it: unescaped (no backslash before it).
LIVE_MARKUP = [re.compile(r"(?<!\\)" + re.escape(m)) for m in
               ("](http://127.0.0.1", "](javascript:", "<img", ":red[red]", ":material/home:", "$x^2$", "**bold**")]
COMMONMARK = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def rendered_markdown(at: AppTest) -> list[tuple[str, str]]:
    """(element, text) for every string Streamlit renders as Markdown on the current page.
    Selectbox and multiselect options and data frame cells are plain text and not listed."""
    out: list[tuple[str, str]] = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success",
                 "toast"):
        out += [(kind, e.value) for e in getattr(at, kind)]
    for m in at.metric:
        out += [("metric label", m.label), ("metric value", m.value), ("metric help", m.proto.help)]
    for kind in ("button", "checkbox", "toggle", "selectbox", "multiselect", "text_input", "date_input",
                 "download_button"):
        for w in getattr(at, kind):
            out += [(f"{kind} label", w.label), (f"{kind} help", getattr(w.proto, "help", ""))]
    for r in at.radio:
        out += [("radio label", r.label)] + [("radio option", o) for o in r.options]
    for g in at.button_group:
        out += [("button_group option", o.content) for o in g.proto.options]
    out += [("expander label", e.label) for e in at.expander]
    out += [("tab label", t.label) for t in at.tabs]
    return [(k, v) for k, v in out if isinstance(v, str) and v]


def assert_no_live_markup(at: AppTest, page: str) -> None:
    for kind, text in rendered_markdown(at):
        live = [marker.pattern for marker in LIVE_MARKUP if marker.search(text)]
        assert not live, (page, kind, live, text[:300])
        html = COMMONMARK.render(text)
        assert "<img" not in html and "<a " not in html, (page, kind, html[:300])


@pytest.fixture(autouse=True)
def elsewhere(monkeypatch, tmp_path):
    """Render from a scratch folder: whatever a page might write by mistake stays out of the repo."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def hostile_workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    config = write_config(root)
    payloads = [p.format(port=PORT) for p in PAYLOADS]
    plant(root / "w.duckdb", Hostile(texts=payloads, numbers=[0.9, float("nan")], source=payloads[0]))
    return config, payloads


def test_escaping_keeps_the_text_and_drops_the_markup():
    """The helper itself, checked with a CommonMark renderer: the text survives, no element is made."""
    for raw in [p.format(port=PORT) for p in PAYLOADS] + [
            "# heading\n1. list\n- item\n> quote\n| a | b |\n|---|---|\n===", "a\\b `x` &lt;b&gt; ~~s~~ _i_",
            "see www.example.com or http://example.com", "fabric-churn v1.2 model@Production"]:
        html = COMMONMARK.render(md(raw))
        for tag in ("<img", "<a ", "<h1", "<ol", "<ul", "<blockquote", "<table", "<code", "<em", "<strong", "<del",
                    "<hr"):
            assert tag not in html, (raw, html)
        text = re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
        # The word joiners that stop GFM autolinks are invisible; the text is otherwise unchanged.
        assert text.replace("&amp;", "&").replace(WORD_JOINER, "").split() == raw.split()
    assert md(None) == "—" and md(float("nan")) == "—"
    assert "\u202e" not in md("abc\u202edef") and "\x00" not in md("a\x00b")
    assert "\n" not in label("two\nlines") and label("x" * 500).endswith("…")
    assert md("fabric-churn") == "fabric-churn"   # ordinary names stay readable
    assert WORD_JOINER + "http" in md("see http://example.com") and WORD_JOINER + "@" in md("a@b.co")


# Where each page shows collected text in Markdown (the rest goes to data frames and selectboxes,
# which Streamlit renders as plain text): the escaped payload must be there, so the check above
# looked at real occurrences. The sidebar's source names are checked on the Overview (AppTest drops
# the frame's sidebar after a page switch; the browser test sees it on every page).
SHOWN_ON = {"pages/overview.py": "error", "pages/snapshots.py": "error", "pages/audit_trace.py": "warning",
            "pages/lineage_explorer.py": "button label", "pages/promotion_gates.py": "error"}


@pytest.mark.parametrize("page", PAGES)
def test_collected_markup_is_shown_as_text_on_every_page(monkeypatch, hostile_workspace, page):
    config, payloads = hostile_workspace
    monkeypatch.setenv("WAYMARK_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert any(label(payloads[0], 80) in m.value for m in at.sidebar.markdown)
    if page != "pages/overview.py":
        at.switch_page(page).run()
    assert not at.exception, (page, [e.value for e in at.exception])
    assert_no_live_markup(at, page)
    if page in SHOWN_ON:
        shown = [text for kind, text in rendered_markdown(at) if kind == SHOWN_ON[page]]
        assert any(md(p) in text or label(p) in text for p in payloads for text in shown), (page, shown)
