"""Benchmark: time to content of each page, in AppTest and in headless Chromium (a report, not a test).

Targets (issue 13): AppTest under 1 s, browser under 2 s per page, on the embedded demo workspace.

    . .venv/bin/activate
    python bench/page_times.py                         # builds the demo into bench/out/demo once
    python bench/page_times.py --demo data/demo        # an already built demo
    python bench/page_times.py --repeat 5 --no-browser

AppTest: one app session; per page, `switch_page(page).run()` timed, first (cold caches) and the
median of the repeats (warm). Browser: `streamlit run` on a free 127.0.0.1 port, Debian's chromium
through Playwright; per page, from `goto` to the script run being over and every data frame drawn
on its canvas, first and median; "browser cpu" is the renderer main thread's busy time for that
document (CDP Performance.getMetrics TaskDuration), which a loaded machine distorts less than wall
time. Prints a table and a `BENCH_JSON ` line. `uptime`'s load average is printed with it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGES = {"overview": "pages/overview.py", "checklist": "pages/checklist.py", "audit_trace": "pages/audit_trace.py",
         "lineage_explorer": "pages/lineage_explorer.py", "promotion_gates": "pages/promotion_gates.py",
         "snapshots": "pages/snapshots.py", "endpoint_health": "pages/endpoint_health.py"}


def demo(path: Path | None) -> Path:
    if path is not None:
        return path.resolve()
    target = ROOT / "bench" / "out" / "demo"
    if not (target / "waymark.duckdb").exists():
        from demo.build import build

        build(target)
    return target


def apptest_times(config: Path, repeat: int) -> dict[str, tuple[float, float]]:
    from streamlit.testing.v1 import AppTest

    os.environ["WAYMARK_CONFIG"] = str(config)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    out = {}
    for name, script in PAGES.items():
        times = []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            at.switch_page(script).run()
            times.append(time.perf_counter() - start)
            if at.exception:
                raise SystemExit(f"{name}: {at.exception}")
        out[name] = (times[0], statistics.median(times[1:]))
    return out


def browser_times(config: Path, repeat: int, cpu: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Wall time per page (first, warm median); `cpu` receives the renderer's busy time likewise."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("Debian's chromium is not installed (--no-browser skips the browser)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"], cwd=ROOT,
                            env={**os.environ, "WAYMARK_CONFIG": str(config)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    out = {}
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.goto(url)
            page.wait_for_selector("[data-test-script-state='notRunning']", timeout=300_000)
            for name in PAGES:
                times, busy = [], []
                for _ in range(repeat + 1):
                    start = time.perf_counter()
                    page.goto(f"{url}/{'' if name == 'overview' else name}")
                    page.wait_for_selector("[data-testid='stApp']")
                    page.wait_for_selector("h1", timeout=120_000)
                    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=120_000)
                    frames = page.locator("[data-testid='stDataFrame']")
                    for i in range(frames.count()):
                        if frames.nth(i).is_visible():      # one in a closed expander draws nothing
                            frames.nth(i).locator("canvas").first.wait_for()
                    times.append(time.perf_counter() - start)
                    # The renderer's main-thread busy time for this document so far: what the page
                    # costs the browser, less sensitive than wall time to a machine under load.
                    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                    busy.append(metrics.get("TaskDuration", float("nan")))
                out[name] = (times[0], statistics.median(times[1:]))
                cpu[name] = (busy[0], statistics.median(busy[1:]))
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="a built demo folder (default: build bench/out/demo once)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    config = demo(args.demo) / "governance.toml"
    results = {"apptest": apptest_times(config, args.repeat)}
    print("apptest " + json.dumps({n: [round(a, 3), round(b, 3)] for n, (a, b) in results["apptest"].items()}),
          flush=True)
    if not args.no_browser:
        cpu: dict[str, tuple[float, float]] = {}
        results["browser"] = browser_times(config, args.repeat, cpu)
        results["browser cpu"] = cpu
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'page':<18}" + "".join(f"{k + ' first':>20}{k + ' warm':>19}" for k in results))
    for name in PAGES:
        print(f"{name:<18}" + "".join(f"{results[k][name][0]:>19.2f}s{results[k][name][1]:>18.2f}s" for k in results))
    print("BENCH_JSON " + json.dumps({k: {n: {"first_s": round(a, 3), "warm_s": round(b, 3)} for n, (a, b) in v.items()}
                                       for k, v in results.items()}))


if __name__ == "__main__":
    main()
