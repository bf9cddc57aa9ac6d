"""Peak memory of a full pass's two halves without MLflow: stage N synthetic runs (20 params, 10
metrics, 10 tags, like bench/scale.py's) page by page through `StageWriter`, then commit them into a
fresh DuckDB store. Prints the peak RSS above the starting RSS of each phase (`VmHWM`, reset between
phases through /proc/self/clear_refs: Linux only).

    python bench/stage_memory.py --runs 500000
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            fields[line.split(":")[0]] = int(line.split()[1]) // 1024
    return fields


def reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return rss_mb()["VmRSS"]


def run_row(i: int, rng: random.Random) -> dict:
    return {"run_id": uuid.UUID(int=rng.getrandbits(128)).hex, "experiment_id": str(i % 20), "run_name": f"run-{i}",
            "status": "FINISHED", "lifecycle_stage": "active", "user_id": f"user{i % 17}", "start_time": i,
            "end_time": i + 60_000, "artifact_uri": f"/artifacts/{i}",
            "params": {f"param_{k:02d}": f"{rng.random():.6f}" for k in range(20)},
            "metrics": {f"metric_{k}": rng.random() for k in range(10)},
            "tags": {f"tag_{k}": f"value-{rng.random()}" for k in range(10)},
            "git_sha": f"{rng.getrandbits(160):040x}", "git_sha_from": "param", "source_name": "/Repos/train.py",
            "source_type": "JOB", "parent_run_id": None, "job_run_id": str(i), "output_model_ids": []}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200_000)
    args = ap.parse_args()

    from store.db import Store
    from store.entities import Scope
    from store.history import commit_snapshot
    from store.staging import StagingArea

    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="waymark-bench-") as tmp, StagingArea(tmp) as area:
        writer = area.writer("bench")
        start, t = reset_peak(), time.perf_counter()
        for lo in range(0, args.runs, 1000):
            writer.add("runs", [run_row(i, rng) for i in range(lo, min(lo + 1000, args.runs))])
        batches = {"runs": writer.batch("runs", Scope.ALL, replace_by="run_id")}
        writer.close()
        print(f"staging {args.runs:,} runs: {time.perf_counter() - t:.1f} s, peak +{rss_mb()['VmHWM'] - start} MB "
              f"above {start} MB", flush=True)
        store = Store(Path(tmp) / "store.duckdb")
        store.migrate_if_needed()
        now = datetime.now(timezone.utc)
        start, t = reset_peak(), time.perf_counter()
        result = commit_snapshot(store, source="bench", kind="mlflow", platform="databricks", mode="full",
                                 started_at=now, finished_at=now, batches=batches, warnings=[], state={})
        assert result.counts["runs"]["added"] == args.runs, result.counts
        print(f"commit (finish + write): {time.perf_counter() - t:.1f} s, peak +{rss_mb()['VmHWM'] - start} MB "
              f"above {start} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
