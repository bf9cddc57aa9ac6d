"""`mlflow server` for the benchmarks, started in its own process group and stopped with every
descendant. Used by bench/collect_mlflow.py and bench/scale.py (through collect_mlflow's names)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            for k in kids:
                out.append(int(k))
                todo.append(int(k))
    return out


class MlflowServer:
    """`mlflow server` in its own process group; stop() kills the group and every descendant
    (uvicorn, huey job runner, and job subprocesses that start their own session)."""

    def __init__(self, workdir: Path, port: int):
        self.workdir, self.port = workdir, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "server.log"

    def start(self, timeout: float = 120) -> float:
        t0 = time.perf_counter()
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
               "--artifacts-destination", str(self.workdir / "artifacts"),
               "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                pass
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"mlflow server not healthy after {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.25)

    def cpu_seconds(self) -> float:
        """utime+stime of the server and its descendants (uvicorn does the work), from /proc."""
        if self.proc is None:
            return 0.0
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in [self.proc.pid] + _descendants(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])   # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total / tick

    def stop(self) -> None:
        if self.proc is None:
            return
        pid = self.proc.pid
        kids = _descendants(pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for target in [pid] + kids:
                try:
                    os.kill(target, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
            if not any(_alive(k) for k in kids):
                break
            time.sleep(1)
        self.proc = None
        self._log.close()


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a killed server's children linger as zombies)."""
    from store.staging import pid_alive   # the repo is on sys.path once main() or scale.py has run

    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
