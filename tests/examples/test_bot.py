"""The example bot's registries and its periodic verification job."""

from __future__ import annotations

import asyncio

import fakeredis

from examples.bot import jobs, state
from sharedstate import AsyncSharedStore


def test_bot_state_and_periodic_verification() -> None:
    async def scenario() -> None:
        client = fakeredis.FakeAsyncRedis()
        store = AsyncSharedStore(client, "bot", "bot")
        now = 1_000_000.0
        await state.add_building(store, "b1", "Tower", 12)
        await state.register_interest(store, "42", "b1")
        await state.register_interest(store, "43", "b1")
        old = await state.issue_token(store, "42", now=now - state.TOKEN_LIFETIME - 1)
        fresh = await state.issue_token(store, "43", now=now)
        verified = await state.issue_token(store, "44", now=now)
        assert await state.verify_token(store, verified, now=now)
        assert not await state.verify_token(store, old, now=now)  # expired
        assert not await state.verify_token(store, "nope", now=now)
        await state.mark_contacted(store, "cluster-1", {42, 43})
        await state.mark_contacted(store, "cluster-1", {43, 44})
        assert await store.get_field(state.CONTACTED, "cluster-1") == {42, 43, 44}

        summary = await jobs.periodic_verification(store, now=now)
        assert summary == {"expired": 1, "unverified": 1, "interested": 2}
        assert sorted(await store.mapping(state.TOKENS).keys()) == sorted([fresh, verified])
        await client.aclose()

    asyncio.run(scenario())
