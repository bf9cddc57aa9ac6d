"""Benchmark: Waymark's MLflow collector against raw `MlflowClient.search_runs` paging.

Fills a local `mlflow server` (sqlite backend, artifact proxy) with N runs (20 params, 10 metrics,
10 tags each) spread over E experiments, and M registered model versions (each backed by an
`MLmodel` artifact, with aliases), then times in the same process:

  (a) raw paging: `MlflowClient.search_runs` over every experiment id, ViewType.ALL, same page size
      as the collector, runs materialised (`list(page)`);
  (b) a full Waymark snapshot: `collectors.runner.snapshot_source(..., full=True)` into a fresh
      DuckDB file (collect + registry + MLmodel origins + DuckDB write);
  (c) an incremental snapshot after adding 1% new runs (`full=False`).

Prints figures and the ratios b/a (target <= 1.1) and c/b (target <= 0.1), then one JSON line
prefixed with `BENCH_JSON `.

Filled runs get start times spread over the 30 days before the fill (ending 2 h before it), the way
a real workspace accumulates them; the 1% new runs start "now". The collector's incremental pass
re-reads runs that started within its look-back of its watermark (the measured clock skew + 5 min,
at most `lookback_seconds`; a fixed hour before issue 15), so filling every run "now" would make (c)
re-read part of the fill; bench/scale.py measures that case (its "sweep" variant).

    . .venv/bin/activate
    python bench/collect_mlflow.py                      # 20k runs, 200 versions
    python bench/collect_mlflow.py --runs 2000 --versions 50
    python bench/collect_mlflow.py --workdir bench/out/w20k --keep   # fill once ...
    python bench/collect_mlflow.py --workdir bench/out/w20k --keep   # ... reuse the fill

A filled workdir holds `fill.json` (marker) and `mlflow.filled.db` (a pristine copy of the
backend); a later run with the same --runs/--versions/--experiments restores the copy and skips
the fill, so (c)'s extra runs never accumulate.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

# Siblings in bench/: the script's own folder is on sys.path (bench/scale.py adds it before importing
# MlflowServer and free_port from here).
from mlflow_fill import FILL_FORMAT, MARKER, PRISTINE, backup_sqlite, create_runs, fill, log
from mlflow_server import MlflowServer, free_port

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"


# ------------------------------------------------------------------------------------------------
# small helpers
def reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so each phase gets its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def file_mb(path: Path) -> float:
    total = 0
    for p in (path, Path(str(path) + ".wal")):
        if p.exists():
            total += p.stat().st_size
    return total / 1_048_576


# ------------------------------------------------------------------------------------------------
# timed phases
def raw_paging(url: str, exp_ids: list[str], page_size: int) -> tuple[float, int, int]:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    t0 = time.perf_counter()
    n = pages = 0
    for i in range(0, len(exp_ids), 50):  # same chunking as the collector (EXPERIMENT_CHUNK)
        token = None
        while True:
            page = client.search_runs(exp_ids[i:i + 50], "", run_view_type=ViewType.ALL,
                                      max_results=page_size, page_token=token)
            runs = list(page)
            n += len(runs)
            pages += 1
            token = page.token
            if not token:
                break
    return time.perf_counter() - t0, n, pages


class CpuMeter:
    """CPU seconds of this process (all threads) and of the server during a phase. Unlike wall time this
    barely moves when other jobs share the machine, so it is reported next to it."""

    def __init__(self, server: "MlflowServer"):
        self.server = server

    def __enter__(self):
        self.c0, self.s0 = time.process_time(), self.server.cpu_seconds()
        return self

    def __exit__(self, *exc):
        self.client = time.process_time() - self.c0
        self.srv = self.server.cpu_seconds() - self.s0

    @property
    def total(self) -> float:
        return self.client + self.srv


class PhaseTimer:
    """Wraps a few module functions to split a snapshot's wall time (measurement only)."""

    def __init__(self):
        self.t: dict[str, float] = {}
        self._undo = []

    def wrap(self, module, attr: str, key: str) -> None:
        orig = getattr(module, attr)

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                self.t[key] = self.t.get(key, 0.0) + time.perf_counter() - t0
        setattr(module, attr, timed)
        self._undo.append((module, attr, orig))

    def __enter__(self):
        import collectors.mlflow_source as ms
        import collectors.runner as runner
        import store.history as history
        import store.staging as staging

        self.wrap(runner, "commit_snapshot", "commit")
        self.wrap(staging, "frame_of", "commit.frames")
        self.wrap(history, "_apply", "commit.apply")
        self.wrap(ms.MlflowSource, "_runs", "collect.runs")
        self.wrap(ms.MlflowSource, "_registry", "collect.registry")
        self.wrap(ms.MlflowSource, "_read_origins", "collect.registry.origins")
        self.wrap(ms.MlflowSource, "_logged_models", "collect.logged_models")
        self.wrap(ms.MlflowSource, "_experiments", "collect.experiments")
        return self

    def __exit__(self, *exc):
        for module, attr, orig in reversed(self._undo):
            setattr(module, attr, orig)


