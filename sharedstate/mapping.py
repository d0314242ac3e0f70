"""Dict-like views of one object document, for registries such as ``user_data``."""

from __future__ import annotations

from collections.abc import AsyncIterator, ItemsView, Iterator, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any

from sharedstate._core import MISS
from sharedstate.keys import validate_name

if TYPE_CHECKING:
    from sharedstate.aio import AsyncSharedStore
    from sharedstate.store import SharedStore

_MISSING: Any = object()


class StoreMapping(MutableMapping[str, Any]):
    """A MutableMapping over the top-level fields of one document.

    ``users["42"] = {...}`` is one atomic ``set_field``; ``del users["42"]`` one
    ``delete_field``; ``len``, ``in``, iteration and ``get`` read single fields or the field
    list; ``items()`` and ``values()`` read the document once (one round trip, one instant).
    Writing creates the document if it is absent.

    Mutating a nested value in place does **not** write it back::

        users["42"]["name"] = "x"      # changes a local copy only
        user = users["42"]; user["name"] = "x"; users["42"] = user   # writes it
    """

    def __init__(self, store: SharedStore, name: str) -> None:
        self.store = store
        self.name = validate_name(name)

    def __getitem__(self, key: str) -> Any:
        value = self.store.get_field(self.name, key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        self.store.set_field(self.name, key, value)

    def __delitem__(self, key: str) -> None:
        written = self.store._run(self.store._core.delete_field(self.name, key, None))
        if not written.applied:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        names = self.store._core.cached_keys(self.name)
        if names is MISS:
            names = self.store._read(self.store._core.field_names(self.name))
        return iter(names)

    def __len__(self) -> int:
        names = self.store._core.cached_keys(self.name)
        if names is not MISS:
            return len(names)
        return self.store._read(self.store._core.field_count(self.name))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.store.get_field(self.name, key, _MISSING) is not _MISSING

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``: one HGET."""
        return self.store.get_field(self.name, key, default)

    def to_dict(self) -> dict[str, Any]:
        """The whole document as a dict (``{}`` if absent)."""
        data = self.store.load(self.name, {})
        return dict(data)

    def items(self) -> ItemsView[str, Any]:
        """(key, value) pairs of one consistent read: one round trip, not one per key."""
        return self.to_dict().items()

    def values(self) -> ValuesView[Any]:
        """The values, from one consistent read (one round trip)."""
        return self.to_dict().values()

    def __repr__(self) -> str:
        return f"StoreMapping({self.name!r})"


class AsyncStoreMapping:
    """The asyncio view of one object document: the same operations, as coroutines.

    ``await users.get(k)``, ``await users.set(k, v)``, ``await users.delete(k)`` (KeyError if
    absent), ``await users.contains(k)``, ``await users.len()``, ``await users.keys()``,
    ``await users.items()``, ``await users.to_dict()`` and ``async for key in users``. As with
    StoreMapping, mutating a nested value in place does not write it back.
    """

    def __init__(self, store: AsyncSharedStore, name: str) -> None:
        self.store = store
        self.name = validate_name(name)

    async def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        return await self.store.get_field(self.name, key, default)

    async def getitem(self, key: str) -> Any:
        """The value of ``key``; KeyError if absent."""
        value = await self.store.get_field(self.name, key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    async def set(self, key: str, value: Any) -> int:
        """Set ``key`` (one atomic field write); returns the document's new version."""
        return await self.store.set_field(self.name, key, value)

    async def delete(self, key: str) -> int:
        """Remove ``key``; KeyError if it was not there. Returns the new version."""
        written = await self.store._run(self.store._core.delete_field(self.name, key, None))
        if not written.applied:
            raise KeyError(key)
        return written.version

    async def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (read, then a field delete)."""
        value = await self.store.get_field(self.name, key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise KeyError(key)
            return default
        await self.store.delete_field(self.name, key)
        return value

    async def contains(self, key: str) -> bool:
        """True if ``key`` is present."""
        return await self.store.get_field(self.name, key, _MISSING) is not _MISSING

    async def len(self) -> int:
        """Number of top-level fields."""
        names = self.store._core.cached_keys(self.name)
        if names is not MISS:
            await self.store._hit()
            return len(names)
        return await self.store._read(self.store._core.field_count(self.name))

    async def keys(self) -> list[str]:
        """The field names."""
        names = self.store._core.cached_keys(self.name)
        if names is MISS:
            return await self.store._read(self.store._core.field_names(self.name))
        await self.store._hit()
        return names

    async def items(self) -> list[tuple[str, Any]]:
        """(key, value) pairs of one consistent read."""
        return list((await self.to_dict()).items())

    async def values(self) -> list[Any]:
        """The values, from one consistent read."""
        return list((await self.to_dict()).values())

    async def to_dict(self) -> dict[str, Any]:
        """The whole document as a dict (``{}`` if absent)."""
        return dict(await self.store.load(self.name, {}))

    async def update(self, other: dict[str, Any]) -> int:
        """Set several fields in one atomic step."""
        return await self.store.merge(self.name, other)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[str]:
        for key in await self.keys():
            yield key

    def __repr__(self) -> str:
        return f"AsyncStoreMapping({self.name!r})"
