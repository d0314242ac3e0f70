"""The example bot as a python-telegram-bot application (``pip install sharedstate[telegram]``).

Per-user state lives in PTB's ``context.user_data``, kept by SharedStatePersistence (one field
per user, shared with the worker); the registries are sharedstate documents (``state.py``).

    TELEGRAM_TOKEN=... python -m examples.bot.telegram_bot        # polls Telegram
    python -m examples.bot.telegram_bot --offline                 # a self-test without network

Commands: ``/start``, ``/interest <building>``, ``/verify`` (then the token it sent you).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)

from examples.bot import state
from sharedstate import AsyncSharedStore
from sharedstate.integrations.telegram import SharedStatePersistence

WAITING_FOR_TOKEN = 0


class Handlers:
    """The bot's handlers, on the store that holds the registries."""

    def __init__(self, store: AsyncSharedStore) -> None:
        self.store = store

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and context.user_data is not None
        context.user_data["visits"] = context.user_data.get("visits", 0) + 1
        await update.message.reply_text(f"Welcome (visit {context.user_data['visits']}). Try /interest b1.")

    async def interest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert (
            update.message is not None and update.effective_user is not None and context.user_data is not None
        )
        building = (context.args or ["b1"])[0]
        await state.register_interest(self.store, str(update.effective_user.id), building)
        context.user_data["building"] = building
        await update.message.reply_text(f"Noted: you want news of {building}.")

    async def verify(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None and update.effective_user is not None
        token = await state.issue_token(self.store, str(update.effective_user.id))
        await update.message.reply_text(f"Send me this token back: {token}")
        return WAITING_FOR_TOKEN

    async def token_sent(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert (
            update.message is not None and update.message.text is not None and context.user_data is not None
        )
        ok = await state.verify_token(self.store, update.message.text.strip())
        context.user_data["verified"] = ok
        await update.message.reply_text("Verified." if ok else "That token is unknown or expired.")
        return ConversationHandler.END


def build(persistence: SharedStatePersistence, **builder: Any) -> Application[Any, Any, Any, Any, Any, Any]:
    """The application: ``builder`` items are ApplicationBuilder calls (``token``, ``request``, ...)."""
    app_builder = Application.builder().persistence(persistence)
    for method, value in builder.items():
        app_builder = getattr(app_builder, method)(value)
    app = app_builder.build()
    handlers = Handlers(persistence.store)
    app.add_handler(CommandHandler("start", handlers.start))
    app.add_handler(CommandHandler("interest", handlers.interest))
    app.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("verify", handlers.verify)],
            states={
                WAITING_FOR_TOKEN: [MessageHandler(filters.TEXT & ~filters.COMMAND, handlers.token_sent)]
            },
            fallbacks=[],
            name="verify",
            persistent=True,
        )
    )
    return app


async def offline_selftest() -> None:
    """Feed the bot updates without network and check what it did and stored."""
    from examples.bot.offline import OfflineRequest, message

    request = OfflineRequest()
    persistence = SharedStatePersistence.from_env(update_interval=1)
    app = build(
        persistence, token="1:offline", request=request, get_updates_request=OfflineRequest(), updater=None
    )
    async with app:
        for text in ("/start", "/interest b7", "/verify"):
            await app.process_update(message(app, 4242, text))
        token = request.sent[-1][1].rsplit(" ", 1)[-1]
        await app.process_update(message(app, 4242, token))
        await app.update_persistence()
    texts = [text for _, text in request.sent]
    assert texts[0].startswith("Welcome (visit 1)") and texts[-1] == "Verified.", texts
    store = AsyncSharedStore.from_env(client_name="selftest")
    try:
        user = await store.get_field("ptb_user_data", "4242")
        assert user == {"visits": 1, "building": "b7", "verified": True}, user
        assert (await store.get_field(state.INTEREST, "4242"))["building"] == "b7"
    finally:
        await store.close()
    sys.stdout.write(f"offline self-test passed: 4 updates, user 4242 stored as {user}\n")


def main() -> int:
    if "--offline" in sys.argv:
        asyncio.run(offline_selftest())
        return 0
    token = os.environ.get("TELEGRAM_TOKEN")
    if not token:
        sys.stderr.write("set TELEGRAM_TOKEN (or run with --offline for the self-test)\n")
        return 2
    build(SharedStatePersistence.from_env(), token=token).run_polling()
    return 0


if __name__ == "__main__":
    sys.exit(main())
