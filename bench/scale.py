"""Scale bench (issue 15 item 4): the MLflow collector at 20k / 100k (/ 500k) runs, printed as a table.

Per size, an MLflow sqlite store is filled directly with SQL (mlflow 3.17.2's schema: experiments,
runs, params, metrics, latest_metrics, tags, registered_models, model_versions): every run has 20
params, 10 metrics and 10 tags, finished, start times spread over 30 days; one model version per 10
runs (10 versions per registered model, all pointing at one real `MLmodel`). It is served with
`mlflow server` (bench/collect_mlflow.py's `MlflowServer`, killed with its process group at the end).
Each measured step runs in its own Python process; its peak RSS is the larger of that process's
`VmHWM` and `RUSAGE_CHILDREN`'s `ru_maxrss` (a remote MLflow source is collected in a child process,
so a full pass's peak is the larger of the collecting and the committing process, not their sum).
`wait4`'s figure is not used: a forked child inherits the parent's high-water mark until exec.

  raw        `MlflowClient.search_runs` paging over all experiments, 1000 per page, runs dropped per page;
             run before the full pass and after the incremental one, the mean is the baseline
  full       `snapshot_source(..., full=True)` into a fresh DuckDB store
  incr 1%    1% new runs (started now) inserted, then `snapshot_source(..., full=False)`
  lineage    `lineage.load.load_graph(store)` build time, then `trace` p50 over 200 model versions
  30 passes  29 more incremental passes, each after inserting ~1% new runs: DuckDB size on disk
  ducklake   the same full pass into a fresh DuckLake store (catalog: a throwaway PostgreSQL on 127.0.0.1,
             tests/postgres_server.py; data: a local folder)
  sweep      a second store where 70% of the runs started in the hour before the fill: full, then
             1% new runs, then incremental

Targets: full/raw <= 1.1 on time; full peak RSS <= 2x raw's; incr/full <= 0.1 in both variants;
lineage build at 100k runs < 10 s; 30 snapshots of 100k runs < 1 GB.

    /work/main/.venv/bin/python bench/scale.py                     # 20k and 100k
    /work/main/.venv/bin/python bench/scale.py --sizes 20000       # 20k only
    /work/main/.venv/bin/python bench/scale.py --sizes 20000 100000 500000   # 500k: slow on 2 cores
    /work/main/.venv/bin/python bench/scale.py --sizes 500000 --steps full   # the full pass only: its
                                            # time and peak RSS, no raw baseline (about an hour less)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out" / "scale"
DAY_MS = 86_400_000
EXPERIMENTS = 20
VERSIONS_PER_MODEL = 10
MLMODEL = """artifact_path: model
flavors:
  python_function: {loader_module: mlflow.sklearn, model_path: model.pkl, python_version: 3.11.7}
mlflow_version: 3.17.2
model_uuid: 0123456789abcdef0123456789abcdef
utc_time_created: '2026-11-01 00:00:00.000000'
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- filling ---------------------------------------------------------------------------------------
def empty_store(path: Path) -> None:
    """An empty, migrated MLflow sqlite store (MLflow creates its tables on first use)."""
    from mlflow import MlflowClient

    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        MlflowClient(f"sqlite:///{path}").search_experiments()
    finally:
        os.chdir(cwd)


def insert_runs(con: sqlite3.Connection, workdir: Path, start_times: list[int], first_index: int,
                seed: int) -> list[str]:
    """Finished runs with 20 params, 10 metrics (and latest_metrics), 10 tags each; returns run ids."""
    rng = random.Random(seed)
    runs, params, metrics, latest, tags = [], [], [], [], []
    ids = []
    for n, start in enumerate(start_times):
        i = first_index + n
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        ids.append(rid)
        exp = 1 + i % EXPERIMENTS
        end = start + 60_000
        runs.append((rid, f"run-{i:07d}", "JOB", f"/Repos/team{i % 5}/train.py", "", f"user{i % 17}", "FINISHED",
                     start, end, "", "active", f"{workdir}/artifacts/{exp}/{rid}/artifacts", exp))
        params += [(f"param_{k:02d}", f"{rng.random():.6f}", rid) for k in range(19)]
        params.append(("git_sha", f"{rng.getrandbits(160):040x}", rid))
        for k in range(10):
            v = rng.random()
            metrics.append((f"metric_{k}", v, end, rid, 0, 0))
            latest.append((f"metric_{k}", v, end, 0, 0, rid))
        tags += [("mlflow.runName", f"run-{i:07d}", rid), ("mlflow.user", f"user{i % 17}", rid),
                 ("mlflow.source.name", f"/Repos/team{i % 5}/train.py", rid), ("mlflow.source.type", "JOB", rid),
                 ("mlflow.source.git.commit", f"{rng.getrandbits(160):040x}", rid),
                 ("mlflow.databricks.jobRunID", str(100000 + i), rid), ("team", f"team{i % 5}", rid),
                 ("stage", ("dev", "staging", "prod")[i % 3], rid), ("dataset", f"main.features.t{i % 40}", rid),
                 ("note", f"benchmark run {i}", rid)]
    con.executemany("""INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status,
                       start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""", runs)
    con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
    con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,?)", metrics)
    con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,?,?)",
                    latest)
    con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    return ids