def snapshot(store_path: Path, url: str, full: bool, profile: Path | None):
    from collectors.config import SourceConfig
    from collectors.runner import snapshot_source
    from store.db import Store

    source = SourceConfig(name="bench", kind="mlflow", platform="databricks", tracking_uri=url, registry_uri=url)
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
    with PhaseTimer() as pt:
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        outcome = snapshot_source(Store(store_path), source, full=full)
        if prof:
            prof.disable()
        seconds = time.perf_counter() - t0
    if prof:
        prof.dump_stats(str(profile))
    if not outcome.ok:
        raise RuntimeError(f"snapshot failed: {outcome.errors}")
    return seconds, outcome, {k: round(v, 3) for k, v in sorted(pt.t.items())}


# ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20000)
    p.add_argument("--versions", type=int, default=200, help="model versions to register (default 200)")
    p.add_argument("--experiments", type=int, default=20)
    p.add_argument("--page-size", type=int, default=1000,
                   help="runs/search page size for raw paging AND the collector (WAYMARK_RUN_PAGE_SIZE)")
    p.add_argument("--workdir", type=Path, help="default: a new temp dir under bench/out/")
    p.add_argument("--keep", action="store_true", help="keep the workdir (a given --workdir is always kept)")
    p.add_argument("--port", type=int, default=0, help="default: a free port")
    p.add_argument("--fill-workers", type=int, default=3,
                   help="client threads used to fill (default 3; the 1-worker server is the bottleneck)")
    p.add_argument("--new-fraction", type=float, default=0.01, help="new runs before (c) (default 0.01)")
    p.add_argument("--profile", action="store_true", help="also write cProfile stats of (b) and (c) to the workdir")
    args = p.parse_args(argv)

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"   # no "View run at" line per run
    import mlflow  # noqa: F401  (configures its loggers on import; quieten them afterwards)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    # The collector reads the page size at import time, so it is set before anything imports it.
    os.environ["WAYMARK_RUN_PAGE_SIZE"] = str(args.page_size)
    sys.path.insert(0, str(REPO))
    import collectors.mlflow_source as ms
    assert ms.RUN_PAGE_SIZE == args.page_size

    OUT.mkdir(parents=True, exist_ok=True)
    own_dir = args.workdir is None
    workdir = (Path(tempfile.mkdtemp(prefix="collect_mlflow-", dir=OUT)) if own_dir else args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(workdir, args.port or free_port())

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even when started with SIGINT ignored (`cmd &`)

    try:
        return run(args, workdir, server)
    finally:
        server.stop()
        log("mlflow server stopped (pid group killed)")
        if own_dir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"workdir kept: {workdir}")


