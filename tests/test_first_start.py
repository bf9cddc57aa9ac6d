"""A newcomer's first start: no config anywhere, so the app builds the demo (once) and shows it."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def test_first_start_builds_the_demo_then_reuses_it(monkeypatch, tmp_path):
    monkeypatch.delenv("WAYMARK_CONFIG", raising=False)
    monkeypatch.setenv("WAYMARK_DEMO_DIR", str(tmp_path / "demo"))
    monkeypatch.chdir(tmp_path)  # no ./governance.toml here
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert [s.label for s in at.status] == ["Demo workspace ready"], [c.value for c in at.code]
    assert (tmp_path / "demo" / ".ready").exists()
    assert at.title[0].value == "Overview"
    assert next(m.value for m in at.metric if m.label == "Sources") == "6"   # + dbx-uc, aml-churn,
    #                                                                                fabric-items, search-churn (stubs)

    # Second start: the demo is reused, not rebuilt.
    marker = (tmp_path / "demo" / ".ready").stat().st_mtime_ns
    again = AppTest.from_file(APP, default_timeout=60)
    again.run()
    assert not again.exception
    assert not again.status
    assert (tmp_path / "demo" / ".ready").stat().st_mtime_ns == marker


def test_interrupted_demo_build_is_not_used(monkeypatch, tmp_path):
    from demo.build import demo_config_path

    half = tmp_path / "demo"
    half.mkdir()
    (half / "governance.toml").write_text("[store]\n", encoding="utf-8")  # no .ready marker
    assert demo_config_path(half) is None
