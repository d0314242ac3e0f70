"""The bot's periodic verification, run by the worker (``SHAREDSTATE_VERIFY_JOB``)."""

from __future__ import annotations

import time
from typing import Any

from examples.bot import state
from sharedstate import AsyncSharedStore


async def periodic_verification(
    store: AsyncSharedStore | None = None, now: float | None = None
) -> dict[str, Any]:
    """Expire old verification tokens and count what is still unverified.

    Called with no arguments by the worker (the store then comes from the environment). Each
    expired token is removed with one field delete, so the bot can keep writing meanwhile.
    """
    own = store is None
    store = store or AsyncSharedStore.from_env(client_name="verification")
    try:
        now = now or time.time()
        tokens = store.mapping(state.TOKENS)
        expired = 0
        unverified = 0
        for token, entry in (await tokens.to_dict()).items():
            if entry["expires_at"] <= now:
                try:
                    await tokens.delete(token)
                    expired += 1
                except KeyError:
                    pass  # verified or removed by the bot meanwhile
            elif not entry["verified"]:
                unverified += 1
        interested = await store.mapping(state.INTEREST).len()
        return {"expired": expired, "unverified": unverified, "interested": interested}
    finally:
        if own:
            await store.close()
