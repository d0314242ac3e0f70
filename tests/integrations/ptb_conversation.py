"""One step of a conversation in a process of its own: ``python -m tests.integrations.ptb_conversation
TEXT`` feeds TEXT from user 42 to an offline Application on SharedStatePersistence and prints what
the bot answered, one line each."""

from __future__ import annotations

import asyncio
import sys

from examples.bot.offline import OfflineRequest, application, message
from sharedstate.integrations.telegram import SharedStatePersistence
from tests.integrations.test_telegram import conversation


async def main(text: str) -> None:
    request = OfflineRequest()
    app = application(SharedStatePersistence.from_env(), request)
    app.add_handler(conversation())
    async with app:
        await app.process_update(message(app, 42, text))
        await app.update_persistence()
    for _, sent in request.sent:
        sys.stdout.write(sent + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
