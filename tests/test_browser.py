"""What a person sees: the real app served by `streamlit run`, driven by headless Chromium.

Debian's chromium (installed by `make test`) with Playwright's `executable_path`; the screenshot
lands in tests/artifacts/ for a human to look at.
"""
from __future__ import annotations

import contextlib
import re
import http.server
import os
import shutil
import threading
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = pytest.mark.browser
if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the browser tests: install Debian's chromium (make test does)")
    pytest.skip("Debian chromium not installed (make test installs it)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _streamlit(config: Path):
    """`streamlit run app.py` on a free port for this config; yields its URL once healthy."""
    port = _free_port()
    env = {**os.environ, "WAYMARK_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not become healthy within 60 s")
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def served_app(demo_dir):  # noqa: F811
    with _streamlit(demo_dir / "governance.toml") as url:
        yield url


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _settle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the script run is over (Streamlit marks it on the app root), then for the data
    frames, which paint onto a canvas afterwards."""
    page.wait_for_selector("[data-testid='stApp']", timeout=30_000)
    page.wait_for_timeout(300)   # let a rerun triggered by the last action start
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=timeout_ms)
    if page.locator("[data-testid='stDataFrame']").count():
        page.wait_for_selector("[data-testid='stDataFrame'] canvas", timeout=30_000)
        page.wait_for_timeout(1000)


def test_overview_renders_with_data(served_app, page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(served_app)
    _settle(page)
    page.get_by_role("heading", name="Overview").wait_for(timeout=30_000)
    page.get_by_text("What each alias points at").wait_for()
    metrics = page.locator("[data-testid='stMetric']")
    assert metrics.count() >= 6
    assert "Runs" in page.inner_text("body") and "dbx-churn" in page.inner_text("body")
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)


def test_navigate_to_snapshots(served_app, page):
    page.goto(served_app)
    _settle(page)
    page.get_by_role("link", name="Snapshots").click()
    page.get_by_role("heading", name="Snapshots").wait_for(timeout=30_000)
    _settle(page)
    page.get_by_text("Report of one pass").wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "snapshots.png"), full_page=True)


@pytest.mark.parametrize("title", ["Checklist", "Audit trace", "Lineage explorer", "Promotion gates",
                                   "Endpoint health"])
def test_every_page_renders_in_the_browser(served_app, page, title):
    """What a person sees on each page: its heading, content, no exception box."""
    page.goto(served_app)
    _settle(page)
    page.get_by_role("link", name=title).click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
    _settle(page)
    page.screenshot(path=str(ARTIFACTS / f"{title.lower().replace(' ', '_')}.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0
    # Real content, not an empty frame: tables, charts or graphs beyond the heading.
    content = page.locator("[data-testid='stDataFrame'], [data-testid='stVegaLiteChart'], "
                           "[data-testid='stGraphVizChart'], [data-testid='stMetric']")
    assert content.count() >= 1


PAGE_TITLES = ["Overview", "Checklist", "Audit trace", "Lineage explorer", "Promotion gates", "Snapshots",
               "Endpoint health"]


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A listener on 127.0.0.1 that records every request a planted URL would cause."""
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"seen")

    def log_message(self, *args):
        pass


def test_urls_planted_in_metadata_are_never_fetched(page, tmp_path):
    """Model, run, tag, table, endpoint and source names and error texts carrying
    `![x](http://127.0.0.1:<port>/p.png)`, an <img> tag and a `javascript:` link: visiting every
    page makes no request to that port, and the text is shown as text."""
    from tests.hostile_store import IMAGE, PAYLOADS, Hostile, plant, write_config

    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    port = listener.server_address[1]
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    planted = IMAGE.format(port=port)
    config = write_config(tmp_path)
    plant(tmp_path / "w.duckdb", Hostile(texts=[p.format(port=port) for p in PAYLOADS], numbers=[0.9, float("nan")],
                                         source=planted))
    try:
        # Not vacuous: this browser does reach the listener when asked to.
        page.goto(f"http://127.0.0.1:{port}/control")
        page.wait_for_timeout(500)         # and its favicon request, which is not ours to count
        assert "/control" in _Recorder.seen
        _Recorder.seen.clear()
        with _streamlit(config) as url:
            page.goto(url)
            _settle(page)
            for title in PAGE_TITLES:
                page.get_by_role("link", name=title).click()
                page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
                _settle(page)
                page.wait_for_timeout(1500)   # images in Markdown load after the script run
                assert page.locator("[data-testid='stException']").count() == 0, title
                # The planted source name is in the sidebar on every page, as literal text (give or
                # take the invisible word joiners that stop autolinks).
                sidebar = page.locator("[data-testid='stSidebar']").inner_text().replace("\u2060", "")
                assert planted in sidebar, (title, sidebar[:500])
                assert page.locator("img[src*='127.0.0.1:%d']" % port).count() == 0, title
                assert page.locator("a[href^='javascript:']").count() == 0, title
                # Nor is it made a link (GFM autolinks are found after Markdown escapes are resolved).
                assert page.locator("a[href*='127.0.0.1:%d']" % port).count() == 0, title
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "planted_markup.png"), full_page=True)
        assert _Recorder.seen == [], _Recorder.seen
    finally:
        listener.shutdown()


