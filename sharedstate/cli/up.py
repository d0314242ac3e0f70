"""``sharedstate up``: the whole system on one machine.

Redis (the configured one, or an embedded real redis-server with AOF in the data dir), the
worker (which restores the namespace if needed, then schedules), the API, and with
``--demo`` the example bot. Prints the API address and an admin token; Ctrl-C or SIGTERM
stops everything, the embedded Redis last, and leaves no process behind. A child that dies
is started again, the embedded Redis too (same port, from its AOF).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from sharedstate.cli.context import err, out, settings
from sharedstate.connection import mask_url
from sharedstate.errors import ConfigurationError, SharedStateError, UsageError
from sharedstate.redis_server import RedisProcess
from sharedstate.settings import Settings
from sharedstate.worker.process import SUPERVISOR_PID, python_module
from sharedstate.worker.supervisor import RESTART_MAX_BACKOFF, Child

log = logging.getLogger("sharedstate.up")
READY_TIMEOUT = 60.0
DEMO_VERIFY_INTERVAL = "10"
CHECKOUT = Path(__file__).resolve().parents[2]  # the repository, when installed from one (make up)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``up``."""
    cmd = commands.add_parser(
        "up", parents=[common], help="everything on one machine: Redis, worker, cron, API"
    )
    cmd.add_argument("--demo", action="store_true", help="also run the example bot (examples/bot)")
    cmd.add_argument("--port", type=int, help="API port (default SHAREDSTATE_API_PORT, PORT or 8080)")
    cmd.set_defaults(handler=up)


