"""Redis client settings that keep every call within the store's time budget."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.backoff import ExponentialWithJitterBackoff

from sharedstate._packing import with_hiredis_packing
from sharedstate.errors import ConfigurationError

_CLIENT_NAME = re.compile(r"[!-~]{1,128}")  # what CLIENT SETNAME accepts: no spaces


def client_options(timeout: float, client_name: str | None) -> dict[str, Any]:
    """Keyword arguments for ``Redis.from_url`` (sync or asyncio) bounded by ``timeout``.

    A call makes at most 3 attempts of ``timeout / 4`` seconds each with backoff of at most
    ``timeout / 8`` between them: answered or failed within ``timeout`` even when Redis is
    frozen. The caller adds the ``retry`` object of its flavour (sync or asyncio).
    """
    if timeout <= 0:
        raise ConfigurationError(f"timeout must be > 0 seconds, not {timeout!r}")
    per_try = timeout / 4
    options: dict[str, Any] = {
        "socket_timeout": per_try,
        "socket_connect_timeout": per_try,
        "socket_keepalive": True,
        "decode_responses": False,
    }
    if client_name and _CLIENT_NAME.fullmatch(client_name):
        options["client_name"] = client_name
    return options


def retry_settings(timeout: float) -> tuple[ExponentialWithJitterBackoff, int]:
    """Backoff and retry count matching ``client_options``."""
    return ExponentialWithJitterBackoff(base=0.05, cap=timeout / 8), 2


def check_url(url: object) -> str:
    """Refuse what is clearly not a Redis URL, without echoing a password."""
    try:
        scheme = urlsplit(url).scheme if isinstance(url, str) else None
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        scheme = None
    if not isinstance(url, str) or scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"not a Redis URL: {mask_url(str(url))!r} (expected redis://, rediss:// or unix://)"
        )
    return url


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def socket_timeout_of(client: Any) -> float | None:
    """The socket timeout a redis-py client (sync or asyncio, single or pooled) was made with."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    value = kwargs.get("socket_timeout")
    return float(value) if value else None


def decodes_responses(client: Any) -> bool:
    """True when a client turns replies into str: the store needs raw bytes."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    if kwargs.get("decode_responses"):
        return True
    encoder = getattr(client, "get_encoder", None)
    try:
        return bool(encoder and encoder().decode_responses)
    except Exception:  # cluster clients build encoders lazily; they carry the flag in kwargs
        return False


def bounded_client(client: Any, timeout: float | None, retry_class: type[Any]) -> tuple[Any, bool]:
    """The client the store uses for ``client``, and whether the store owns (and closes) it.

    A plain redis-py client whose timeouts and retries could make a call outlast ``timeout``
    (redis-py 8 defaults: 5 s per try, 10 retries) is not changed: the store makes its own
    pool with the same connection settings (host, credentials, TLS, db...) and bounded
    timeouts, so a frozen Redis answers StoreUnavailable within ``timeout``. Sentinel and
    Cluster clients, fakeredis, and ``timeout=None`` keep the client exactly as given.
    """
    pool = getattr(client, "connection_pool", None)
    if timeout is None or pool is None or type(client).__module__.startswith("fakeredis"):
        return client, False
    if type(pool).__name__ not in ("ConnectionPool", "BlockingConnectionPool") or not type(
        pool
    ).__module__.startswith("redis."):
        return client, False
    kwargs = dict(pool.connection_kwargs)
    per_try = timeout / 4
    retry = kwargs.get("retry")
    retries = retry.get_retries() if retry is not None else 0
    within = all(
        (value := kwargs.get(name)) is not None and value <= per_try
        for name in ("socket_timeout", "socket_connect_timeout")
    )
    if within and retries <= 2:
        return client, False
    backoff, count = retry_settings(timeout)
    kwargs.update(socket_timeout=per_try, socket_connect_timeout=per_try, retry=retry_class(backoff, count))
    own_pool = type(pool)(
        connection_class=with_hiredis_packing(pool.connection_class),
        max_connections=pool.max_connections,
        **kwargs,
    )
    return type(client).from_pool(own_pool), True  # from_pool: closing the client closes its pool
