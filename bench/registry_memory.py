"""Peak memory of the MLflow source's registry half alone: a sqlite registry of N model versions (10
per model, every one pointing at one real `MLmodel`, as in bench/scale.py) filled with SQL, served by
`mlflow server`, then `MlflowSource._registry` staged into a staging file in a child process. Prints
the child's RSS before and its peak (`VmHWM`) after.

    python bench/registry_memory.py --versions 10000 50000
    python bench/registry_memory.py --versions 50000 --no-origins   # without reading the MLmodel files
"""
from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def status_mb() -> dict[str, int]:
    return {line.split(":")[0]: int(line.split()[1]) // 1024
            for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(("VmHWM", "VmRSS"))}


def fill(workdir: Path, versions: int) -> None:
    """An MLflow store holding only a registry: `versions` versions of runs that are not in it."""
    from scale import MLMODEL, empty_store, insert_registry

    (workdir / "model").mkdir(parents=True)
    (workdir / "model" / "MLmodel").write_text(MLMODEL)
    db = workdir / "mlflow.db"
    empty_store(db)
    con = sqlite3.connect(db)
    insert_registry(con, workdir, [f"{k:032x}" for k in range(versions)], int(time.time() * 1000))
    con.commit()
    con.close()


def child(url: str, origins: bool, stage_dir: str) -> None:
    from collectors.config import SourceConfig
    from collectors.mlflow_source import MlflowSource
    from collectors.report import SourceReport
    from store.staging import StagingArea

    source = MlflowSource(SourceConfig(name="bench", kind="mlflow", platform="databricks", tracking_uri=url,
                                       registry_uri=url, read_model_origins=origins), SourceReport("bench"))
    source.client.search_experiments()   # the client and its imports are part of the baseline
    before, t = status_mb()["VmRSS"], time.perf_counter()
    with StagingArea(stage_dir) as area:
        writer = area.writer("bench")
        source._registry(None, writer)
        writer.close()
        staged = dict(writer.rows)
    peak = status_mb()["VmHWM"]
    print(f"RESULT {staged} in {time.perf_counter() - t:.1f} s: RSS {before} MB before, peak {peak} MB "
          f"(+{peak - before} MB)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--no-origins", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], not args.no_origins, args.child[1])
        return 0
    from mlflow_server import MlflowServer, free_port

    for versions in args.versions:
        with tempfile.TemporaryDirectory(prefix="waymark-bench-") as tmp:
            workdir = Path(tmp) / "registry"
            fill(workdir, versions)
            server = MlflowServer(workdir, free_port())
            server.start()
            try:
                cmd = [sys.executable, __file__, "--child", server.url, tmp] + (["--no-origins"] if args.no_origins else [])
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            finally:
                server.stop()
            print(f"{versions:,} versions: " + next(ln[7:] for ln in out.splitlines() if ln.startswith("RESULT ")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
