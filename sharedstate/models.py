"""The small immutable value types the store hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["put", "merge", "set_field", "delete_field", "delete", "restore"]


@dataclass(frozen=True, slots=True)
class Document:
    """A document as read at one instant.

    ``stale`` is True when Redis was unreachable and this is the last copy this process knew.
    """

    name: str
    data: Any
    version: int
    updated_at: float
    updated_by: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change feed or of a document's history.

    ``fields`` holds the values written: the whole document for ``put`` and ``restore``, the
    fields set for ``merge`` and ``set_field``, ``{}`` for ``delete_field`` (whose field names
    are in ``removed``) and None for ``delete``. When the values were larger than the store's
    ``payload_limit`` they are not kept: ``omitted`` is True and ``fields`` None (read the
    document instead). ``id`` is the position in the feed, usable as ``watch(after=...)``.
    """

    id: str
    name: str
    version: int
    op: str
    fields: Any
    writer: str
    time: float
    removed: tuple[str, ...] = ()
    omitted: bool = False


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A document's metadata without its data: ``kind`` is "object" or "value"."""

    name: str
    version: int
    updated_at: float
    updated_by: str
    kind: str
    size: int  # encoded bytes (field names plus msgpack values)

    def __post_init__(self) -> None:
        kinds = {"o": "object", "v": "value"}
        object.__setattr__(self, "kind", kinds.get(self.kind, self.kind))


@dataclass(frozen=True, slots=True)
class Written:
    """What one write did: the new version, the server's time, the change feed id."""

    version: int
    time: float
    feed_id: str
    previous: int | None  # the version written over (0: none); None when unknown (a re-sent write)
    applied: bool = True  # False when there was nothing to delete