class Up:
    """The processes of ``sharedstate up`` and their order of stopping."""

    def __init__(self, config: Settings, demo: bool, port: int | None) -> None:
        self.config = config
        self.demo = demo
        self.port = port or config.api_port
        self.stopping = threading.Event()
        self.redis: RedisProcess | None = None
        self.children: list[Child] = []
        self.token: str | None = None
        self.redis_next_start = 0.0
        self.failed = False

    def _request_stop(self, signum: int, _frame: object) -> None:
        self.stopping.set()

    def _redis_url(self) -> str:
        if self.config.redis_url is not None:
            return self.config.require_redis_url()
        directory = self.config.data_dir / "redis"
        self.redis = RedisProcess(directory, appendonly=True, extra=("--maxmemory-policy", "noeviction"))
        self.redis.start()
        log.info(
            "embedded redis-server %s on %s, data and AOF in %s", self.redis.binary, self.redis.url, directory
        )
        return self.redis.url

    def _environment(self, url: str) -> dict[str, str]:
        env = {
            **os.environ,
            "SHAREDSTATE_REDIS_URL": url,
            "SHAREDSTATE_NAMESPACE": self.config.namespace,
            "SHAREDSTATE_DATA_DIR": str(self.config.data_dir.resolve()),
            "SHAREDSTATE_API_PORT": str(self.port),
            "SHAREDSTATE_API_HOST": self.config.api_host,
            "PYTHONUNBUFFERED": "1",
            SUPERVISOR_PID: str(os.getpid()),
        }
        if not self.config.tokens():
            self.token = secrets.token_urlsafe(24)
            env["SHAREDSTATE_API_TOKENS"] = f"admin:{self.token}"
        if self.demo:
            # The example bot lives in the repository, not in the installed package.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHECKOUT), env.get("PYTHONPATH")]))
            env.setdefault("SHAREDSTATE_VERIFY_JOB", "examples.bot.jobs:periodic_verification")
            if "SHAREDSTATE_VERIFY_CRON" not in os.environ:
                env.setdefault("SHAREDSTATE_VERIFY_INTERVAL", DEMO_VERIFY_INTERVAL)
        return env

    def _wait_for_api(self) -> bool:
        host = "127.0.0.1" if self.config.api_host in ("0.0.0.0", "::") else self.config.api_host
        url = f"http://{host}:{self.port}/healthz"
        deadline = time.monotonic() + READY_TIMEOUT
        api = next(child for child in self.children if child.name == "api")
        while not self.stopping.is_set() and time.monotonic() < deadline:
            if not api.running:
                return False  # it said why on its own output
            try:
                with urlopen(url, timeout=1) as answer:  # the stdlib: `up` must run without extras
                    if answer.status == 200:
                        return True
            except (URLError, OSError):
                pass
            self.stopping.wait(0.2)
        return False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_port()
        try:
            env = self._environment(self._redis_url())
            self.children = [
                Child("worker", python_module("sharedstate", "worker")),
                Child("api", python_module("sharedstate", "api", "--port", str(self.port))),
            ]
            if self.demo:
                self.children.append(Child("bot", [sys.executable, "-m", "examples.bot"]))
            for child in self.children:
                child.start(env)
            if not self._wait_for_api():
                if not self.stopping.is_set():
                    err.print("the API did not come up; see the log above")
                return 0 if self.stopping.is_set() else 1
            self._banner(env["SHAREDSTATE_REDIS_URL"])
            self._supervise(env)
            return 1 if self.failed else 0
        finally:
            self._stop()

    def _check_port(self) -> None:
        """Fail at once, saying so, when the API's port is taken (rather than restarting the API)."""
        family = socket.AF_INET6 if ":" in self.config.api_host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is free
            try:
                probe.bind((self.config.api_host, self.port))
            except OSError as exc:
                raise UsageError(
                    f"port {self.port} on {self.config.api_host} is not free ({exc.strerror}): stop "
                    "what uses it, or choose another with --port or SHAREDSTATE_API_PORT"
                ) from None

    def _banner(self, url: str) -> None:
        host = "127.0.0.1" if self.config.api_host in ("0.0.0.0", "::") else self.config.api_host
        out.print(f"\nsharedstate is up: namespace {self.config.namespace!r}", highlight=False)
        out.print(f"  API       http://{host}:{self.port}   (health: /v1/health, metrics: /metrics)")
        if self.token:
            out.print(f"  token     {self.token}   (role admin; also in the console's sign-in)")
            out.print(
                f'            curl -H "Authorization: Bearer {self.token}" http://{host}:{self.port}/v1/health'
            )
        out.print(f"  Redis     {mask_url(url)}{' (embedded)' if self.redis else ''}")
        out.print(f"  data      {self.config.data_dir.resolve()}")
        if self.demo:
            out.print("  demo      the example bot writes every 2 s; the verification job runs every 10 s")
        out.print("Ctrl-C stops everything.\n")

    def _supervise(self, env: dict[str, str]) -> None:
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            if self.redis is not None and not self._embedded_redis_running(now):
                continue  # children started now would only fail to connect
            for child in self.children:
                if child.running:
                    continue
                if child.process is not None:
                    log.warning("%s exited with code %s; starting it again in %.0f s",
                                child.name, child.process.returncode, child.backoff)  # fmt: skip
                    child.next_start = now + child.backoff
                    child.backoff = min(child.backoff * 2, RESTART_MAX_BACKOFF)
                    child.process = None
                if now >= child.next_start:
                    child.start(env)

    def _embedded_redis_running(self, now: float) -> bool:
        """Whether the embedded Redis runs; if it died (an OOM kill, a crash), start it again on
        its port and from its AOF, so the services reconnect by themselves and lose nothing."""
        assert self.redis is not None
        process = self.redis.process
        if process is not None and process.poll() is None:
            return True
        if now < self.redis_next_start:
            return False
        if process is not None:
            log.warning("the embedded redis-server exited with code %s; starting it again from its AOF",
                        process.returncode)  # fmt: skip
        port = self.redis.port
        try:
            self.redis.start()
        except SharedStateError as exc:
            log.error("%s; trying again in %.0f s", exc, RESTART_MAX_BACKOFF)
            self.redis.process = None
            self.redis.port = port  # start() moved on to fresh ports: the services know this one
            self.redis_next_start = now + RESTART_MAX_BACKOFF
            return False
        if self.redis.port != port:  # the services know only the old port
            log.error("port %d was taken while the embedded Redis was down; stopping", port)
            self.failed = True
            self.stopping.set()
            return False
        log.warning("the embedded redis-server is back on port %d", port)
        return True

    def _stop(self) -> None:
        for child in reversed(self.children):  # bot, API, then the worker (final snapshot)
            child.signal(signal.SIGTERM)
            if child.process is not None:
                try:
                    child.process.wait(self.config.shutdown_grace + 15)
                except Exception:
                    child.process.kill()
                    child.process.wait()
        if self.redis is not None:
            self.redis.stop()


def up(args: argparse.Namespace) -> int:
    if args.demo and not (CHECKOUT / "examples" / "bot").is_dir():
        raise ConfigurationError("--demo runs examples/bot from a checkout of the repository; none was found")
    config = settings(args)
    return Up(config, args.demo, args.port).run()
