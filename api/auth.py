"""Bearer tokens with roles read < write < admin, compared in constant time.

Tokens come from ``SHAREDSTATE_API_TOKENS`` (``role:token,...``). They are kept only as
SHA-256 digests; a request's token is hashed and compared with every configured digest
using ``secrets.compare_digest``, so timing reveals neither which token matched nor its
length. Logs name a token by its id: the first 8 hex digits of its digest.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

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
