"""What handlers need: the app's state, the caller (set by AuthMiddleware), the audit log.

Handlers read these from the request instead of FastAPI dependencies: each dependency costs
a resolution per request, and authentication is a middleware that covers every /v1 route.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis
from fastapi import Request
from fastapi.security import HTTPBearer

from sharedstate import AsyncSharedStore
from sharedstate.api.auth import ANONYMOUS_ADMIN, Principal, TokenTable
from sharedstate.api.events import ChangeHub
from sharedstate.api.metrics import Metrics
from sharedstate.api.reads import DocumentReads, render_tagged
from sharedstate.durability.target import Target
from sharedstate.errors import ConfigurationError
from sharedstate.settings import Settings

audit_log = logging.getLogger("sharedstate.audit")

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of SHAREDSTATE_API_TOKENS; its role (read < write < admin) sets what it may do.",
)
"""Only for the OpenAPI schema: the check itself is AuthMiddleware."""


@dataclass
class AppState:
    """What the app holds for its lifetime."""

    settings: Settings
    store: AsyncSharedStore
    rq: redis.Redis  # RQ's own (sync) client, used from worker threads
    tokens: TokenTable
    metrics: Metrics
    reads: DocumentReads = field(init=False)
    tagged_reads: DocumentReads = field(init=False)
    hub: ChangeHub = field(init=False)
    _target: Target | None = field(init=False, default=None)
    _target_known: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.hub = ChangeHub(self.store, self.settings.api_max_streams)
        self.reads = DocumentReads(self.store)
        self.tagged_reads = DocumentReads(self.store, render_tagged)

    def shared_target(self) -> Target | None:
        """The backup target when every service can reach it (a bucket), else None (the worker's
        volume: the API shows the catalogue the worker publishes)."""
        if not self._target_known:
            self._target_known = True
            try:
                target = self.settings.backup_target()
            except ConfigurationError as exc:
                audit_log.warning("backups: %s; showing the worker's catalogue", exc)
                return None
            self._target = target if target.shared else None
        return self._target

    def reads_in(self, dialect: str) -> DocumentReads:
        """The GET bodies in ``dialect`` (plain or tagged)."""
        return self.tagged_reads if dialect == "tagged" else self.reads


def app_state(request: Request) -> AppState:
    """The app's state (made by the lifespan)."""
    state: AppState = request.app.state.sharedstate
    return state


def caller(request: Request) -> Principal:
    """Who made the request, as AuthMiddleware found."""
    principal: Principal = request.scope.get("state", {}).get("principal", ANONYMOUS_ADMIN)
    return principal


def audit(principal: Principal, action: str, **details: object) -> None:
    """One line per write: who (role and token id, never the token), what, versions."""
    fields = " ".join(f"{key}={value}" for key, value in details.items())
    audit_log.info("role=%s token=%s action=%s %s", principal.role, principal.token_id, action, fields)
