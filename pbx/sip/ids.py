"""Identifiers that SIP wants unique: Via branches, From/To tags and Call-IDs."""

from __future__ import annotations

import secrets

# RFC 3261 8.1.1.7: branches that start with this cookie promise global uniqueness.
MAGIC_COOKIE = "z9hG4bK"


def new_branch() -> str:
    """Return a fresh RFC 3261 Via branch (magic cookie + 64 random bits)."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    """Return a fresh From/To tag (48 random bits; RFC 3261 19.3 asks for at least 32)."""
    return secrets.token_hex(6)


def new_call_id(host: str | None = None) -> str:
    """Return a fresh Call-ID, `random@host` when a host is given.

    The random part is cryptographic (RFC 3261 8.1.1.4) so that Call-IDs cannot be guessed.
    """
    token = secrets.token_hex(12)
    return f"{token}@{host}" if host else token
