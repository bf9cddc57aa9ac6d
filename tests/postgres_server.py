"""A throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql`: initdb into a temporary folder,
a free port, stopped and removed at the end): the DuckLake catalog of tests/test_ducklake.py and of
bench/scale.py's DuckLake step. The catalog requires a password (scram over TCP), given only through
PGPASSWORD, as in production."""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PG_USER = "waymark"
PG_PASSWORD = "test-only-catalog-password"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Postgres:
    bin: Path
    port: int

    def createdb(self, name: str) -> str:
        """A new database; returns its catalog connection string (no password: PGPASSWORD has it)."""
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, name],
                       check=True, capture_output=True, env={**os.environ, "PGPASSWORD": PG_PASSWORD})
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={name}"


@contextlib.contextmanager
def local_postgres(bin_dir: Path) -> Iterator[Postgres]:
    """Start a server from `bin_dir` (initdb refuses root, so as root it runs as `nobody`), with
    PGPASSWORD set for this process and its children while it runs."""
    root = Path(tempfile.mkdtemp(prefix="waymark-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "nobody", "--"]
        os.chmod(root, 0o755)
        shutil.chown(root, "nobody")
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD)
    if as_user:
        shutil.chown(pwfile, "nobody")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    subprocess.run(as_user + [str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
                              "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start",
                              "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                                    "-c max_connections=200"],
                   check=True, capture_output=True)
    previous = os.environ.get("PGPASSWORD")
    os.environ["PGPASSWORD"] = PG_PASSWORD   # libpq reads it, in this process and in collector subprocesses
    try:
        yield Postgres(bin_dir, port)
    finally:
        from store.ducklake import DuckLakeStore

        DuckLakeStore.close_all()
        subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        if previous is None:
            os.environ.pop("PGPASSWORD", None)
        else:
            os.environ["PGPASSWORD"] = previous
