"""The example bot as a python-telegram-bot application, run offline against a real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess

ROOT = Path(__file__).parents[2]


def test_the_offline_self_test_passes_and_the_worker_sees_the_user(
    redis_server: RedisProcess, real_redis: redis.Redis
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREDSTATE_")}
    env.update(SHAREDSTATE_REDIS_URL=redis_server.url, SHAREDSTATE_NAMESPACE="tgbot", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "examples.bot.telegram_bot", "--offline"], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "offline self-test passed" in done.stdout
    store = SharedStore(real_redis, "tgbot")  # what the worker service reads
    assert store.get_field("ptb_user_data", "4242") == {"visits": 1, "building": "b7", "verified": True}
    assert store.load("ptb_conversations", {}) == {}
