"""Filling a benchmark `mlflow server` through the real client: N runs (20 params, 10 metrics, 10 tags
each) over E experiments, M registered model versions each backed by an `MLmodel` artifact, and the
aliases; plus the pristine copy of the filled backend a later run restores (bench/collect_mlflow.py)."""
from __future__ import annotations

import math
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

MARKER = "fill.json"
PRISTINE = "mlflow.filled.db"
FILL_FORMAT = 1          # bump when the fill's shape changes, so old workdirs are refilled
DAY_MS = 86_400_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


MLMODEL = """artifact_path: model
flavors:
  python_function:
    env: {{conda: conda.yaml, virtualenv: python_env.yaml}}
    loader_module: mlflow.sklearn
    model_path: model.pkl
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.2
mlflow_version: 3.17.2
model_size_bytes: 1024
model_uuid: {uuid}
run_id: {run_id}
utc_time_created: '{created}'
"""


def _run_payload(i: int, exp_id: str, start_ms: int, rng: random.Random):
    from mlflow.entities import Metric, Param

    tags = {
        "mlflow.runName": f"run-{i:06d}",
        "mlflow.user": f"user{i % 17}",
        "mlflow.source.name": f"/Repos/team{i % 5}/train.py",
        "mlflow.source.type": "JOB" if i % 3 else "NOTEBOOK",
        "mlflow.source.git.commit": f"{rng.getrandbits(160):040x}",
        "mlflow.databricks.jobRunID": str(100000 + i),
        "team": f"team{i % 5}",
        "stage": ("dev", "staging", "prod")[i % 3],
        "dataset": f"main.features.table_{i % 40}",
        "note": f"benchmark run {i}",
    }
    params = [Param(f"param_{k:02d}", f"{rng.random():.6f}" if k % 2 else f"value-{i % (k + 3)}")
              for k in range(19)] + [Param("git_sha", f"{rng.getrandbits(160):040x}")]
    metrics = [Metric(f"metric_{k}", rng.random(), start_ms + 1000, 0) for k in range(10)]
    return tags, params, metrics


def create_runs(client, exp_ids: list[str], indices: range, start_times: list[int], workers: int,
                label: str) -> list[tuple[str, str]]:
    """create_run + log_batch + set_terminated(FINISHED) per run, on a small thread pool."""
    out: list[tuple[str, str] | None] = [None] * len(indices)
    done = [0]
    lock = threading.Lock()
    t0 = time.perf_counter()

    def one(pos: int) -> None:
        i = indices[pos]
        rng = random.Random(i)
        exp_id = exp_ids[i % len(exp_ids)]
        start = start_times[pos]
        tags, params, metrics = _run_payload(i, exp_id, start, rng)
        run = client.create_run(exp_id, start_time=start, tags=tags)
        client.log_batch(run.info.run_id, metrics=metrics, params=params, synchronous=True)
        client.set_terminated(run.info.run_id, "FINISHED", end_time=start + 60_000 + rng.randrange(3_600_000))
        out[pos] = (run.info.run_id, run.info.artifact_uri)
        with lock:
            done[0] += 1
            if done[0] % 1000 == 0 or done[0] == len(indices):
                el = time.perf_counter() - t0
                log(f"  {label}: {done[0]:,}/{len(indices):,} runs ({done[0] / el:,.0f} runs/s)")

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for f in [pool.submit(one, p) for p in range(len(indices))]:
            f.result()
    finally:  # on Ctrl-C or an error, drop the queued runs instead of finishing them
        pool.shutdown(wait=True, cancel_futures=True)
    return [o for o in out if o is not None]


def fill(url: str, args, workdir: Path) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    t0 = time.perf_counter()
    exp_ids = [client.create_experiment(f"bench-exp-{e:03d}", tags={"team": f"team{e % 5}", "bench": "1"})
               for e in range(args.experiments)]
    fill_ms = int(time.time() * 1000)
    first, last = fill_ms - 30 * DAY_MS, fill_ms - 2 * 3_600_000
    step = (last - first) / max(args.runs, 1)
    starts = [int(first + k * step) for k in range(args.runs)]
    runs = create_runs(client, exp_ids, range(args.runs), starts, args.fill_workers, "fill")
    runs_s = time.perf_counter() - t0

    # Registered models: `versions` versions spread over ceil(versions/10) models; each version's
    # source is a run artifact directory holding a real MLmodel file.
    t1 = time.perf_counter()
    n_models = max(1, math.ceil(args.versions / 10)) if args.versions else 0
    names = [f"bench_model_{m:03d}" for m in range(n_models)]
    for n in names:
        client.create_registered_model(n, tags={"owner": "bench"}, description=f"benchmark model {n}")
    picks = list(range(0, len(runs), max(1, len(runs) // max(args.versions, 1))))[:args.versions]

    def version(k: int):
        run_id, artifact_uri = runs[picks[k]]
        created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        client.log_text(run_id, MLMODEL.format(uuid=f"{random.Random(k).getrandbits(128):032x}",
                                               run_id=run_id, created=created), "model/MLmodel")
        return names[k % n_models], f"{artifact_uri}/model", run_id

    with ThreadPoolExecutor(max_workers=args.fill_workers) as pool:
        specs = list(pool.map(version, range(len(picks))))
    per_model: dict[str, list[str]] = {}
    for name, source, run_id in specs:   # sequential: version numbers are assigned per model
        mv = client.create_model_version(name, source, run_id=run_id, tags={"bench": "1"})
        per_model.setdefault(name, []).append(str(mv.version))
    n_aliases = 0
    for name, vs in per_model.items():
        client.set_registered_model_alias(name, "champion", vs[-1])
        n_aliases += 1
        if len(vs) > 1:
            client.set_registered_model_alias(name, "challenger", vs[-2])
            n_aliases += 1
    registry_s = time.perf_counter() - t1
    return {"format": FILL_FORMAT, "runs": args.runs, "versions": len(specs), "experiments": args.experiments,
            "registered_models": n_models, "aliases": n_aliases, "fill_workers": args.fill_workers,
            "runs_fill_s": round(runs_s, 2), "registry_fill_s": round(registry_s, 2),
            "fill_s": round(runs_s + registry_s, 2), "filled_at": datetime.now(timezone.utc).isoformat()}


def backup_sqlite(src: Path, dst: Path) -> None:
    tmp = dst.with_suffix(".tmp")
    with sqlite3.connect(src) as s, sqlite3.connect(tmp) as d:
        s.backup(d)
    s.close(), d.close()
    tmp.replace(dst)