# -- Lineage explorer: the interactive graph ---------------------------------------------------------
RAW_NODE_ID = re.compile(r"\b(?:table|feature_table|dataset|experiment|run|commit|logged_model|model_version|alias|"
                         r"endpoint|vector_index|search_index):[A-Za-z0-9]")


def _graph_frame(page):
    page.wait_for_selector("iframe[title*='streamlit_cytoscape']", timeout=30_000)
    frame = next(f for f in page.frames if "streamlit_cytoscape" in f.url)
    frame.wait_for_function("() => { const c = document.getElementById('cy'); return c && c._cyreg && "
                            "c._cyreg.cy && c._cyreg.cy.nodes().length > 0 }", timeout=30_000)
    return frame


def test_lineage_explorer_draws_a_usable_graph_offline(served_app, page, demo_dir):
    """1440×900: a link with ?node= opens that node; the graph draws left to right with human labels
    and a legend; no None/nan/raw node id in the visible text; a tap on a node makes it the focus
    (and the link follows); no request leaves 127.0.0.1."""
    wide = page.context.browser.new_page(viewport={"width": 1440, "height": 900})
    outside: list[str] = []
    wide.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")) else None)
    try:
        wide.goto(served_app)          # the router first: a fresh server resolves deep links after it
        _settle(wide)
        run_id = "run:databricks:"
        wide.goto(f"{served_app}/lineage_explorer?depth=4")
        _settle(wide)
        frame = _graph_frame(wide)
        nodes = frame.evaluate("() => document.getElementById('cy')._cyreg.cy.nodes().map(n => n.data())")
        run_id = next(n["id"] for n in nodes if n["id"].startswith(run_id))
        wide.goto(f"{served_app}/lineage_explorer?node={run_id}&depth=4")
        _settle(wide)
        wide.get_by_role("heading", name="Lineage explorer").wait_for(timeout=30_000)
        frame = _graph_frame(wide)
        drawn = frame.evaluate("""() => { const cy = document.getElementById('cy')._cyreg.cy;
            return cy.nodes().map(n => ({id: n.id(), name: n.data('name'), label: n.style('label'),
                                         x: n.position('x'), size: n.data('_size'),
                                         pos: n.renderedPosition(), vis: n.visible()})) }""")
        focus = next(n for n in drawn if n["id"] == run_id)
        assert focus["size"] > min(n["size"] for n in drawn)           # the linked node is the focus
        assert all(n["label"] == n["name"] and not RAW_NODE_ID.search(n["label"]) for n in drawn)
        # Left to right: whatever feeds the run is drawn left of it, what it produced right of it.
        xs = {n["id"]: n["x"] for n in drawn}
        assert all(xs[i] < focus["x"] for i in xs if i.startswith(("dataset:", "commit:")))
        assert all(xs[i] > focus["x"] for i in xs if i.startswith(("model_version:", "alias:")))
        legend = wide.locator("[data-testid='lineage-legend']")
        assert legend.is_visible()
        for word in ("run", "model", "alias", "recorded field", "convention", "conflict", "gap"):
            assert word in legend.inner_text()
        visible = wide.locator("[data-testid='stMain']").inner_text()
        assert not re.search(r"\bNone\b|\bnan\b|\bNaT\b", visible), visible[:2000]
        assert not RAW_NODE_ID.search(visible), RAW_NODE_ID.search(visible)
        assert wide.locator("[data-testid='stException']").count() == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        wide.screenshot(path=str(ARTIFACTS / "lineage_explorer_graph.png"))

        # A tap on a model version drawn right of the run makes it the focus, and the link follows.
        target = next(n for n in drawn if n["id"].startswith("model_version:") and n["vis"])
        wide.locator("iframe[title*='streamlit_cytoscape']").scroll_into_view_if_needed()
        box = wide.locator("iframe[title*='streamlit_cytoscape']").bounding_box()
        wide.mouse.click(box["x"] + target["pos"]["x"], box["y"] + target["pos"]["y"])
        wide.wait_for_function("(id) => decodeURIComponent(location.search).includes('node=' + id)",
                               arg=target["id"], timeout=30_000)
        _settle(wide)
        wide.get_by_role("heading", name=target["name"]).wait_for(timeout=30_000)   # its detail heading
        frame = _graph_frame(wide)
        sizes = frame.evaluate("() => Object.fromEntries(document.getElementById('cy')._cyreg.cy.nodes()"
                               ".map(n => [n.id(), n.data('_size')]))")
        assert sizes[target["id"]] == max(sizes.values())

        # A run with gaps (deleted, no inputs) wears a dashed red border, and they are listed.
        import duckdb

        con = duckdb.connect(str(demo_dir / "waymark.duckdb"), read_only=True)
        bad = con.execute("SELECT run_id FROM runs WHERE run_name = 'gbm-bad-seed' LIMIT 1").fetchall()[0][0]
        con.close()
        wide.goto(f"{served_app}/lineage_explorer?node=run:databricks:{bad}")
        _settle(wide)
        frame = _graph_frame(wide)
        border = frame.evaluate("(id) => { const n = document.getElementById('cy')._cyreg.cy.getElementById(id);"
                                "return [n.style('border-style'), n.style('border-color'), n.data('gaps')] }",
                                f"run:databricks:{bad}")
        assert border[0] == "dashed" and border[1] == "rgb(220,38,38)" and "run deleted" in border[2], border
        wide.get_by_text("Gaps and conflicts in view").wait_for()
        assert outside == [], outside
    finally:
        wide.close()


