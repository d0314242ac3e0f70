"""A throwaway PostgreSQL server for baselines: Debian's package, a temp cluster, loopback TCP."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Postgres:
    """``with Postgres() as pg: psycopg.connect(pg.dsn)``; ``Postgres.available()`` first."""

    def __init__(self) -> None:
        # its own temp dir: the bench's is private to root, and PostgreSQL runs as postgres
        self.directory = Path(tempfile.mkdtemp(prefix="sharedstate-pg-"))
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        bindir = _bindir()
        assert bindir is not None, "PostgreSQL is not installed (apt-get install postgresql)"
        self.bindir = bindir

    @staticmethod
    def available() -> str | None:
        """None when a server can be started here, else why not."""
        if _bindir() is None:
            return "PostgreSQL is not installed (make bench installs Debian's postgresql)"
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "psycopg is not installed (pip install 'psycopg[binary]')"
        return None

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _as_owner(self, command: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root (CI runs as root): run it as the package's user.
        return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command

    def __enter__(self) -> Postgres:
        data = self.directory / "pgdata"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        subprocess.run(
            self._as_owner([str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                            "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self.process = subprocess.Popen(
            self._as_owner([str(self.bindir / "postgres"), "-D", str(data), "-p", str(self.port),
                            "-c", "listen_addresses=127.0.0.1",
                            "-c", f"unix_socket_directories={self.directory}",
                            "-c", "fsync=off", "-c", "shared_buffers=128MB"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.1)

    def __exit__(self, *exc: Any) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
