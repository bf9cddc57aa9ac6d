"""Odd data never crashes a page, a busy store is said to be busy, a missing log table is a message.

The property test fills a store (through the real snapshot writer) with hostile rows — None wherever
a value may be missing, NaN, ±inf and MLflow's stored infinity ±1.797e308, 100 KB strings,
right-to-left and control characters, Markdown, HTML and `javascript:` links — and renders every
page with AppTest: no exception, and no collected markup rendered as Markdown.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from store import Store
from store import db
from tests.hostile_store import PAYLOADS, Hostile, plant, write_config
from tests.test_markup_safety import APP, PAGES, assert_no_live_markup

ROOT = Path(__file__).resolve().parent.parent
HUGE = "x" * 100_000
TEXTS = st.one_of(
    st.sampled_from([p.format(port=9) for p in PAYLOADS] + [
        HUGE, "مرحبا بالعالم", "\u202egnp.exe", "a\x00b\x1bc", "", " ", "line\nbreak\r\nx", "💥" * 50,
        "javascript:alert(1)", "<script>alert(1)</script>", "None", "nan", "-", "1. x", "# x", "|a|b|"]),
    st.text(max_size=30),
)
NUMBERS = st.one_of(st.sampled_from([None, float("nan"), float("inf"), float("-inf"), 1.797e308, -1.797e308,
                                     0.0, -0.0, 1e-320]),
                    st.floats(allow_nan=True, allow_infinity=True))


@pytest.fixture(autouse=True)
def elsewhere(monkeypatch, tmp_path):
    """Render from a scratch folder: whatever a page might write by mistake stays out of the repo."""
    monkeypatch.chdir(tmp_path)


def render_every_page(monkeypatch, config: Path) -> None:
    monkeypatch.setenv("WAYMARK_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    for page in PAGES:
        if page != "pages/overview.py":
            at.switch_page(page).run()
        assert not at.exception, (page, [e.stack_trace for e in at.exception])
        assert_no_live_markup(at, page)


# Each page render costs about a second: two drawn stores plus one that holds every odd class at once.
@settings(max_examples=2, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=1, max_size=8), numbers=st.lists(NUMBERS, min_size=1, max_size=6),
       source=st.sampled_from(["src", "![x](http://127.0.0.1:9/s.png)", "مصدر", "s" * 300]))
@example(texts=[p.format(port=9) for p in PAYLOADS] + [HUGE, "مرحبا ‮gnp.exe", "a\x00b\x1b", ""],
         numbers=[None, float("nan"), float("inf"), float("-inf"), 1.797e308, -1.797e308],
         source="![x](http://127.0.0.1:9/s.png) שלום")
def test_no_page_crashes_on_hostile_rows(monkeypatch, texts, numbers, source):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_config(root)
        # Keys (model, alias, endpoint names) are NOT NULL in the store: an empty drawn text stays "".
        plant(root / "w.duckdb", Hostile(texts=texts, numbers=numbers, source=source))
        render_every_page(monkeypatch, config)


def test_overview_shows_a_run_without_a_name(monkeypatch, tmp_path):
    """An alias whose run has no name was a TypeError on the Overview (str + None)."""
    config = write_config(tmp_path)
    plant(tmp_path / "w.duckdb", Hostile(texts=["m", "Production", "x"], numbers=[0.5]))
    monkeypatch.setenv("WAYMARK_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.stack_trace for e in at.exception]
    aliases = at.dataframe[1].value
    assert aliases["run"].tolist() == ["run0 (no name)"]


# -- a store held by a collector --------------------------------------------------------------------
HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])     # read-write: DuckDB's exclusive file lock for this process
open(sys.argv[2], "w").write("holding")
time.sleep(120)
"""


@pytest.fixture
def held_store(tmp_path):
    config = write_config(tmp_path)
    plant(tmp_path / "w.duckdb", Hostile(texts=["m", "Production", "x"], numbers=[0.5]))
    marker = tmp_path / "holding"

    def hold() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "w.duckdb"), str(marker)])
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the lock holder did not start"
            time.sleep(0.05)
        return proc

    procs: list[subprocess.Popen] = []
    yield config, lambda: procs.append(hold()) or procs[-1]
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_page_whose_store_stays_locked_says_busy(monkeypatch, held_store):
    """The frame catches DuckDB's lock error from the page it runs. (AppTest reruns a page script on
    its own, without the frame, so a fresh AppTest opens the default page; the cached loaders are
    shared, and one of the Overview's is cleared so that the page, not the frame, meets the lock.)"""
    from ui import loaders

    config, hold = held_store
    monkeypatch.setattr(db, "READ_RETRY_SECONDS", 1.0)
    monkeypatch.setenv("WAYMARK_CONFIG", str(config))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()                                   # the frame and the Overview, read before the lock
    assert not at.exception and not at.warning
    hold()
    with pytest.raises(duckdb.IOException):    # not vacuous: the store really is locked for readers
        duckdb.connect(str(config.parent / "w.duckdb"), read_only=True)
    loaders.counts_by_source.clear()           # the Overview must read the store again
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.sidebar.markdown, "the sidebar came from the cache: the page, not the frame, met the lock"
    busy = [w.value for w in at.warning]
    assert busy == ["The store is busy: a collector has held it for more than 1 s; try again in a moment."]


def test_a_store_locked_at_first_open_says_busy(monkeypatch, held_store):
    config, hold = held_store
    monkeypatch.setattr(db, "READ_RETRY_SECONDS", 1.0)
    monkeypatch.setenv("WAYMARK_CONFIG", str(config))
    from ui import context

    context._schema_checked.clear()            # the frame checks the schema on first open
    hold()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(w.value.startswith("The store is busy") for w in at.warning)


# -- gates verify on a store without the review log ---------------------------------------------
def test_gates_verify_without_the_review_log_table_is_a_message(tmp_path):
    config = write_config(tmp_path)
    Store(tmp_path / "w.duckdb").migrate()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("DROP TABLE gate_review_log")
    con.close()
    for extra in ([], ["--json"]):
        done = subprocess.run([sys.executable, "-m", "gates", "verify", "--config", str(config)] + extra,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert "gate_review_log" in done.stdout + done.stderr and "cannot be" in done.stdout + done.stderr
