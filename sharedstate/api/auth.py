"""Bearer tokens with roles read < write < admin, compared in constant time.

Tokens come from ``SHAREDSTATE_API_TOKENS`` (``role:token,...``). They are kept only as
SHA-256 digests; a request's token is hashed and compared with every configured digest
using ``secrets.compare_digest``, so timing reveals neither which token matched nor its
length. Logs name a token by its id: the first 8 hex digits of its digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from sharedstate.settings import ROLES, Role

LEVEL: dict[str, int] = {role: rank for rank, role in enumerate(ROLES, start=1)}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a role and a token id (never the token)."""

    role: Role
    token_id: str

    def allows(self, role: Role) -> bool:
        return LEVEL[self.role] >= LEVEL[role]


ANONYMOUS_ADMIN = Principal("admin", "none")
"""Used only when no tokens are configured, which `sharedstate api` allows on loopback only."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class TokenTable:
    """The configured tokens, as digests."""

    def __init__(self, tokens: dict[str, Role]) -> None:
        self._entries = [(_digest(token), role) for token, role in tokens.items()]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def identify(self, token: str) -> Principal | None:
        """The principal of ``token``, or None. Compares with every entry, match or not."""
        candidate = _digest(token)
        found: Principal | None = None
        for digest, role in self._entries:
            if secrets.compare_digest(candidate, digest):
                found = Principal(role, digest.hex()[:8])
        return found


def required_role(method: str, path: str) -> Role | None:
    """The least role a request needs (None: public). Every /v1 path and /metrics are protected,
    so a route added later is covered without anyone remembering to protect it."""
    if not (path.startswith("/v1/") or path in ("/v1", "/metrics")):
        return None
    if method == "POST" and (path in ("/v1/snapshots", "/v1/restore") or _RESTORE.fullmatch(path)):
        return "admin"
    if method in ("GET", "HEAD", "OPTIONS"):
        return "read"
    return "write"


_RESTORE = re.compile(r"/v1/snapshots/[^/]+/restore")
_LOOPBACK_HOST = re.compile(r"(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?", re.IGNORECASE)
_LOOPBACK_ORIGIN = re.compile(r"https?://" + _LOOPBACK_HOST.pattern, re.IGNORECASE)


def foreign_request(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a request may come from a web page rather than from this machine (None: it may not).

    Without tokens the API trusts whatever reaches loopback; a browser reaches it too, for any
    web page: a foreign ``Origin`` (a cross-site POST, even text/plain) or a ``Host`` that is not
    a loopback name (DNS rebinding) is refused.
    """
    host = origin = b""
    for name, value in headers:
        if name == b"host":
            host = value
        elif name == b"origin":
            origin = value
    if not _LOOPBACK_HOST.fullmatch(host.decode("latin-1")):
        return "the Host header is not a loopback name (localhost, 127.0.0.1, [::1])"
    if origin and not _LOOPBACK_ORIGIN.fullmatch(origin.decode("latin-1")):
        return "requests from other origins are refused while the API runs without tokens"
    return None


class AuthMiddleware:
    """Checks the bearer token of every protected request; puts the Principal in scope["state"]."""

    def __init__(self, app: ASGIApp, tokens: Callable[[], TokenTable]) -> None:
        self.app = app
        self.tokens = tokens

    async def _refuse(self, send: Send, status: int, code: str, detail: str) -> None:
        body = json.dumps({"error": code, "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        role = required_role(scope["method"], scope["path"])
        principal = ANONYMOUS_ADMIN
        tokens = self.tokens()
        if not tokens and (why := foreign_request(scope["headers"])) is not None:
            await self._refuse(send, 403, "forbidden_origin", why)
            return
        if role is not None and tokens:
            header = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
            scheme, _, token = header.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                await self._refuse(
                    send, 401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)"
                )
                return
            found = tokens.identify(token.strip())
            if found is None:
                await self._refuse(send, 401, "unauthorized", "unknown token")
                return
            if not found.allows(role):
                await self._refuse(
                    send, 403, "forbidden", f"this token's role is {found.role}; {role} is needed"
                )
                return
            principal = found
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
