"""Construction helpers shared by SharedStore and AsyncSharedStore (no I/O)."""

from __future__ import annotations

import inspect
from typing import Any

from sharedstate._core import Core
from sharedstate.connection import decodes_responses, socket_timeout_of
from sharedstate.errors import ConfigurationError
from sharedstate.settings import Settings

WATCH_BLOCK_MAX = 1.0


class StoreOptions:
    """The keyword options a store accepts beside the client, namespace and client name:
    the keyword-only parameters of ``Core``."""

    NAMES = frozenset(
        name
        for name, parameter in inspect.signature(Core.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    )

    @classmethod
    def check(cls, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - cls.NAMES)
        if unknown:
            known = ", ".join(sorted(cls.NAMES))
            raise TypeError(f"unknown store option(s): {', '.join(unknown)}; known: {known}")
        return options


def prepare_client(client: Any) -> None:
    """Refuse a client the store cannot use."""
    if decodes_responses(client):
        raise ConfigurationError(
            "the Redis client decodes responses (decode_responses=True); sharedstate stores "
            "binary values: pass a client made with decode_responses=False"
        )


def watch_block(client: Any) -> float:
    """Longest XREAD BLOCK for this client: under its socket timeout, at most one second."""
    socket_timeout = socket_timeout_of(client)
    return WATCH_BLOCK_MAX if socket_timeout is None else min(WATCH_BLOCK_MAX, socket_timeout / 2)


def split_overrides(overrides: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """``from_env``'s keywords: settings from the environment with the overrides that are
    settings on top, and the rest (store options)."""
    settings = Settings.load(**{k: v for k, v in overrides.items() if k in Settings.model_fields})
    return settings, {k: v for k, v in overrides.items() if k not in Settings.model_fields}


def connection_of(settings: Settings, client_name: str | None) -> tuple[str, str, str | None, float]:
    """``from_url``'s (url, namespace, client name, timeout) for ``settings``; the settings'
    client name wins over the one the caller gives."""
    return (
        settings.require_redis_url(),
        settings.namespace,
        settings.client_name or client_name,
        settings.timeout,
    )


def settings_options(settings: Settings, extra: dict[str, Any]) -> dict[str, Any]:
    """The store options ``settings`` describe, with ``extra`` (explicit options) on top."""
    return {
        "max_document_bytes": settings.max_document_bytes,
        "stale_reads": settings.stale_reads,
        "cache": settings.cache,
        "feed_maxlen": settings.feed_maxlen,
        "history_limit": settings.history_limit,
        "payload_limit": settings.payload_limit,
        "history_budget": settings.history_budget,
        **StoreOptions.check(extra),
    }
