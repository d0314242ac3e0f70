"""The bot's registries as views on the shared store (each item write is one atomic field write)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sharedstate import AsyncSharedStore

BUILDINGS = "buildings"
INTEREST = "interest_pool"
TOKENS = "verification_tokens"
CONTACTED = "contacted"
TOKEN_LIFETIME = 15 * 60  # seconds a verification token stays valid


async def add_building(store: AsyncSharedStore, building_id: str, name: str, floors: int) -> None:
    """Register a building."""
    await store.mapping(BUILDINGS).set(building_id, {"name": name, "floors": floors, "added_at": time.time()})


async def register_interest(store: AsyncSharedStore, user_id: str, building_id: str) -> None:
    """A user wants to hear about a building."""
    await store.mapping(INTEREST).set(user_id, {"building": building_id, "since": time.time()})


async def issue_token(store: AsyncSharedStore, user_id: str, now: float | None = None) -> str:
    """A verification token for a user, valid for TOKEN_LIFETIME seconds."""
    token = secrets.token_urlsafe(8)
    expires = (now or time.time()) + TOKEN_LIFETIME
    await store.mapping(TOKENS).set(token, {"user": user_id, "expires_at": expires, "verified": False})
    return token


async def verify_token(store: AsyncSharedStore, token: str, now: float | None = None) -> bool:
    """Mark a token verified if it exists and has not expired (compare-and-set on the document)."""
    outcome = {"ok": False}

    def mark(tokens: dict[str, Any]) -> dict[str, Any]:
        entry = tokens.get(token)
        outcome["ok"] = entry is not None and entry["expires_at"] > (now or time.time())
        if entry is not None and outcome["ok"]:
            tokens[token] = {**entry, "verified": True}
        return tokens

    await store.update(TOKENS, mark)
    return outcome["ok"]


async def mark_contacted(store: AsyncSharedStore, cluster: str, user_ids: set[int]) -> None:
    """Remember that these users of a cluster were contacted (read-modify-write of one field)."""

    def add(contacted: dict[str, Any]) -> dict[str, Any]:
        contacted[cluster] = set(contacted.get(cluster, set())) | user_ids
        return contacted

    await store.update(CONTACTED, add)