def insert_registry(con: sqlite3.Connection, workdir: Path, run_ids: list[str], created: int) -> None:
    """One model version per run id, VERSIONS_PER_MODEL per registered model, all pointing at the one
    `MLmodel` in workdir/model."""
    models = [(f"model-{m:05d}", created, created, "") for m in range(len(run_ids) // VERSIONS_PER_MODEL)]
    con.executemany("""INSERT INTO registered_models (name, creation_time, last_updated_time, description)
                       VALUES (?,?,?,?)""", models)
    con.executemany("""INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
                       user_id, current_stage, source, run_id, status, status_message, run_link, storage_location)
                       VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                    [(models[k // VERSIONS_PER_MODEL][0], 1 + k % VERSIONS_PER_MODEL, created, created, "",
                      "bench", "None", str(workdir / "model"), run_ids[k], "READY", "", "", str(workdir / "model"))
                     for k in range(len(models) * VERSIONS_PER_MODEL)])


def fill(workdir: Path, runs: int, sweep: bool, seed: int = 7) -> Path:
    """workdir/mlflow.db filled; a pristine copy is kept and reused while the shape is the same."""
    db, pristine, marker = workdir / "mlflow.db", workdir / "mlflow.filled.db", workdir / "fill.json"
    shape = {"runs": runs, "sweep": sweep, "format": 1}
    # A sweep fill is never reused: its runs are "started in the last hour" only at fill time.
    if not sweep and pristine.exists() and marker.exists() and json.loads(marker.read_text()) == shape:
        shutil.copyfile(pristine, db)
        return db
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "model").mkdir(parents=True)
    (workdir / "model" / "MLmodel").write_text(MLMODEL)
    t = time.perf_counter()
    empty_store(db)
    now = int(time.time() * 1000)
    rng = random.Random(seed)
    recent = int(runs * 0.7) if sweep else 0
    # Spread over 30 days ending 2 h ago; in the sweep variant 70% started in the last hour.
    starts = sorted([now - 2 * 3_600_000 - rng.randrange(30 * DAY_MS) for _ in range(runs - recent)] +
                    [now - 3_600_000 + rng.randrange(3_540_000) for _ in range(recent)])
    con = sqlite3.connect(db)
    con.executemany("""INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage,
                       creation_time, last_update_time) VALUES (?,?,?,?,?,?)""",
                    [(e, f"bench-{e:02d}", f"{workdir}/artifacts/{e}", "active", now - 31 * DAY_MS, now)
                     for e in range(1, EXPERIMENTS + 1)])
    ids = []
    for lo in range(0, runs, 20_000):
        ids += insert_runs(con, workdir, starts[lo:lo + 20_000], lo, seed + lo)
    insert_registry(con, workdir, ids[::10], now - DAY_MS)
    con.commit()
    con.close()
    shutil.copyfile(db, pristine)
    marker.write_text(json.dumps(shape))
    log(f"filled {runs:,} runs{' (70% in the last hour)' if sweep else ''} in {time.perf_counter() - t:.0f} s")
    return db


def add_new_runs(db: Path, count: int, seed: int) -> None:
    """`count` new finished runs started now, written into the served store."""
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, timeout=60)
    start = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    insert_runs(con, db.parent, [now - 60_000 + k for k in range(count)], start, seed)
    con.commit()
    con.close()


# -- measured steps, each in its own process -------------------------------------------------------
def child(step: str, args: list[str]) -> dict:
    """Run inside the measuring subprocess; returns what it measured."""
    if step == "raw":
        from mlflow import MlflowClient
        from mlflow.entities import ViewType

        client = MlflowClient(args[0])
        exp_ids = [e.experiment_id for e in client.search_experiments()]
        t, token, n, calls = time.perf_counter(), None, 0, 0
        while True:
            page = client.search_runs(exp_ids, run_view_type=ViewType.ALL, max_results=1000, page_token=token)
            calls += 1
            n += len(list(page))
            token = page.token
            if not token:
                break
        return {"seconds": time.perf_counter() - t, "runs": n, "api_calls": calls}
    if step in ("full", "incr", "passes"):
        from collectors.config import SourceConfig
        from collectors.runner import snapshot_source
        from store.db import Store

        url, store_path = args[0], Path(args[1])
        lake = args[1].startswith("ducklake:")
        store = Store(args[1] if lake else store_path)
        store.migrate_if_needed()
        source = SourceConfig(name="bench", kind="mlflow", platform="databricks", tracking_uri=url, registry_uri=url)
        if step == "passes":   # 29 more daily passes, each after ~1% new runs
            db, runs, passes = Path(args[2]), int(args[3]), int(args[4])
            t = time.perf_counter()
            for p in range(passes):
                add_new_runs(db, max(1, runs // 100), seed=1000 + p)
                outcome = snapshot_source(store, source)
                assert outcome.ok, outcome.errors
            size = sum(f.stat().st_size for f in store_path.parent.glob(store_path.name + "*"))
            return {"seconds": time.perf_counter() - t, "store_mb": size / 1_048_576}
        t = time.perf_counter()
        outcome = snapshot_source(store, source, full=step == "full")
        assert outcome.ok, outcome.errors
        assert outcome.mode == ("full" if step == "full" else "incremental"), outcome.mode
        size = (sum(f.stat().st_size for f in Path(store.spec.data_path).rglob("*") if f.is_file()) if lake
                else store_path.stat().st_size)
        return {"seconds": time.perf_counter() - t, "api_calls": outcome.api_calls,
                "runs_read": outcome.counts["runs"]["seen"], "runs_added": outcome.counts["runs"]["added"],
                "store_mb": size / 1_048_576}
    if step == "lineage":
        from lineage.load import load_graph
        from lineage.trace import trace
        from store.db import Store

        store = Store(Path(args[0]))
        t = time.perf_counter()
        graph = load_graph(store)
        build = time.perf_counter() - t
        targets = [n for n in graph.node_ids() if str(n).startswith("model_version:")]
        rng = random.Random(7)
        lat = []
        for target in [rng.choice(targets) for _ in range(200)] if targets else []:
            t = time.perf_counter()
            trace(graph, target, as_of="now")
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        return {"seconds": build, "nodes": len(graph), "trace_p50_ms": lat[len(lat) // 2] if lat else None}
    raise SystemExit(f"unknown step {step!r}")


def peak_rss_split_mb() -> tuple[float, float]:
    """(this process's VmHWM, its largest waited child's max RSS): the committing and the collecting
    process of a remote MLflow source."""
    import resource

    hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def own_peak_rss_mb() -> float:
    return max(peak_rss_split_mb())


def measure(step: str, *args: str) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", step, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait()
    lines = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"step {step} failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    log(f"{step}: {result}")
    return result


# -- one size --------------------------------------------------------------------------------------
STEPS = ("raw", "full", "incr", "lineage", "sweep", "passes", "ducklake")


def bench_size(runs: int, passes: int, steps: tuple[str, ...] = STEPS) -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from collect_mlflow import MlflowServer, free_port

    base = OUT / f"{runs}"
    res: dict = {"runs": runs}
    for variant in ("spread", "sweep", "passes"):
        if variant == "passes" and (passes <= 1 or "passes" not in steps):
            break
        if variant == "sweep" and "sweep" not in steps:
            continue
        workdir = base / ("sweep" if variant == "sweep" else "spread")
        store_path = workdir / "waymark.duckdb"
        if variant != "passes":
            db = fill(workdir, runs, sweep=variant == "sweep")
            for f in workdir.glob("waymark.duckdb*"):
                f.unlink()
        server = MlflowServer(workdir, free_port())
        try:
            server.start()
            if variant == "passes":   # on the spread store and its snapshot from above
                res["passes"] = measure("passes", server.url, store_path, workdir / "mlflow.db", runs, passes - 1)
                continue
            if variant == "spread" and "raw" in steps:
                res["raw"] = measure("raw", server.url)
            res[f"full_{variant}"] = measure("full", server.url, store_path)
            if variant == "spread" and "ducklake" in steps:
                res["full_ducklake"] = full_on_ducklake(server.url, workdir)
            if "incr" in steps or variant == "sweep":
                add_new_runs(db, runs // 100, seed=99)
                res[f"incr_{variant}"] = measure("incr", server.url, store_path)
            if variant == "spread" and "raw" in steps:
                # Raw paging again after the passes (warm server, 1% more runs); the mean is the baseline,
                # so cache warmth and the shared machine's drift hit both sides.
                again = measure("raw", server.url)
                res["raw"] = {"seconds": (res["raw"]["seconds"] + again["seconds"]) / 2,
                              "first_seconds": res["raw"]["seconds"], "second_seconds": again["seconds"],
                              "peak_rss_mb": max(res["raw"]["peak_rss_mb"], again["peak_rss_mb"])}
            if variant == "spread" and "lineage" in steps:
                res["lineage"] = measure("lineage", store_path)
        finally:
            server.stop()
        print(table([res]), flush=True)
    return res


def full_on_ducklake(url: str, workdir: Path) -> dict | None:
    """The same full pass into a fresh DuckLake store: catalog in a throwaway PostgreSQL on 127.0.0.1
    (tests/postgres_server.py), Parquet files in a local folder."""
    from tests.postgres_server import local_postgres, pg_bin

    bin_dir = pg_bin()
    if bin_dir is None:
        log("ducklake: skipped, PostgreSQL is not installed (apt-get install postgresql)")
        return None
    data = workdir / "lake-data"
    shutil.rmtree(data, ignore_errors=True)
    with local_postgres(bin_dir) as pg:
        spec = f"ducklake:{pg.createdb('bench')} data_path={data}"
        return measure("full", url, spec)


def table(results: list[dict]) -> str:
    def ok(value, target, lower=True):
        if value is None:
            return "—"
        good = value <= target if lower else value >= target
        return f"{value:.3g} {'PASS' if good else 'MISS'}"

    def ratio(step, baseline, key, target):   # "—" when the baseline (raw paging) was not measured
        return ok(step[key] / baseline[key], target) if baseline else "—"

    def seconds(step):
        return f"{step['seconds']:.1f} s" if step else "—"

    def megabytes(step):
        return f"{step['peak_rss_mb']:.0f} MB" if step else "—"

    head = ("| runs | raw paging | full snapshot | full/raw time (≤1.1) | raw RSS | full RSS | full/raw RSS (≤2) "
            "| incr 1% new | incr/full (≤0.1) | sweep: full | sweep: incr 1% | sweep incr/full (≤0.1) "
            "| lineage build (<10 s at 100k) | trace p50 | store after 30 passes (<1 GB at 100k) "
            "| full on DuckLake | DuckLake/raw time | DuckLake RSS (≤2× raw) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        raw, full, incr = r.get("raw"), r["full_spread"], r.get("incr_spread")
        sf, si, lin = r.get("full_sweep"), r.get("incr_sweep"), r.get("lineage")
        passes, lake = r.get("passes"), r.get("full_ducklake")
        lines.append(
            f"| {r['runs']:,} | {seconds(raw)} | {full['seconds']:.1f} s | {ratio(full, raw, 'seconds', 1.1)} "
            f"| {megabytes(raw)} | {full['peak_rss_mb']:.0f} MB "
            f"| {ratio(full, raw, 'peak_rss_mb', 2)} "
            + (f"| {incr['seconds']:.1f} s ({incr['runs_read']:,} runs read) | {ok(incr['seconds'] / full['seconds'], 0.1)} "
               if incr else "| — | — ")
            + (f"| {sf['seconds']:.1f} s | {si['seconds']:.1f} s ({si['runs_read']:,} runs read) "
               f"| {ok(si['seconds'] / sf['seconds'], 0.1)} " if sf and si else "| — | — | — ")
            + (f"| {lin['seconds']:.2f} s ({lin['nodes']:,} nodes) | {lin['trace_p50_ms']:.2f} ms | "
               if lin else "| — | — | ")
            + (f"{passes['store_mb']:.0f} MB" if passes else "—")
            + (f" | {lake['seconds']:.1f} s | {ratio(lake, raw, 'seconds', 1.1)} "
               f"| {lake['peak_rss_mb']:.0f} MB, {ratio(lake, raw, 'peak_rss_mb', 2)} |"
               if lake else " | — | — | — |"))
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        result = child(sys.argv[2], sys.argv[3:])
        result["self_rss_mb"], result["children_rss_mb"] = peak_rss_split_mb()
        result["peak_rss_mb"] = own_peak_rss_mb()
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--passes", type=int, default=30, help="daily snapshots to simulate for the store size")
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                    help="what to measure (the full pass always runs; without raw, no ratios): e.g. --steps raw full incr")
    args = ap.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    results = []
    for runs in args.sizes:
        results.append(bench_size(runs, args.passes, tuple(args.steps)))
        print(table(results), flush=True)
    print("BENCH_JSON " + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
