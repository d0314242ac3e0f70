"""``sharedstate doctor``: is this deployment healthy? A table of checks; exit 1 on a problem.

Checks the configuration, Redis (reachable, latency, persistence, eviction policy), the data
dir (writable, free space), the newest snapshot's age, the worker's heartbeat and the API's
authentication. Passwords and tokens are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import redis
from rich.table import Table

from sharedstate import usage
from sharedstate.cli.context import err, human_size, out, settings
from sharedstate.connection import client_options, mask_url
from sharedstate.durability.snapshots import list_snapshots
from sharedstate.durability.state import journal_state_at
from sharedstate.durability.target import JOURNAL, SNAPSHOTS, DirectoryTarget, Target
from sharedstate.errors import ConfigurationError, SnapshotError
from sharedstate.keys import Keys
from sharedstate.persistence import assess, journal_live
from sharedstate.settings import Settings
from sharedstate.worker.records import heartbeats_of

LOW_DISK_BYTES = 100 * 1024 * 1024
AOF_OFF = "off: a restart loses writes since the last snapshot"
AOF_OFF_JOURNALED = "off: a restart loses the last second or so of writes (the journal holds the rest)"


@dataclass
class Check:
    name: str
    status: str  # OK | WARN | FAIL | SKIP
    detail: str


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``doctor``."""
    cmd = commands.add_parser("doctor", parents=[common], help="check configuration, Redis, volume, worker")
    cmd.add_argument("--json", action="store_true", help="print the checks as JSON")
    cmd.set_defaults(handler=doctor)


def _redis_checks(config: Settings) -> list[Check]:
    url = config.require_redis_url()
    checks = [Check("redis url", "OK", mask_url(url))]
    client = redis.Redis.from_url(url, **client_options(min(config.timeout, 5.0), "doctor"))
    try:
        started = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - started) * 1000
    except redis.RedisError as exc:
        client.close()
        return [*checks, Check("redis reachable", "FAIL", f"{type(exc).__name__}: {str(exc)[:120]}")]
    try:
        checks.append(Check("redis reachable", "OK", f"{latency:.1f} ms"))
        try:
            info = client.info()
        except redis.ResponseError:
            info = {}
        try:
            save = client.config_get("save").get("save")
        except redis.ResponseError:
            save = None
        keys = Keys(config.namespace)
        alive = [beat for beat in heartbeats_of(client, keys) if beat["alive"]]
        journaled = journal_live(journal_state_at(client, keys), bool(alive), time.time())
        found = assess(info, save, journaled)
        figures = found.figures
        checks.append(Check("redis version", "OK", str(figures["version"] or "unknown (INFO disabled)")))
        aof = figures["aof_enabled"]
        checks.append(
            Check("redis AOF", "OK" if aof else "WARN" if aof is False else "SKIP",
                  "appendonly yes" if aof else (AOF_OFF_JOURNALED if journaled else AOF_OFF)
                  if aof is False else "unknown")
        )  # fmt: skip
        rdb = f"save {save!r}" if save else "off (save ''): Redis keeps no copy of its own on disk"
        checks.append(Check("redis RDB save", "OK" if save else "WARN" if save == "" else "SKIP",
                            rdb if save is not None else "unknown (CONFIG disabled)"))  # fmt: skip
        policy = figures["maxmemory_policy"]
        checks.append(
            Check("redis eviction", "FAIL" if found.degraded else "OK", f"maxmemory-policy {policy}")
        )
        heartbeat = (
            f"{len(alive)} worker(s) alive" if alive else "none in 30 s: is `sharedstate worker` running?"
        )
        checks.append(Check("worker heartbeat", "OK" if alive else "WARN", heartbeat))
        checks.append(_usage_check(client, keys, config.history_budget))
        documents = f"{config.namespace!r}, {client.scard(keys.names)} documents"
        if client.get(keys.marker):
            checks.append(Check("namespace", "OK", documents))
        else:
            checks.append(Check("namespace", "WARN", f"{documents}; not marked: new, or Redis lost it"))
    finally:
        client.close()
    return checks


