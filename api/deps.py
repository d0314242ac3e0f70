"""Dependencies: the store, the settings, the RQ connection and the caller's role."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import ANONYMOUS_ADMIN, Principal, TokenTable
from api.errors import APIError
from api.metrics import Metrics
from sharedstate import AsyncSharedStore
from sharedstate.settings import Role, Settings

audit_log = logging.getLogger("sharedstate.audit")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of SHAREDSTATE_API_TOKENS; its role (read < write < admin) sets what it may do.",
)


@dataclass
class AppState:
    """What the app holds for its lifetime."""

    settings: Settings
    store: AsyncSharedStore
    rq: redis.Redis  # RQ's own (sync) client, used from worker threads
    tokens: TokenTable
    metrics: Metrics


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.sharedstate
    return state


StateDep = Annotated[AppState, Depends(_state)]


def _store(request: Request) -> AsyncSharedStore:
    return _state(request).store


StoreDep = Annotated[AsyncSharedStore, Depends(_store)]


def require(role: Role) -> object:
    """A dependency admitting callers whose token has at least ``role``."""

    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
    ) -> Principal:
        tokens = _state(request).tokens
        if not tokens:
            return ANONYMOUS_ADMIN
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise APIError(
                401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)", challenge
            )
        principal = tokens.identify(credentials.credentials)
        if principal is None:
            raise APIError(401, "unauthorized", "unknown token", challenge)
        if not principal.allows(role):
            raise APIError(403, "forbidden", f"this token's role is {principal.role}; {role} is needed")
        return principal

    return Depends(check)


Reader = Annotated[Principal, require("read")]
Writer = Annotated[Principal, require("write")]
Admin = Annotated[Principal, require("admin")]


def audit(principal: Principal, action: str, **details: object) -> None:
    """One line per write: who (role and token id, never the token), what, versions."""
    fields = " ".join(f"{key}={value}" for key, value in details.items())
    audit_log.info("role=%s token=%s action=%s %s", principal.role, principal.token_id, action, fields)
