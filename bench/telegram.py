"""SharedStatePersistence (python-telegram-bot) next to a plain set_field, 10,000 users."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import Row, Timing, timing
from sharedstate import AsyncSharedStore
from sharedstate.redis_server import RedisProcess

USERS = 10_000


async def _measure(fn: Callable[[], Awaitable[Any]], seconds: float) -> Timing:
    for _ in range(50):
        await fn()
    latencies: list[float] = []
    start = time.perf_counter()
    while True:
        before = time.perf_counter()
        await fn()
        after = time.perf_counter()
        latencies.append(after - before)
        if after - start >= seconds:
            break
    return timing(latencies, time.perf_counter() - start)


def run(server: RedisProcess, workdir: Path, quick: bool) -> list[Row]:
    try:
        from sharedstate.integrations.telegram import SharedStatePersistence
    except ImportError:
        return [Row("telegram persistence", "skipped", "python-telegram-bot is not installed")]
    seconds = 0.5 if quick else 3.0
    users = 1_000 if quick else USERS

    async def measured() -> list[Row]:
        store = AsyncSharedStore.from_url(server.url, "bench-telegram", "bench")
        try:
            await store.put(
                "ptb_user_data", {str(u): {"score": 0, "name": f"user {u}"} for u in range(users)}
            )
            persistence = SharedStatePersistence(store)
            loaded = await persistence.get_user_data()
            counter = iter(range(10**9))

            async def one_changed() -> None:
                user = next(counter) % users
                loaded[user]["score"] += 1
                await persistence.update_user_data(user, loaded[user])

            async def plain() -> None:
                user = next(counter) % users
                await store.set_field("ptb_plain", str(user), {"score": user, "name": f"user {user}"})

            ours = await _measure(one_changed, seconds)
            baseline = await _measure(plain, seconds)
            before = (await store.info("ptb_user_data")).version
            started = time.perf_counter()
            for user, data in loaded.items():  # PTB hands over every user it thinks dirty
                await persistence.update_user_data(user, data)
            flush_seconds = time.perf_counter() - started
            after = (await store.info("ptb_user_data")).version
        finally:
            await store.close()
        return [
            Row(f"update_user_data, one changed user of {users:,}", str(ours), f"set_field: {baseline}",
                ours.ops / baseline.ops, 0.8, figures={"ours": ours.__dict__, "baseline": baseline.__dict__}),
            Row(f"flush of {users:,} unchanged users", f"{'no write' if after == before else 'WROTE'}, "
                f"{flush_seconds * 1000:.0f} ms", "", 1.0 if after == before else 0.0, 1.0,
                note="writes counted by the document's version", figures={"seconds": flush_seconds}),
        ]  # fmt: skip

    return asyncio.run(measured())
