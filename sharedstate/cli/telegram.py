"""import-pickle: move a python-telegram-bot PicklePersistence file into the store."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from sharedstate.aio import AsyncSharedStore
from sharedstate.cli.context import confirm, out, settings
from sharedstate.codec import check_value
from sharedstate.errors import UsageError


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``import-pickle``."""
    cmd = commands.add_parser(
        "import-pickle",
        parents=[common],
        help="import a python-telegram-bot PicklePersistence file (for SharedStatePersistence)",
    )
    cmd.add_argument("file", type=Path, help="the pickle file (single_file=True, PTB's default)")
    cmd.add_argument(
        "--prefix", default="ptb", help="document name prefix, as SharedStatePersistence(prefix=)"
    )
    cmd.add_argument("--overwrite", action="store_true", help="replace what the store already holds")
    cmd.add_argument("-y", "--yes", action="store_true", help="confirm --overwrite without a terminal")
    cmd.set_defaults(handler=import_pickle)


def import_pickle(args: argparse.Namespace) -> int:
    try:
        from telegram.ext import PicklePersistence

        from sharedstate.integrations.telegram import SharedStatePersistence
    except ImportError:
        raise UsageError(
            "import-pickle needs python-telegram-bot: pip install 'sharedstate[telegram]'"
        ) from None
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    if args.overwrite and not confirm(f"Replace the {args.prefix}_* documents with {args.file}?", args.yes):
        out.print("import cancelled")
        return 1
    config = settings(args)

    async def run() -> str:
        source: Any = PicklePersistence(filepath=args.file)
        users, chats = await source.get_user_data(), await source.get_chat_data()
        bot, callback = await source.get_bot_data(), await source.get_callback_data()
        await source.get_conversations("")
        conversations: dict[str, dict[Any, Any]] = dict(source.conversations or {})
        # everything checked before anything is written: all or nothing, as `import`
        for user, data in users.items():
            check_value(data, f"user_data of user {user}")
        for chat, data in chats.items():
            check_value(data, f"chat_data of chat {chat}")
        check_value(bot, "bot_data")
        for name, states in conversations.items():
            for key, state in states.items():
                check_value(state, f"the state of conversation {name} {key}")
        store = AsyncSharedStore.from_settings(config, client_name="import-pickle")
        try:
            target = SharedStatePersistence(store, prefix=args.prefix)
            present = set(await store.names()) & set(target.documents.values())
            if present and not args.overwrite:
                raise UsageError(
                    f"the store already holds {', '.join(sorted(present))}; add --overwrite to replace"
                )
            for name in present:
                await store.delete(name)
            for user, data in users.items():
                await target.update_user_data(user, data)
            for chat, data in chats.items():
                await target.update_chat_data(chat, data)
            await target.update_bot_data(bot)
            if callback is not None:
                await target.update_callback_data(callback)
            count = 0
            for name, states in conversations.items():
                for key, state in states.items():
                    await target.update_conversation(name, key, state)
                    count += 1
        finally:
            await store.close()
        return f"{len(users)} users, {len(chats)} chats, bot_data, {count} conversation states"

    out.print(f"imported {asyncio.run(run())} from {args.file} into {args.prefix}_*")
    return 0