def _pipelined(client: redis.Redis, commands: list[tuple[Any, ...]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return list(pipe.execute())


def _usage_check(client: redis.Redis, keys: Keys, budget: int) -> Check:
    try:
        first = _pipelined(client, usage.first_commands(keys))
        figures = usage.usage_of(first, _pipelined(client, usage.sample_commands(keys, first)), budget)
    except redis.ResponseError:
        return Check("namespace memory", "SKIP", "unknown (MEMORY disabled)")
    used = figures["history_budget_used"] or 0.0
    detail = (
        f"documents ~{human_size(figures['documents_memory_estimate'])}; feed and history "
        f"{human_size(figures['history_bytes'])} of the {human_size(budget)} budget "
        f"({figures['feed_entries']} changes)"
    )
    return Check(
        "namespace memory", "OK", detail + ("; the oldest changes are being dropped" if used >= 0.99 else "")
    )


def _disk_checks(config: Settings) -> list[Check]:
    target = config.backup_target()
    if not isinstance(target, DirectoryTarget):
        return _bucket_checks(config, target)
    directory = target.folder(SNAPSHOTS)
    checks = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-") as probe:
            probe.write(b"x")
            probe.flush()
            os.fsync(probe.fileno())
        checks.append(Check("data dir writable", "OK", str(config.data_dir.resolve())))
    except OSError as exc:
        return [Check("data dir writable", "FAIL", f"{config.data_dir}: {exc.strerror or exc}")]
    free = shutil.disk_usage(directory).free
    checks.append(Check("free space", "OK" if free >= LOW_DISK_BYTES else "WARN", f"{free / 1e6:,.0f} MB"))
    return checks + _newest_snapshot(config, target, "none in this data dir (on the worker's volume?)")


def _bucket_checks(config: Settings, target: Target) -> list[Check]:
    try:
        target.write(JOURNAL, ".doctor-probe", b"x")
        target.delete(JOURNAL, [".doctor-probe"])
    except SnapshotError as exc:
        return [Check("backup bucket writable", "FAIL", f"{target.description}: {exc.reason}")]
    checks = [Check("backup bucket writable", "OK", target.description)]
    return checks + _newest_snapshot(config, target, f"none in {target.description} yet")


def _newest_snapshot(config: Settings, target: Target, none: str) -> list[Check]:
    snapshots = [entry for entry in list_snapshots(target, config.namespace) if entry.header is not None]
    if not snapshots:
        return [Check("newest snapshot", "WARN", none)]
    age = time.time() - snapshots[0].created_at
    status = "OK" if age <= max(3 * config.snapshot_interval, 3600) else "WARN"
    return [Check("newest snapshot", status, f"{snapshots[0].id}, {age:,.0f} s old")]


def _api_checks(config: Settings) -> list[Check]:
    from sharedstate.api.server import is_loopback

    tokens = config.tokens()
    if tokens:
        roles = sorted(set(tokens.values()))
        return [Check("api auth", "OK", f"{len(tokens)} token(s), roles {', '.join(roles)}")]
    if is_loopback(config.api_host):
        return [
            Check(
                "api auth", "WARN", f"no SHAREDSTATE_API_TOKENS: open to local processes on {config.api_host}"
            )
        ]
    return [
        Check(
            "api auth",
            "FAIL",
            f"no SHAREDSTATE_API_TOKENS on {config.api_host}: `sharedstate api` will refuse",
        )
    ]


def run_checks(args: argparse.Namespace) -> list[Check]:
    try:
        config = settings(args)
    except ConfigurationError as exc:
        return [Check("configuration", "FAIL", str(exc))]
    checks = [Check("configuration", "OK", f"namespace {config.namespace!r}")]
    try:
        checks += _redis_checks(config)
    except ConfigurationError as exc:
        checks.append(Check("redis url", "FAIL", str(exc)))
    try:
        checks += _disk_checks(config)
    except ConfigurationError as exc:
        checks.append(Check("backup target", "FAIL", str(exc)))
    return checks + _api_checks(config)


def doctor(args: argparse.Namespace) -> int:
    checks = run_checks(args)
    if args.json:
        out.print_json(json.dumps([check.__dict__ for check in checks]))
    else:
        table = Table("check", "status", "detail")
        colours = {"OK": "green", "WARN": "yellow", "FAIL": "red", "SKIP": "dim"}
        for check in checks:
            table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", check.detail)
        out.print(table)
    failed = [check.name for check in checks if check.status == "FAIL"]
    if failed:
        err.print(f"problems: {', '.join(failed)}")
        return 1
    return 0
