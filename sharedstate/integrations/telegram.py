"""python-telegram-bot persistence in the store: ``SharedStatePersistence``.

Each user's and chat's data is one field of a document (``ptb_user_data``, ``ptb_chat_data``),
each conversation state one field of ``ptb_conversations``; ``bot_data`` and ``callback_data``
are documents of their own. A process writes a user, chat or conversation only when it differs
from what it last wrote or read, one field write each, so the bot and its worker never overwrite
each other's users and chats; ``refresh_*`` (called by PTB before each update) reads what another
process wrote. JSON only, never pickle: data JSON cannot hold raises InvalidDocument naming the
user or chat and the key, at the update that put it there.

    from sharedstate.integrations.telegram import SharedStatePersistence
    app = Application.builder().token(TOKEN).persistence(SharedStatePersistence.from_env()).build()
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from telegram.ext import BasePersistence, PersistenceInput

from sharedstate.aio import AsyncSharedStore
from sharedstate.codec import check_value

__all__ = ["SharedStatePersistence"]

Data = dict[Any, Any]
CallbackData = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]
_MISSING = object()
KINDS = ("user_data", "chat_data", "bot_data", "callback_data", "conversations")


class SharedStatePersistence(BasePersistence[Data, Data, Data]):
    """A ``telegram.ext.BasePersistence`` that several processes can share.

    ``store``: the AsyncSharedStore to keep the data in; ``prefix``: of the document names
    (``<prefix>_user_data``, ...); ``update_interval``: seconds between PTB's flushes of what
    changed (keep it short when another process reads the same users: PTB writes only then).
    """

    def __init__(
        self,
        store: AsyncSharedStore,
        *,
        prefix: str = "ptb",
        store_data: PersistenceInput | None = None,
        update_interval: float = 5,
        owns_store: bool = False,
    ) -> None:
        super().__init__(store_data=store_data, update_interval=update_interval)
        self.store = store
        self.documents = {kind: f"{prefix}_{kind}" for kind in KINDS}
        self._owns_store = owns_store
        # (kind, field) -> a copy of what was last written or read: what "unchanged" means
        self._known: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_env(cls, **options: Any) -> SharedStatePersistence:
        """A persistence on the store SHAREDSTATE_* describe (closed by PTB's final flush)."""
        return cls(AsyncSharedStore.from_env(client_name="telegram"), owns_store=True, **options)

    # -- users and chats: one field each ------------------------------------------------------

    async def get_user_data(self) -> dict[int, Data]:
        return await self._per_id("user_data")

    async def get_chat_data(self) -> dict[int, Data]:
        return await self._per_id("chat_data")

    async def update_user_data(self, user_id: int, data: Data) -> None:
        await self._write_field("user_data", str(user_id), data, f"user_data of user {user_id}")

    async def update_chat_data(self, chat_id: int, data: Data) -> None:
        await self._write_field("chat_data", str(chat_id), data, f"chat_data of chat {chat_id}")

    async def refresh_user_data(self, user_id: int, user_data: Data) -> None:
        await self._refresh_field("user_data", str(user_id), user_data)

    async def refresh_chat_data(self, chat_id: int, chat_data: Data) -> None:
        await self._refresh_field("chat_data", str(chat_id), chat_data)

    async def drop_user_data(self, user_id: int) -> None:
        await self._drop_field("user_data", str(user_id))

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._drop_field("chat_data", str(chat_id))

    # -- bot data: a document, written by the top-level keys that changed ------------------------

    async def get_bot_data(self) -> Data:
        data = await self.store.load(self.documents["bot_data"], {})
        self._known[("bot_data", "")] = copy.deepcopy(data)
        return dict(data)

    async def update_bot_data(self, data: Data) -> None:
        known = self._known.get(("bot_data", ""), {})
        if data == known:
            return
        check_value(data, "bot_data")
        name = self.documents["bot_data"]
        changed = {key: value for key, value in data.items() if key not in known or known[key] != value}
        if changed:
            await self.store.merge(name, changed)
        for key in [key for key in known if key not in data]:
            await self.store.delete_field(name, key)
        self._known[("bot_data", "")] = copy.deepcopy(data)

    async def refresh_bot_data(self, bot_data: Data) -> None:
        fresh = await self.store.load(self.documents["bot_data"], {})
        self._adopt(("bot_data", ""), bot_data, fresh)

    # -- callback data and conversations ---------------------------------------------------

    async def get_callback_data(self) -> CallbackData | None:
        stored = await self.store.load(self.documents["callback_data"], None)
        if stored is None:
            return None
        self._known[("callback_data", "")] = copy.deepcopy(stored)
        buttons, by_message = stored
        return [(uuid, float(when), dict(data)) for uuid, when, data in buttons], dict(by_message)

    async def update_callback_data(self, data: CallbackData) -> None:
        buttons, by_message = data
        value = [[[uuid, when, items] for uuid, when, items in buttons], dict(by_message)]
        if self._known.get(("callback_data", ""), _MISSING) == value:
            return
        check_value(value, "callback_data")
        await self.store.put(self.documents["callback_data"], value)
        self._known[("callback_data", "")] = copy.deepcopy(value)

    async def get_conversations(self, name: str) -> dict[tuple[int | str, ...], object]:
        stored: Mapping[str, Any] = await self.store.load(self.documents["conversations"], {})
        states: dict[tuple[int | str, ...], object] = {}
        for field, state in stored.items():
            handler, *key = json.loads(field)
            if handler == name:
                states[tuple(key)] = state
                self._known[("conversations", field)] = copy.deepcopy(state)
        return states

    async def update_conversation(
        self, name: str, key: tuple[int | str, ...], new_state: object | None
    ) -> None:
        field = json.dumps([name, *key], separators=(",", ":"))
        if new_state is None:
            await self._drop_field("conversations", field)
        else:
            await self._write_field(
                "conversations", field, new_state, f"the state of conversation {name} {key}"
            )

    async def flush(self) -> None:
        """Nothing waits: every update is written when PTB hands it over. Closes an owned store."""
        if self._owns_store:
            await self.store.close()

    # -- the field writes ----------------------------------------------------------------------

    async def _per_id(self, kind: str) -> dict[int, Data]:
        stored: Mapping[str, Any] = await self.store.load(self.documents[kind], {})
        found: dict[int, Data] = {}
        for field, data in stored.items():
            self._known[(kind, field)] = copy.deepcopy(data)
            found[int(field)] = data
        return found

    async def _write_field(self, kind: str, field: str, data: Any, where: str) -> None:
        if self._known.get((kind, field), _MISSING) == data:
            return  # unchanged since written or read: no write
        check_value(data, where)
        await self.store.set_field(self.documents[kind], field, data)
        self._known[(kind, field)] = copy.deepcopy(data)

    async def _refresh_field(self, kind: str, field: str, local: Data) -> None:
        fresh = await self.store.get_field(self.documents[kind], field, _MISSING)
        if fresh is not _MISSING:
            self._adopt((kind, field), local, fresh)

    def _adopt(self, known_key: tuple[str, str], local: Data, fresh: Any) -> None:
        """Take what the store has into PTB's dict, unless this process changed it since it last
        wrote or read it: then its own change stands (PTB writes it at its next flush)."""
        known = self._known.get(known_key, _MISSING)
        if known is not _MISSING and local != known:
            return
        if isinstance(fresh, dict) and local != fresh:
            local.clear()
            local.update(copy.deepcopy(fresh))
        self._known[known_key] = copy.deepcopy(fresh)

    async def _drop_field(self, kind: str, field: str) -> None:
        await self.store.delete_field(self.documents[kind], field)
        self._known.pop((kind, field), None)
