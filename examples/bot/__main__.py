"""``python -m examples.bot``: the demo bot. Writes a little state every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal

from examples.bot import state
from sharedstate import AsyncSharedStore, StoreUnavailable

log = logging.getLogger("examples.bot")


async def _step(store: AsyncSharedStore, step: int) -> None:
    building = f"b{random.randint(1, 5)}"
    user = str(random.randint(1000, 9999))
    await state.add_building(store, building, f"Building {building}", random.randint(2, 30))
    await state.register_interest(store, user, building)
    token = await state.issue_token(store, user)
    if step % 2:
        await state.verify_token(store, token)
    await state.mark_contacted(store, f"cluster-{random.randint(1, 3)}", {int(user)})
    log.info("step %d: user %s interested in %s", step, user, building)


async def run(interval: float = 2.0) -> None:
    store = AsyncSharedStore.from_env(client_name="bot")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    step = 0
    try:
        while not stop.is_set():
            step += 1
            try:
                await _step(store, step)
            except StoreUnavailable as exc:  # as a bot's handler would: say so, carry on
                log.warning("step %d skipped: %s", step, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await store.close()


if __name__ == "__main__":
    from sharedstate.worker.process import supervised_child

    supervised_child()  # started by `sharedstate up --demo`: stop with it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bot: %(message)s")
    asyncio.run(run())
