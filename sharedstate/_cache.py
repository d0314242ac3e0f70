"""Last known copies of documents, served with ``stale=True`` while Redis is unreachable.

Copies are kept encoded (field -> msgpack bytes) so every stale read decodes fresh objects:
a caller mutating what it got can never change the copy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass(slots=True)
class Known:
    """What this process last knew of a document; ``version`` 0 means it knew it was absent."""

    version: int
    updated_at: float = 0.0
    updated_by: str = ""
    kind: str = ""
    fields: dict[str, bytes] = field(default_factory=dict)


class LastKnown:
    """A bounded, thread-safe LRU of ``Known`` copies."""

    def __init__(self, max_documents: int) -> None:
        self._max = max_documents
        self._items: OrderedDict[str, Known] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, name: str, known: Known) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._items[name] = known
            self._items.move_to_end(name)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get(self, name: str) -> Known | None:
        with self._lock:
            return self._items.get(name)

    def forget(self, name: str) -> None:
        with self._lock:
            self._items.pop(name, None)

    def apply(
        self,
        name: str,
        previous: int | None,
        known: Known,
        fields: list[tuple[str, bytes]],
        removed: tuple[str, ...] = (),
    ) -> None:
        """Apply a field write to the copy if the copy is exactly the version it was applied to.

        Otherwise the copy is left as it was: an older copy with its true version is honest,
        a copy claiming a version whose data it lacks would let a stale CAS succeed.
        """
        with self._lock:
            copy = self._items.get(name)
            if copy is None or previous is None or copy.version != previous:
                return
            if previous == 0:
                copy.fields = {}
            copy.fields.update(fields)
            for key in removed:
                copy.fields.pop(key, None)
            copy.version = known.version
            copy.updated_at = known.updated_at
            copy.updated_by = known.updated_by
            copy.kind = known.kind