# -- issue 13: what a person sees on Overview, Checklist, Audit trace, Snapshots, Endpoint health ----
MY_PAGES = {"": "Overview", "checklist": "Migration checklist", "audit_trace": "Audit trace",
            "snapshots": "Snapshots", "endpoint_health": "Endpoint health"}
DECISIVE = {"": ["Source", "State", "Model", "Alias", "Produced by run", "Git SHA"],
            "checklist": ["Asset", "Status", "Owner", "Due", "Step", "Progress"],
            "audit_trace": ["Run", "Git SHA", "Data", "Data version"],
            "endpoint_health": ["Endpoint", "Status", "Why"]}


def _visible_headers(page, wanted: list[str]) -> list[str]:
    """Headers the grids draw in view (glide's accessible table), once `wanted` show or after 30 s (load)."""
    js = """() => [...document.querySelectorAll("[data-testid='stDataFrame'] th")].map(th => th.innerText.trim())"""
    with contextlib.suppress(Exception):   # playwright's TimeoutError: the caller's assert judges
        page.wait_for_function(f"(w) => w.every(c => ({js})().includes(c))", arg=wanted, timeout=30_000)
    return page.evaluate(js)


@pytest.fixture()
def wide_page(page):
    page.set_viewport_size({"width": 1440, "height": 900})
    yield page
    page.set_viewport_size({"width": 1400, "height": 1000})


@pytest.mark.parametrize("slug", list(MY_PAGES))
def test_pages_read_as_words_with_decisive_columns_in_view(served_app, wide_page, slug):
    page = wide_page
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
        ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else None)
    page.goto(f"{served_app}/{slug}")
    _settle(page)
    page.get_by_role("heading", name=MY_PAGES[slug]).first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stException']").count() == 0
    main = page.locator("[data-testid='stMain']").inner_text()
    cells = " ".join(page.locator("[data-testid='stDataFrame'] td").all_inner_texts())
    for word in ("None", "nan", "NaT"):
        assert f" {word} " not in f" {main} {cells} ".replace("\n", " "), word
    for raw in ("run:databricks:", "model_version:", "alias:databricks", "endpoint:"):
        assert raw not in cells.split("node id")[0] or slug == "audit_trace", raw
    headers = _visible_headers(page, DECISIVE.get(slug, []))
    for column in DECISIVE.get(slug, []):
        assert column in headers, (column, headers)
    assert outside == [], outside         # fonts and icons are bundled: nothing leaves the machine


