"""Jobs the worker tests schedule. Each records what it did in a Redis list named by SAMPLE_KEY."""

from __future__ import annotations

import asyncio
import json
import os
import time

import redis


def _log(event: str, **fields: object) -> None:
    client = redis.Redis.from_url(os.environ["SHAREDSTATE_REDIS_URL"])
    client.rpush(
        os.environ["SAMPLE_KEY"], json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields})
    )
    client.close()


def quick() -> str:
    _log("run")
    return "fine"


def slow() -> str:
    _log("start")
    time.sleep(float(os.environ.get("SAMPLE_SLEEP", "2.5")))
    _log("end")
    return "slow and fine"


def failing() -> None:
    _log("run")
    raise RuntimeError("the verification found a problem")


async def asynchronous() -> str:
    await asyncio.sleep(0.01)
    _log("run")
    return "async fine"
