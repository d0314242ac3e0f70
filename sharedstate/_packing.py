"""hiredis command packing for the asyncio pools the store makes.

redis-py's asyncio connection packs every command in pure Python, where the sync one uses
``hiredis.pack_command`` (redis-py issue #4176): a sixth of a busy asyncio client's time.
``with_hiredis_packing`` gives a connection class that packs with hiredis, byte for byte as
redis-py would; anything hiredis refuses (a memoryview, a bool, a client encoding other than
UTF-8) takes redis-py's own path, with its errors. Pools a user hands in are never changed.
"""

from __future__ import annotations

from typing import Any

try:
    import hiredis
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    hiredis = None  # type: ignore[assignment]

_classes: dict[type[Any], type[Any]] = {}


def with_hiredis_packing(connection_class: type[Any]) -> type[Any]:
    """``connection_class`` packing with hiredis (asyncio connections only; others as given)."""
    if hiredis is None or not connection_class.__module__.startswith("redis.asyncio"):
        return connection_class
    if getattr(connection_class, "_sharedstate_packing", False):
        return connection_class
    made = _classes.get(connection_class)
    if made is None:
        made = _classes[connection_class] = type(
            f"Hiredis{connection_class.__name__}",
            (_HiredisPacking, connection_class),
            {"__module__": connection_class.__module__},
        )
    return made


class _HiredisPacking:
    _sharedstate_packing = True
    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        if self.encoder.encoding.lower().replace("-", "") == "utf8":
            command = args
            if isinstance(command[0], str):
                command = (*command[0].encode().split(), *command[1:])
            elif b" " in command[0]:
                command = (*command[0].split(), *command[1:])
            if not any(isinstance(arg, memoryview) for arg in command):
                parts: Any = tuple(bytes(a) if isinstance(a, bytearray) else a for a in command)
                try:
                    return [hiredis.pack_command(parts)]
                except TypeError:
                    pass  # a type hiredis does not take: redis-py's path raises its DataError
        packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
        return packed
