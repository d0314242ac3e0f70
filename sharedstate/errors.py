"""The one exception tree of sharedstate.

    SharedStateError
    ├── VersionConflict      a compare-and-set write met another version
    ├── DocumentNotFound     the document does not exist (also a LookupError)
    ├── StoreUnavailable     Redis could not be reached in time; a write's outcome is unknown
    ├── InvalidDocument      bad name, a value JSON can't hold, too large (also a ValueError)
    │   └── NotAnObject      a field operation on a plain-value document
    ├── FeedTrimmed          watch(after=...) asked for changes the capped feed no longer holds
    ├── SnapshotError        a snapshot file is truncated, altered or foreign; or cannot be written
    └── ConfigurationError   settings missing or wrong

Errors from redis-py are translated in one place (``translate_errors``) and chained with
``raise ... from exc``. Messages never carry a Redis URL, password or the server's address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import redis.exceptions


class SharedStateError(Exception):
    """Root of every error raised by sharedstate."""


class VersionConflict(SharedStateError):
    """A write expected one version of a document and found another.

    ``actual`` is 0 when the document does not exist.
    """

    def __init__(self, name: str, expected: int, actual: int) -> None:
        self.name = name
        self.expected = expected
        self.actual = actual
        super().__init__(f"document {name!r}: expected version {expected}, found {actual}")

    def __reduce__(self) -> tuple[type[VersionConflict], tuple[str, int, int]]:
        return (type(self), (self.name, self.expected, self.actual))


class DocumentNotFound(SharedStateError, LookupError):
    """The document does not exist."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"document {name!r} does not exist")

    def __reduce__(self) -> tuple[type[DocumentNotFound], tuple[str]]:
        return (type(self), (self.name,))


class StoreUnavailable(SharedStateError):
    """Redis did not answer in time or refused the command.

    For a write this means the outcome is unknown: it may or may not have been applied.
    """


class InvalidDocument(SharedStateError, ValueError):
    """A name, value or size that the store refuses; nothing was written."""


class NotAnObject(InvalidDocument):
    """A field operation on a document whose top level is not a JSON object."""


class FeedTrimmed(SharedStateError):
    """The change feed was trimmed past the position a watcher asked to resume from."""

    def __init__(self, after: str, oldest: str) -> None:
        self.after = after
        self.oldest = oldest
        held = f"its oldest entry is {oldest}" if oldest else "it is empty (Redis lost it)"
        super().__init__(
            f"the change feed no longer holds changes after {after}: {held}; "
            "re-read the documents and watch from now"
        )

    def __reduce__(self) -> tuple[type[FeedTrimmed], tuple[str, str]]:
        return (type(self), (self.after, self.oldest))


class SnapshotError(SharedStateError):
    """A snapshot that cannot be trusted (truncated, altered, foreign) or cannot be written."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"snapshot {self.path}: {reason}")

    def __reduce__(self) -> tuple[type[SnapshotError], tuple[str, str]]:
        return (type(self), (self.path, self.reason))


class UsageError(SharedStateError):
    """A command was called wrongly (the CLI prints it on one line and exits 2)."""


class ConfigurationError(SharedStateError):
    """Settings are missing or invalid."""


# Errors meaning "Redis is not there or not answering": the store maps them to StoreUnavailable.
_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MaxConnectionsError,
    OSError,
)


def unavailable(exc: BaseException, action: str, writes: bool = False) -> StoreUnavailable:
    """Build the StoreUnavailable for a redis-py error, without secrets in the message; for calls
    that ``writes``, it says the outcome is unknown."""
    message = f"Redis unavailable while trying to {action} ({describe(exc)})"
    if writes:
        message += "; the outcome is unknown: the write may or may not have been applied"
    return StoreUnavailable(message)


def describe(exc: BaseException) -> str:
    """``Kind: message`` of a redis-py error, fit for logs and clients (see ``_safe``)."""
    return f"{type(exc).__name__}: {_safe(exc)}"


def _safe(exc: BaseException) -> str:
    """redis-py's message without the server's address (an internal name on a private network:
    errors reach API clients and logs) and without anything that looks like a URL."""
    text = str(exc)
    for scheme in ("redis://", "rediss://", "unix://"):
        if scheme in text:
            return "connection error"
    if not isinstance(exc, redis.exceptions.ResponseError):  # the server's own words name no address
        text = without_addresses(text)
    return text[:200]


# The server's address where redis-py's messages put it: after "connecting to" / "reading from"
# (host:port, IPv6 unbracketed, or a unix socket's path), and Python's (host, port, ...) tuples
# (asyncio's "Connect call failed"). Only there: log lines hold times such as 12:30:00 too.
_AFTER_VERB = re.compile(
    r"((?:connecting to|reading from|writing to) )(?:\[[^\]]*\]:\d+|\S+?:\d+|/\S*?)(?=\.?(?:[\s),]|$))"
)
_SOCKADDR = re.compile(r"\('[^']*', \d+(?:, \d+)*\)")


def without_addresses(text: str) -> str:
    """``text`` with every server address redis-py writes into its messages replaced by ``<redis>``."""
    return _SOCKADDR.sub("<redis>", _AFTER_VERB.sub(r"\1<redis>", text))


@contextmanager
def translate_errors(action: str, writes: bool = False) -> Iterator[None]:
    """Map redis-py exceptions raised inside the block to sharedstate's tree (``writes``: the block
    sends writes, so an unanswered one has an unknown outcome)."""
    try:
        yield
    except SharedStateError:
        raise
    except redis.exceptions.ResponseError as exc:
        text = str(exc)
        if text.startswith(("OOM", "MISCONF", "READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS")):
            raise unavailable(exc, action, writes) from exc
        raise SharedStateError(f"Redis refused to {action}: {_safe(exc)}") from exc
    except _UNAVAILABLE as exc:
        raise unavailable(exc, action, writes) from exc
    except redis.exceptions.RedisError as exc:
        raise SharedStateError(f"Redis error while trying to {action}: {_safe(exc)}") from exc