def test_overview_alias_row_opens_its_audit_trace(served_app, wide_page):
    """The Overview's link for an alias (tested as a value in test_pages) opens the Audit trace in
    that state; a date in the URL or typed and confirmed with Enter applies and lands in the URL."""
    from datetime import datetime, timezone

    page = wide_page
    page.goto(f"{served_app}/audit_trace?source=fabric-churn&model=churn_model&alias=Production&as_of=2020-01-15")
    _settle(page)
    page.get_by_role("heading", name="Audit trace").wait_for(timeout=30_000)
    box = page.get_by_role("textbox", name="As of (YYYY-MM-DD)")
    assert box.input_value() == "2020-01-15"
    main = page.locator("[data-testid='stMain']").inner_text().replace("\u2060", "")
    assert "churn_model@Production did not exist on 2020-01-15; first seen 20" in main, main[:800]
    assert "usage" not in main
    today = datetime.now(timezone.utc).date().isoformat()
    box.fill(today)
    box.press("Enter")
    _settle(page)
    assert f"as_of={today}" in page.url and "alias=Production" in page.url
    main = page.locator("[data-testid='stMain']").inner_text()
    assert "Runs and git SHAs" in main and "did not exist" not in main
    width = page.get_by_role("textbox", name="As of (YYYY-MM-DD)").bounding_box()["width"]
    assert width >= 120, width          # a full date fits


