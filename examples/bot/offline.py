"""A python-telegram-bot Application that runs without network (the example bot's self-test and the
tests use it): its Bot API calls are answered here (getMe, sendMessage), the way PTB's own tests
replace the request layer."""

from __future__ import annotations

import itertools
import json
from typing import Any

from telegram import Update
from telegram.ext import Application, BasePersistence
from telegram.request import BaseRequest, RequestData

BOT = {"id": 1, "is_bot": True, "first_name": "Offline", "username": "offline_bot", "can_join_groups": True,
       "can_read_all_group_messages": False, "supports_inline_queries": False}  # fmt: skip


class OfflineRequest(BaseRequest):
    """Answers the Bot API from memory; ``sent`` holds the texts the bot sent, per chat."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self._ids = itertools.count(1000)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    @property
    def read_timeout(self) -> float:
        return 1.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.parameters) if request_data is not None else {}
        result: Any = True
        if endpoint == "getMe":
            result = BOT
        elif endpoint == "sendMessage":
            chat = int(params["chat_id"])
            self.sent.append((chat, str(params["text"])))
            result = {"message_id": next(self._ids), "date": 0, "chat": {"id": chat, "type": "private"},
                      "text": params["text"], "from": BOT}  # fmt: skip
        return 200, json.dumps({"ok": True, "result": result}).encode()


def application(
    persistence: BasePersistence[Any, Any, Any], request: OfflineRequest
) -> Application[Any, Any, Any, Any, Any, Any]:
    """An Application with ``persistence`` and no updater, talking to ``request``."""
    return (
        Application.builder().token("1:offline").request(request).get_updates_request(OfflineRequest())
        .persistence(persistence).updater(None).build()
    )  # fmt: skip


_updates = itertools.count(1)


def message(app: Application[Any, Any, Any, Any, Any, Any], user: int, text: str) -> Update:
    """An update carrying ``text`` from ``user`` in their private chat (a command if it starts with /)."""
    payload: dict[str, Any] = {
        "message_id": next(_updates), "date": 0, "text": text, "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": f"u{user}"},
    }  # fmt: skip
    if text.startswith("/"):
        payload["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return Update.de_json({"update_id": next(_updates), "message": payload}, app.bot)
