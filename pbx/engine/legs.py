"""A leg: one SIP dialog between the PBX and one phone or carrier, with its media endpoint.

A call (calls.py) joins two or more legs. The leg knows its SIP side (the INVITE, the dialog,
how to answer, cancel or hang up) and its life as an explicit state machine.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbx.engine.directory import TrunkInfo
from pbx.sip import sdp
from pbx.sip.dialog import Dialog
from pbx.sip.ids import new_tag
from pbx.sip.message import Request, Response, make_response

if TYPE_CHECKING:
    from pbx.engine.media import MediaEndpoint
    from pbx.engine.stack import SipStack

log = logging.getLogger(__name__)

Addr = tuple[str, int]
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, UPDATE"  # what we take in dialogs


class LegState(enum.Enum):
    INCOMING = "incoming"  # UAS: INVITE received, not answered
    CALLING = "calling"  # UAC: INVITE sent, nothing back yet
    RINGING = "ringing"  # a provisional response was sent (UAS) or received (UAC)
    ANSWERED = "answered"  # 2xx sent or received: a confirmed dialog
    ENDING = "ending"  # CANCEL or BYE sent, waiting for the far end
    ENDED = "ended"


_TRANSITIONS: dict[LegState, frozenset[LegState]] = {
    LegState.INCOMING: frozenset({LegState.RINGING, LegState.ANSWERED, LegState.ENDED}),
    LegState.CALLING: frozenset(
        {LegState.RINGING, LegState.ANSWERED, LegState.ENDING, LegState.ENDED}
    ),
    LegState.RINGING: frozenset(
        {LegState.RINGING, LegState.ANSWERED, LegState.ENDING, LegState.ENDED}
    ),
    LegState.ANSWERED: frozenset({LegState.ENDING, LegState.ENDED}),
    LegState.ENDING: frozenset({LegState.ANSWERED, LegState.ENDED}),
    LegState.ENDED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(eq=False)
class Leg:
    """One side of a call. `role` is "uas" when the far end called us, "uac" when we called."""

    stack: SipStack
    role: str
    invite: Request
    peer: Addr
    transport: str
    media: MediaEndpoint
    label: str = ""  # what the logs and the CDR call this party: an extension or a number
    server_key: Any = None
    state: LegState = LegState.INCOMING
    local_tag: str = field(default_factory=new_tag)
    dialog: Dialog | None = None
    history: list[tuple[float, LegState]] = field(default_factory=list)
    remote_hold: bool = False  # the far end put us on hold
    device: str = ""  # the SIP username of a phone leg
    cancel_pending: bool = False
    owns_media: bool = True  # forks share the call's B endpoint until one answers
    offer: sdp.SessionDescription | None = None  # the far end's offer, until answered
    awaiting_answer: bool = False  # we offered in a 2xx: the answer comes in the ACK
    sdp_version: int = 1  # o= version of what we last sent on this leg
    trunk: TrunkInfo | None = None  # a leg toward the carrier: answers its challenges
    extension: tuple[int, str] | None = None  # (company, number) of a phone leg: busy lamp
    auth_tries: int = 0
    on_end: Callable[[Leg, str], None] | None = None

    def __post_init__(self) -> None:
        if self.role == "uac":
            self.state = LegState.CALLING

    def move(self, new: LegState) -> None:
        """Change state along the table; anything else is a bug."""
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.label}: {self.state.value} -> {new.value}")
        log.debug(
            "leg %s %s: %s -> %s", self.label, self.invite.call_id, self.state.value, new.value
        )
        self.state = new
        self.history.append((self.stack.now(), new))

    @property
    def ended(self) -> bool:
        return self.state is LegState.ENDED

    @property
    def answered(self) -> bool:
        return self.state is LegState.ANSWERED

    # --- UAS side --------------------------------------------------------------------------

    def respond(
        self,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Answer the INVITE we received (provisional or final)."""
        assert self.role == "uas"
        extra = list(headers)
        if status < 300 and status != 100:
            extra.append(("Contact", self.stack.contact(transport=self.transport)))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        tag = None if status == 100 else self.local_tag
        response = make_response(
            self.invite, status, reason, to_tag=tag, headers=tuple(extra), body=body
        )
        if 200 <= status < 300:
            self.dialog = Dialog.from_uas(self.invite, self.local_tag)
        self.stack.send_response(response)
        if 100 < status < 200 and self.state in (LegState.INCOMING, LegState.RINGING):
            self.move(LegState.RINGING)
        elif 200 <= status < 300:
            self.move(LegState.ANSWERED)
        elif status >= 300:
            self.move(LegState.ENDED)

    # --- in-dialog requests ----------------------------------------------------------------

    def send_in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        callback: Callable[[Response | None], None] | None = None,
    ) -> Request | None:
        """Send a request inside this leg's dialog (BYE, re-INVITE, NOTIFY)."""
        if self.dialog is None:
            return None
        request, _next_hop = self.dialog.create_request(
            method,
            via=self.stack.via(self.transport),
            contact=self.stack.contact(transport=self.transport),
            body=body,
            content_type=content_type,
            extra_headers=extra_headers,
        )
        # Requests go back where the far end talks to us from (NAT-safe, and what its Contact
        # says on a LAN anyway).
        self.stack.send_request(request, self.peer, self.transport, callback)
        return request

    def hangup(self, reason: str = "hangup") -> None:
        """End this leg from our side: CANCEL, reject or BYE depending on its state."""
        if self.state is LegState.ENDED:
            return
        if self.role == "uas" and self.state in (LegState.INCOMING, LegState.RINGING):
            self.respond(487 if reason == "cancelled" else 480)
        elif self.state is LegState.ANSWERED:
            self.send_in_dialog("BYE")
            self.move(LegState.ENDED)
        elif self.role == "uac" and self.state in (LegState.CALLING, LegState.RINGING):
            self.cancel()
            return
        else:
            self.move(LegState.ENDED)
        self._finish(reason)

    def cancel(self) -> None:
        """CANCEL an outgoing INVITE (RFC 3261 9.1: only once a provisional response came)."""
        from pbx.sip.transaction import make_cancel

        if self.state is LegState.CALLING:
            self.cancel_pending = True
            self.move(LegState.ENDING)
            return
        self.move(LegState.ENDING)
        self.stack.send_request(make_cancel(self.invite), self.peer, self.transport, None)

    def _finish(self, reason: str) -> None:
        if self.owns_media:
            self.media.close()
        if self.on_end is not None:
            callback, self.on_end = self.on_end, None
            callback(self, reason)

    def finish(self, reason: str) -> None:
        """Mark the leg ended (the far end ended it) and release what it holds."""
        if self.state is not LegState.ENDED:
            self.move(LegState.ENDED)
        self._finish(reason)


def reject(stack: SipStack, invite: Request, status: int, reason: str | None = None) -> None:
    """Answer an INVITE that never became a leg."""
    stack.send_response(make_response(invite, status, reason, to_tag=new_tag()))
