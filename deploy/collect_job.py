"""Scheduled collection with a single-user DuckDB store kept on durable storage.

`python deploy/collect_job.py --remote-store DIR -- snapshot --config PATH [...]`

(With `[store] backend = "ducklake"` there is nothing to copy: the collector writes the shared store
directly and `--remote-store` is ignored.)

A scheduler's container or cluster has a throwaway disk, while DuckDB wants random writes on a
local file (object-storage mounts such as UC Volumes, blobfuse or Azure Files do not give it safe
locking). So the job copies the last store in from DIR, runs the collector CLI unchanged, and copies
the store back with write-then-rename, so a killed job leaves DIR's previous store whole. Only one
job may run at a time: each scheduler file here sets that (concurrency group, max_concurrent_runs,
parallelism 1). The exit code is the collector's (0 ok, 1 a source failed, 2 bad config or usage);
a failed source still gets its failed snapshot copied back, so the app shows it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file by Databricks' spark_python_task
    sys.path.insert(0, str(ROOT))

from collectors.__main__ import main as collectors_main  # noqa: E402
from collectors.config import ConfigError, load_config  # noqa: E402


def _config_arg(argv: list[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return "governance.toml"


def _copy_atomically(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".incoming")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def run(remote_dir: Path, collector_argv: list[str]) -> int:
    try:
        config = load_config(_config_arg(collector_argv))
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    local = config.store_path
    if not isinstance(local, Path):
        # A shared DuckLake store is written where it lives, by any number of jobs at once.
        return collectors_main(collector_argv)
    remote = remote_dir / local.name
    if remote.exists():
        _copy_atomically(remote, local)
    code = collectors_main(collector_argv)
    if code in (0, 1) and local.exists():
        _copy_atomically(local, remote)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: collect_job.py --remote-store DIR -- snapshot --config PATH [...]", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="collect_job.py")
    parser.add_argument("--remote-store", required=True, type=Path,
                        help="durable folder holding the store between runs (a mounted share or volume)")
    args = parser.parse_args(argv[:split])
    return run(args.remote_store, argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
