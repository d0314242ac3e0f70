"""SharedStatePersistence through a real python-telegram-bot Application, offline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from examples.bot.offline import OfflineRequest, application, message
from sharedstate import AsyncSharedStore, InvalidDocument, SharedStore
from sharedstate.integrations.telegram import SharedStatePersistence
from sharedstate.redis_server import RedisProcess

ROOT = Path(__file__).parents[2]
(ASK,) = range(1)


def conversation() -> Any:
    """/start asks a name; the next text answers it and ends the conversation."""
    from telegram import Update
    from telegram.ext import CommandHandler, ContextTypes, ConversationHandler, MessageHandler, filters

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None
        await update.message.reply_text("What is your name?")
        return ASK

    async def name(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
        assert update.message is not None and context.user_data is not None
        context.user_data["name"] = update.message.text
        await update.message.reply_text(f"Hello {update.message.text}")
        return ConversationHandler.END

    return ConversationHandler(
        entry_points=[CommandHandler("start", start)],
        states={ASK: [MessageHandler(filters.TEXT & ~filters.COMMAND, name)]},
        fallbacks=[],
        name="greeting",
        persistent=True,
    )


def _persistence(server: RedisProcess, namespace: str = "bot") -> SharedStatePersistence:
    return SharedStatePersistence(
        AsyncSharedStore.from_url(server.url, namespace, "telegram"), owns_store=True
    )


def test_a_conversation_started_in_one_process_continues_in_the_other(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        first_request, second_request = OfflineRequest(), OfflineRequest()
        first = application(_persistence(redis_server), first_request)
        first.add_handler(conversation())
        async with first:
            await first.process_update(message(first, 42, "/start"))
            await first.update_persistence()
        assert first_request.sent == [(42, "What is your name?")]

        second = application(_persistence(redis_server), second_request)  # another process's view
        second.add_handler(conversation())
        async with second:
            await second.process_update(message(second, 42, "Ada"))
            await second.update_persistence()
        assert second_request.sent == [(42, "Hello Ada")]

    asyncio.run(run())
    store = SharedStore(real_redis, "bot")
    assert store.load("ptb_user_data") == {"42": {"name": "Ada"}}
    assert store.load("ptb_conversations", {}) == {}  # ended: the state is gone


def test_a_conversation_moves_between_two_os_processes(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHAREDSTATE_REDIS_URL": redis_server.url,
           "SHAREDSTATE_NAMESPACE": "bot"}  # fmt: skip

    def step(text: str) -> str:
        done = subprocess.run([sys.executable, "-m", "tests.integrations.ptb_conversation", text], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert step("/start") == "What is your name?\n"
    assert step("Grace") == "Hello Grace\n"  # a second process continues where the first stopped
    assert step("Grace") == ""  # the conversation ended: plain text starts nothing
    assert SharedStore(real_redis, "bot").get_field("ptb_user_data", "42") == {"name": "Grace"}


def test_user_chat_bot_and_callback_data_round_trip(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        persistence = _persistence(redis_server)
        await persistence.update_user_data(7, {"score": 3, "seen": [1, 2]})
        await persistence.update_chat_data(-100, {"title": "group"})
        await persistence.update_bot_data({"motd": "hi", "admins": [7]})
        await persistence.update_callback_data(([("uuid-1", 1.5, {"button": "ok"})], {"10": "uuid-1"}))
        await persistence.update_conversation("greeting", (7, 7), 0)
        fresh = _persistence(redis_server)
        assert await fresh.get_user_data() == {7: {"score": 3, "seen": [1, 2]}}
        assert await fresh.get_chat_data() == {-100: {"title": "group"}}
        assert await fresh.get_bot_data() == {"motd": "hi", "admins": [7]}
        assert await fresh.get_callback_data() == ([("uuid-1", 1.5, {"button": "ok"})], {"10": "uuid-1"})
        assert await fresh.get_conversations("greeting") == {(7, 7): 0}
        assert await fresh.get_conversations("other") == {}
        await fresh.update_bot_data({"motd": "hi"})  # a removed key goes
        await fresh.drop_user_data(7)
        await persistence.flush()
        await fresh.flush()

    asyncio.run(run())
    store = SharedStore(real_redis, "bot")
    assert store.load("ptb_bot_data") == {"motd": "hi"} and store.load("ptb_user_data") == {}


def test_unchanged_data_writes_nothing_and_refresh_reads_the_other_process(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        ours, theirs = _persistence(redis_server), _persistence(redis_server)
        for user in range(100):
            await ours.update_user_data(user, {"n": user})
        version = SharedStore(real_redis, "bot").info("ptb_user_data").version
        for user in range(100):  # PTB hands over every user it thinks dirty: none changed
            await ours.update_user_data(user, {"n": user})
        assert SharedStore(real_redis, "bot").info("ptb_user_data").version == version

        mine = {"n": 5}
        await theirs.get_user_data()
        await ours.update_user_data(5, {"n": 55})  # another process changes user 5
        await theirs.refresh_user_data(5, mine)
        assert mine == {"n": 55}
        mine["n"] = 56  # changed here, not yet written: a refresh keeps it
        await theirs.refresh_user_data(5, mine)
        assert mine == {"n": 56}
        await theirs.update_user_data(5, mine)
        await ours.flush()
        await theirs.flush()

    asyncio.run(run())
    assert SharedStore(real_redis, "bot").get_field("ptb_user_data", "5") == {"n": 56}


def test_data_json_cannot_hold_is_refused_naming_the_user_and_key(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    async def run() -> None:
        persistence = _persistence(redis_server)
        with pytest.raises(InvalidDocument, match=r"user_data of user 9 at \$\.when"):
            await persistence.update_user_data(9, {"when": object()})
        with pytest.raises(InvalidDocument, match=r"user_data of user 9 at \$ is a key of type int"):
            await persistence.update_user_data(9, {1: "int key"})
        await persistence.flush()

    asyncio.run(run())
    assert SharedStore(real_redis, "bot").load("ptb_user_data") is None


def test_two_processes_with_a_thousand_users_each_overwrite_nothing(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHAREDSTATE_REDIS_URL": redis_server.url,
           "SHAREDSTATE_NAMESPACE": "bot"}  # fmt: skip
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integrations.ptb_process", str(first), "1000", "5"],
            env=env,
            cwd=ROOT,
        )
        for first in (0, 1000)
    ]
    assert [child.wait(300) for child in children] == [0, 0]
    users = SharedStore(real_redis, "bot").load("ptb_user_data")
    assert len(users) == 2000
    assert all(users[str(user)] == {"round": 4, "user": user} for user in range(2000))


def _pickle(path: Path, user_data: dict[str, Any]) -> None:
    from telegram.ext import PicklePersistence

    async def run() -> None:
        source = PicklePersistence(filepath=path)
        await source.get_user_data()
        await source.get_conversations("greeting")
        await source.update_user_data(7, user_data)
        await source.update_chat_data(-5, {"title": "group"})
        await source.update_bot_data({"motd": "hi"})
        await source.update_conversation("greeting", (7, 7), 0)
        await source.flush()

    asyncio.run(run())


def test_import_pickle_moves_a_pickle_persistence_file(
    redis_server: RedisProcess, real_redis: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import datetime

    from sharedstate.cli import main

    monkeypatch.setenv("SHAREDSTATE_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SHAREDSTATE_NAMESPACE", "bot")
    _pickle(tmp_path / "bad.pickle", {"when": datetime.datetime(2026, 1, 1)})
    assert main(["import-pickle", str(tmp_path / "bad.pickle")]) == 2
    assert "user_data of user 7 at $.when" in capsys.readouterr().err
    assert SharedStore(real_redis, "bot").names() == []  # checked first: nothing written

    _pickle(tmp_path / "bot.pickle", {"score": 3})
    assert main(["import-pickle", str(tmp_path / "bot.pickle")]) == 0
    store = SharedStore(real_redis, "bot")
    assert store.load("ptb_user_data") == {"7": {"score": 3}} and store.load("ptb_chat_data") == {
        "-5": {"title": "group"}
    }
    assert store.load("ptb_bot_data") == {"motd": "hi"}
    assert store.load("ptb_conversations") == {'["greeting",7,7]': 0}
    assert main(["import-pickle", str(tmp_path / "bot.pickle")]) == 2  # again: refused, it exists
    assert "--overwrite" in capsys.readouterr().err
    assert main(["import-pickle", str(tmp_path / "missing.pickle")]) == 2
