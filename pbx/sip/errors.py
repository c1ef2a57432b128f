"""Errors raised by the SIP message layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbx.sip.message import Request


class SipParseError(ValueError):
    """A message, header or URI from the network is malformed.

    The engine answers ``status`` (with ``reason``) when it can, using ``partial``: a Request holding
    just the headers a response copies (every Via, and the first From, To, Call-ID, CSeq that were
    present, raw, possibly malformed), or None when the message was a response or had no Via (then
    it is dropped).  Pass ``partial`` to make_response; its parsed views (top_via ...) may raise
    SipParseError, in which case answer to the source address.
    """

    def __init__(self, reason: str, status: int = 400, *, partial: Request | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, status={self.status})"
