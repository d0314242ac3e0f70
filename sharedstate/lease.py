"""An expiring Redis lock with renewal and a fencing token (``scripts/lease.lua``).

Each acquisition gets a larger fencing token, so work done under a lease can be tagged with
it and a holder that lost its lease (paused past the TTL) can be told from the current one.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis.exceptions

from sharedstate._scripts import LEASE, Script
from sharedstate.errors import translate_errors


def run_script(client: Any, script: Script, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA ``script``, falling back to EVAL when the server lost its script cache."""
    try:
        return client.evalsha(script.sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return client.eval(script.source, len(keys), *keys, *args)


class Lease:
    """``Lease(client, key, ttl)``: ``acquire()`` -> fencing token or None; ``renew()``; ``release()``."""

    def __init__(self, client: Any, key: str, ttl: float) -> None:
        self.client = client
        self.key = key
        self.fence_key = f"{key}:fence"
        self.ttl_ms = max(1, int(ttl * 1000))
        self.owner = secrets.token_hex(8)
        self.token: int | None = None

    def _call(self, op: str) -> int:
        with translate_errors(f"{op} the lock {self.key}"):
            return int(
                run_script(self.client, LEASE, [self.key, self.fence_key], [op, self.owner, self.ttl_ms])
            )

    def acquire(self) -> int | None:
        """Take the lease if free: its fencing token, else None."""
        token = self._call("acquire")
        self.token = token or None
        return self.token

    @property
    def value(self) -> str:
        """What the lock key holds while this holder has it (scripts compare it to fence writes)."""
        return f"{self.token}:{self.owner}" if self.token else ""

    def renew(self) -> bool:
        """Extend the lease by its TTL; False if it was lost (expired or taken)."""
        return self._call("renew") == 1

    def release(self) -> bool:
        """Give the lease back; False if it was no longer ours."""
        released = self._call("release") == 1
        self.token = None
        return released

    def held_by_anyone(self) -> bool:
        """True if someone holds the lease now."""
        with translate_errors(f"read the lock {self.key}"):
            return bool(self.client.exists(self.key))
