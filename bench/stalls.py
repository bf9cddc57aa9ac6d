"""Worst-case pass time of an MLflow source whose server hangs (accepts, never answers) or is
unreachable (closed port), with the default time limits or the ones given.

    python bench/stalls.py                 # defaults (http_timeout_seconds 30, retry_timeout_seconds 90)
    python bench/stalls.py 5 10            # http_timeout_seconds=5, retry_timeout_seconds=10
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.config import load_config  # noqa: E402
from collectors.runner import snapshot_all  # noqa: E402
from tests.conftest import mlflow_source, write_config  # noqa: E402
from tests.fault_servers import HangServer, closed_port_url  # noqa: E402


def one_pass(url: str, limits: dict[str, int]) -> tuple[float, bool, str]:
    folder = Path(tempfile.mkdtemp(prefix="waymark-stall-"))
    config = load_config(write_config(folder / "g.toml", [mlflow_source("stalled", url, **limits)]))
    started = time.monotonic()
    [outcome] = snapshot_all(config)
    return time.monotonic() - started, outcome.ok, (outcome.errors or [""])[0][:160]


if __name__ == "__main__":
    limits = {}
    if len(sys.argv) == 3:
        limits = {"http_timeout_seconds": int(sys.argv[1]), "retry_timeout_seconds": int(sys.argv[2])}
    with HangServer() as server:
        seconds, ok, error = one_pass(server.url, limits)
        print(f"hanging server: {seconds:.1f} s, ok={ok}, {len(server.accepted)} connection(s): {error}")
    seconds, ok, error = one_pass(closed_port_url(), limits)
    print(f"unreachable (closed port): {seconds:.1f} s, ok={ok}: {error}")