def run(args, workdir: Path, server: MlflowServer) -> int:
    from mlflow import MlflowClient

    marker = workdir / MARKER
    want = {"format": FILL_FORMAT, "runs": args.runs, "versions": args.versions, "experiments": args.experiments}
    meta = json.loads(marker.read_text()) if marker.exists() else None
    reuse = (meta is not None and (workdir / PRISTINE).exists()
             and all(meta.get("requested_" + k if k == "versions" else k) == v for k, v in want.items()))
    if reuse:
        shutil.copyfile(workdir / PRISTINE, workdir / "mlflow.db")
        log(f"reusing the fill in {workdir} ({meta['runs']:,} runs, filled in {meta['fill_s']}s)")
    else:
        for stale in ("mlflow.db", PRISTINE, MARKER):
            (workdir / stale).unlink(missing_ok=True)
        shutil.rmtree(workdir / "artifacts", ignore_errors=True)

    log(f"starting mlflow server on {server.url} (workdir {workdir})")
    startup_s = server.start()
    log(f"server healthy after {startup_s:.1f}s")
    url = server.url

    if not reuse:
        log(f"filling {args.runs:,} runs x (20 params, 10 metrics, 10 tags) in {args.experiments} experiments, "
            f"{args.versions} model versions, {args.fill_workers} client threads")
        reset_peak_rss()
        meta = fill(url, args, workdir)
        meta["requested_versions"] = args.versions
        log(f"fill done: runs {meta['runs_fill_s']}s ({args.runs / meta['runs_fill_s']:,.0f} runs/s), "
            f"registry {meta['registry_fill_s']}s")
        backup_sqlite(workdir / "mlflow.db", workdir / PRISTINE)
        marker.write_text(json.dumps(meta, indent=2))

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    from mlflow.entities import ViewType
    exp_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, max_results=1000)]

    # (a) raw paging, run twice around (b) so cache warmth and drift hit both sides; the mean counts.
    results: dict = {"runs": args.runs, "versions": meta["versions"], "experiments": args.experiments,
                     "page_size": args.page_size, "fill": meta, "server_startup_s": round(startup_s, 1)}
    load_start = os.getloadavg()[0]
    reset_peak_rss()
    with CpuMeter(server) as cpu_a1:
        a1, n_a, pages = raw_paging(url, exp_ids, args.page_size)
    rss_a = peak_rss_mb()
    log(f"(a) raw search_runs paging #1: {n_a:,} runs in {pages} pages, {a1:.2f}s ({n_a / a1:,.0f} runs/s)")

    store_path = workdir / "waymark.duckdb"
    for f in (store_path, Path(str(store_path) + ".wal")):
        f.unlink(missing_ok=True)
    reset_peak_rss()
    with CpuMeter(server) as cpu_b:
        b, out_b, phases_b = snapshot(store_path, url, True, workdir / "full.prof" if args.profile else None)
    rss_b = peak_rss_mb()
    size_b = file_mb(store_path)
    log(f"(b) full snapshot: {b:.2f}s, mode={out_b.mode}, api_calls={out_b.api_calls}, phases={phases_b}")

    reset_peak_rss()
    with CpuMeter(server) as cpu_a2:
        a2, n_a2, _ = raw_paging(url, exp_ids, args.page_size)
    log(f"(a) raw search_runs paging #2: {n_a2:,} runs, {a2:.2f}s")
    a = (a1 + a2) / 2

    n_new = max(1, math.ceil(args.runs * args.new_fraction))
    log(f"adding {n_new:,} new runs ({args.new_fraction:.0%})")
    now_ms = int(time.time() * 1000)
    t0 = time.perf_counter()
    create_runs(client, exp_ids, range(args.runs, args.runs + n_new), [now_ms - 1000 * k for k in range(n_new)],
                args.fill_workers, "new")
    add_s = time.perf_counter() - t0
    reset_peak_rss()
    with CpuMeter(server) as cpu_c:
        c, out_c, phases_c = snapshot(store_path, url, False, workdir / "incremental.prof" if args.profile else None)
    rss_c = peak_rss_mb()
    size_c = file_mb(store_path)
    log(f"(c) incremental snapshot: {c:.2f}s, mode={out_c.mode}, api_calls={out_c.api_calls}, phases={phases_c}")

    ba, cb = b / a, c / b
    cpu_a = (cpu_a1.total + cpu_a2.total) / 2
    cpu = {"a": [round((cpu_a1.client + cpu_a2.client) / 2, 2), round((cpu_a1.srv + cpu_a2.srv) / 2, 2)],
           "b": [round(cpu_b.client, 2), round(cpu_b.srv, 2)], "c": [round(cpu_c.client, 2), round(cpu_c.srv, 2)]}
    results.update({
        "a_s": round(a, 3), "a_runs_s": [round(a1, 3), round(a2, 3)], "a_runs": n_a, "a_pages": pages,
        "a_runs_per_s": round(n_a / a), "a_peak_rss_mb": round(rss_a),
        "b_s": round(b, 3), "b_runs_per_s": round(n_a / b), "b_mode": out_b.mode, "b_api_calls": out_b.api_calls,
        "b_counts": out_b.counts, "b_phases_s": phases_b, "b_peak_rss_mb": round(rss_b), "duckdb_mb_after_b": round(size_b, 1),
        "new_runs": n_new, "new_runs_fill_s": round(add_s, 2),
        "c_s": round(c, 3), "c_mode": out_c.mode, "c_api_calls": out_c.api_calls, "c_counts": out_c.counts,
        "c_phases_s": phases_c, "c_peak_rss_mb": round(rss_c), "duckdb_mb_after_c": round(size_c, 1),
        "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "b_over_a": round(ba, 3), "c_over_b": round(cb, 3),
        "b_over_a_pass": ba <= 1.1, "c_over_b_pass": cb <= 0.1,
        "cpu_s_client_server": cpu, "cpu_b_over_a": round(cpu_b.total / cpu_a, 3),
        "cpu_c_over_b": round(cpu_c.total / cpu_b.total, 3),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "python": sys.version.split()[0], "loadavg_1m_at_start": round(load_start, 2),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
    })
    print_table(results)
    print("BENCH_JSON " + json.dumps(results, sort_keys=True), flush=True)
    return 0 if ba <= 1.1 and cb <= 0.1 else 1