def test_overview_tiles_wrap_in_twos_on_a_phone(served_app, page):
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.goto(served_app)
        _settle(page)
        boxes = [m.bounding_box() for m in page.locator("[data-testid='stMetric']").all()]
        rows: dict[int, int] = {}
        for b in boxes:
            rows[round(b["y"])] = rows.get(round(b["y"]), 0) + 1
        assert max(rows.values()) == 2, rows
        assert all(b["x"] + b["width"] <= 390 for b in boxes)
        # The tables keep their first (pinned) column in view: the source, the model and alias.
        headers = _visible_headers(page, ["Source", "State", "Model"])
        assert "Source" in headers and "State" in headers and "Model" in headers, headers
        page.screenshot(path=str(ARTIFACTS / "overview_390.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_first_start_hides_the_pages_and_the_bar_moves_at_once(page, tmp_path, monkeypatch):
    """No config: while the demo builds, the page list is hidden and the bar moves within seconds."""
    monkeypatch.setenv("WAYMARK_DEMO_DIR", str(tmp_path / "demo"))
    assert not (ROOT / "governance.toml").exists()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "WAYMARK_CONFIG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        page.goto(url)
        bar = page.locator("[data-testid='stProgress'] [role='progressbar']")
        bar.wait_for(timeout=30_000)
        first = float(bar.get_attribute("aria-valuenow") or 0)
        page.wait_for_timeout(4000)
        later = float(bar.get_attribute("aria-valuenow") or 0)
        assert first >= 1 and later > first, (first, later)
        assert page.locator("[data-testid='stSidebarNav']").is_hidden()
        assert "Building the demo workspace" in page.inner_text("body")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def test_endpoint_health_charts_fit_their_columns_with_a_matching_caption(served_app, wide_page):
    page = wide_page
    page.goto(f"{served_app}/endpoint_health?source=aml-churn&endpoint=churn-aml&hours=6")
    _settle(page)
    page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=30_000)
    assert "The last 6 h of data" in page.locator("[data-testid='stMain']").inner_text()
    fits = page.evaluate("""() => [...document.querySelectorAll("[data-testid='stVegaLiteChart']")].map(c => {
        const col = c.closest("[data-testid='stColumn']"); const a = c.getBoundingClientRect();
        const b = col.getBoundingClientRect(); return a.left >= b.left - 1 && a.right <= b.right + 1; })""")
    assert fits and all(fits), fits
    # A legend per chart, under it, naming the deployments.
    assert page.locator("[data-testid='stVegaLiteChart'] .role-legend").count() == len(fits)


def test_printable_evidence_pack_prints_to_clean_pages(demo_dir, page, tmp_path):  # noqa: F811
    """The evidence pack's printable HTML in the browser's print view: no sideways overflow,
    every table there, the stamp on the first page, and nothing fetched from anywhere."""
    from ui import lineage_loaders as ll
    from ui.loaders import store_stamp

    store = demo_dir / "waymark.duckdb"
    graph = ll.lineage_graph(str(store), store_stamp(store), None)
    choices = ll.alias_choices(graph)
    node = choices.loc[choices["label"] == "churn_model@Production · fabric", "node_id"].iloc[0]
    answer, _ = ll.audit_trace(str(store), store_stamp(store), node, None)
    _, _, html = ll.evidence_pack(answer, "auditor@example.com")
    target = tmp_path / "pack.html"
    target.write_text(html, encoding="utf-8")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 794, "height": 1123})            # A4 at 96 dpi
    try:
        page.emulate_media(media="print")
        page.goto(target.as_uri())
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
        text = page.inner_text("body").replace("\u2060", "")   # the word joiner that stops autolinks
        assert "Generated by: auditor@example.com" in text and "sha256" in text
        assert page.locator("table").count() >= 4
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF")
        assert [u for u in requests if not u.startswith("file://")] == []
    finally:
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_a_link_pasted_on_a_fresh_server_opens_in_the_app_frame(demo_dir, page):
    """The first request to a just-started server is a deep link: Streamlit's pages/ folder mode would
    run the page script alone (no sign-in, no sidebar, the folder's page list). It opens in app.py's
    frame instead, with the state the link carries; the Snapshots page's pass is in its link too."""
    with _streamlit(demo_dir / "governance.toml") as url:
        page.goto(f"{url}/audit_trace?source=fabric-churn&model=churn_model&alias=Production&as_of=2020-01-15")
        _settle(page)
        page.get_by_role("heading", name="Audit trace").wait_for(timeout=30_000)
        sidebar = page.locator("[data-testid='stSidebar']").inner_text()
        assert "Demo workspace" in sidebar or "Config:" in sidebar, sidebar[:500]     # app.py's sidebar ran
        assert "last good" in sidebar
        nav = [t.strip() for t in page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]
        assert "Promotion gates" in " ".join(nav) and not any(t.endswith("app") for t in nav), nav
        assert page.get_by_role("textbox", name="As of (YYYY-MM-DD)").input_value() == "2020-01-15"
        assert "churn_model@Production did not exist on 2020-01-15" in page.locator(
            "[data-testid='stMain']").inner_text().replace("\u2060", "")
        page.goto(f"{url}/snapshots?snapshot=2")
        _settle(page)
        page.get_by_text("Report of one pass").wait_for(timeout=30_000)
        chosen = page.locator("[data-testid='stSelectbox'] input[aria-label='Snapshot']").input_value()
        assert chosen.startswith("#2 ·"), chosen
        assert page.locator("[data-testid='stException']").count() == 0


def test_gate_evidence_is_readable_in_full(served_app, wide_page):
    """A table cell cuts a long evidence text; the failing gate's evidence is also written out,
    wrapped within the page and visible without opening anything."""
    page = wide_page
    page.goto(f"{served_app}/promotion_gates?source=dbx-churn&model=churn-prediction-gbm&version=3")
    _settle(page)
    page.get_by_role("heading", name="Promotion gates").wait_for(timeout=30_000)
    item = page.locator("[data-testid='stExpander'] li").filter(
        has_text="runs.metrics['roc_auc'] of run gbm-new-features").first
    item.wait_for(timeout=30_000)
    assert item.is_visible()
    text = item.inner_text().replace("\u2060", "")
    assert "threshold:roc_auc: 0.791 (required ≥ 0.8)" in text and "blocks" in text, text
    fits = item.evaluate("""e => { const m = document.querySelector("[data-testid='stMain'] .block-container")
        || document.querySelector("[data-testid='stMain']"); const a = e.getBoundingClientRect(),
        b = m.getBoundingClientRect(); return e.scrollWidth <= e.clientWidth + 1 && a.right <= b.right + 1; }""")
    assert fits
    assert page.locator("[data-testid='stException']").count() == 0