def print_table(r: dict) -> None:
    fill = r["fill"]
    rows = [
        ("runs / versions / experiments", f"{r['a_runs']:,} / {r['versions']} / {r['experiments']}"),
        ("page size (raw and collector)", f"{r['page_size']}"),
        ("fill (runs; registry)", f"{fill['runs_fill_s']:.1f}s ({fill['runs'] / fill['runs_fill_s']:,.0f} runs/s); "
                                  f"{fill['registry_fill_s']:.1f}s  [{fill['fill_workers']} threads]"),
        ("(a) raw search_runs paging", f"{r['a_s']:.2f}s  ({r['a_runs_per_s']:,} runs/s; "
                                       f"{r['a_runs_s'][0]:.2f}s, {r['a_runs_s'][1]:.2f}s; {r['a_pages']} pages)"),
        ("(b) full snapshot", f"{r['b_s']:.2f}s  ({r['b_runs_per_s']:,} runs/s; {r['b_api_calls']} API calls)"),
        ("    phases", ", ".join(f"{k} {v:.2f}" for k, v in r["b_phases_s"].items())),
        ("(c) incremental (+%d runs)" % r["new_runs"], f"{r['c_s']:.2f}s  ({r['c_api_calls']} API calls)"),
        ("    phases", ", ".join(f"{k} {v:.2f}" for k, v in r["c_phases_s"].items())),
        ("CPU s client+server (a)/(b)/(c)", " / ".join(f"{c}+{s}" for c, s in (r["cpu_s_client_server"][k]
                                                                            for k in ("a", "b", "c")))),
        ("DuckDB file after (b) / (c)", f"{r['duckdb_mb_after_b']:.1f} MB / {r['duckdb_mb_after_c']:.1f} MB"),
        ("peak RSS (a) / (b) / (c)", f"{r['a_peak_rss_mb']} / {r['b_peak_rss_mb']} / {r['c_peak_rss_mb']} MB "
                                     f"(process max {r['process_max_rss_mb']} MB)"),
    ]
    for label, counts in (("(b) counts", r["b_counts"]), ("(c) counts", r["c_counts"])):
        rows.append((label, "; ".join(f"{t} " + "/".join(str(c[k]) for k in ("seen", "added", "changed", "removed"))
                                      for t, c in counts.items()) + "  [seen/added/changed/removed]"))
    rows += [
        ("b/a  (target <= 1.10)", f"{r['b_over_a']:.3f}  {'PASS' if r['b_over_a_pass'] else 'MISS'}"),
        ("c/b  (target <= 0.10)", f"{r['c_over_b']:.3f}  {'PASS' if r['c_over_b_pass'] else 'MISS'}"),
        ("CPU b/a, c/b (load-independent)", f"{r['cpu_b_over_a']:.3f}, {r['cpu_c_over_b']:.3f}"),
    ]
    w = max(len(k) for k, _ in rows)
    print("\n" + "=" * 100)
    print(f"Waymark MLflow collector benchmark — {r['date']} — {r['cpus']} CPUs, Python {r['python']}, "
          f"load avg {r['loadavg_1m_at_start']} -> {r['loadavg_1m_at_end']}")
    print("-" * 100)
    for k, v in rows:
        print(f"{k.ljust(w)}  {v}")
    print("=" * 100, flush=True)


if __name__ == "__main__":
    sys.exit(main())
