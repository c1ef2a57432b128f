"""A leg: one SIP dialog between the PBX and one phone or carrier, with its media endpoint.

A call (call.py) joins two legs. The leg knows its SIP side (the INVITE, the dialog, how to
answer, cancel or hang up), its life as a state table, and where its SDP negotiation stands.
It reports nothing upwards: whoever ends a leg also decides what becomes of its call; every
move is an event (`LegChanged`) in the engine's sink.
"""

from __future__ import annotations

import enum
import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbx.engine.directory import TrunkInfo
from pbx.engine.events import EventSink, LegChanged, NullSink
from pbx.sip import sdp
from pbx.sip.dialog import Dialog
from pbx.sip.ids import new_tag
from pbx.sip.message import Request, make_response
from pbx.sip.transaction import make_cancel

if TYPE_CHECKING:
    from pbx.engine.media import MediaEndpoint
    from pbx.engine.services import ResponseCallback, SipSender
    from pbx.engine.session_timers import SessionTimer

log = logging.getLogger(__name__)

Addr = tuple[str, int]
# What we take in dialogs (and out of them: REGISTER, OPTIONS, SUBSCRIBE).
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO, UPDATE"
ALLOW_OUTSIDE_DIALOGS = f"{ALLOW}, REGISTER, SUBSCRIBE"  # SUBSCRIBE: subscriptions.py


class LegState(enum.Enum):
    INCOMING = "incoming"  # UAS: INVITE received, not answered
    CALLING = "calling"  # UAC: INVITE sent, nothing back yet
    RINGING = "ringing"  # a provisional response was sent (UAS) or received (UAC)
    ANSWERED = "answered"  # 2xx sent or received: a confirmed dialog
    CANCEL_PENDING = "cancel_pending"  # UAC: to cancel once a provisional comes (RFC 3261 9.1)
    ENDING = "ending"  # CANCEL sent, waiting for the far end's final response
    ENDED = "ended"


_TRANSITIONS: dict[LegState, frozenset[LegState]] = {
    LegState.INCOMING: frozenset({LegState.RINGING, LegState.ANSWERED, LegState.ENDED}),
    LegState.CALLING: frozenset(
        {LegState.RINGING, LegState.ANSWERED, LegState.CANCEL_PENDING, LegState.ENDED}
    ),
    # RINGING -> CALLING: a carrier challenged the INVITE; it goes again with credentials.
    LegState.RINGING: frozenset(
        {
            LegState.RINGING,
            LegState.CALLING,
            LegState.ANSWERED,
            LegState.ENDING,
            LegState.ENDED,
        }
    ),
    LegState.ANSWERED: frozenset({LegState.ENDED}),
    LegState.CANCEL_PENDING: frozenset({LegState.ENDING, LegState.ANSWERED, LegState.ENDED}),
    # ENDING -> ANSWERED: a 200 crossed our CANCEL; the leg is then hung up with a BYE.
    LegState.ENDING: frozenset({LegState.ANSWERED, LegState.ENDED}),
    LegState.ENDED: frozenset(),
}

LIVE_RINGING = frozenset({LegState.CALLING, LegState.RINGING})


class Negotiation(enum.Enum):
    """Where the leg's SDP offer/answer stands."""

    IDLE = "idle"  # nothing pending
    OFFER_RECEIVED = "offer_received"  # the far end offered (`Leg.offer`); our answer is due
    OFFER_SENT = "offer_sent"  # we offered in a 2xx: the answer comes in the ACK


class IllegalTransition(RuntimeError):
    pass


_leg_ids = itertools.count(1)


@dataclass(eq=False)
class Leg:
    """One side of a call. `role` is "uas" when the far end called us, "uac" when we called."""

    stack: SipSender
    role: str
    invite: Request
    peer: Addr
    transport: str
    media: MediaEndpoint
    label: str = ""  # what the logs and the CDR call this party: an extension or a number
    server_key: Any = None
    events: EventSink = field(default_factory=NullSink, repr=False)
    state: LegState = LegState.INCOMING
    local_tag: str = field(default_factory=new_tag)
    dialog: Dialog | None = None
    history: list[tuple[float, LegState]] = field(default_factory=list)
    remote_hold: bool = False  # the far end put us on hold
    remote_tag: str = ""  # UAC: the phone's To tag in its provisional (the early dialog)
    device: str = ""  # the SIP username of a phone leg
    owns_media: bool = True  # forks share the call's B endpoint until one answers
    offer: sdp.SessionDescription | None = None  # the far end's offer, until answered
    negotiation: Negotiation = Negotiation.IDLE
    sdp_version: int = 1  # o= version of what we last sent on this leg
    trunk: TrunkInfo | None = None  # a leg toward the carrier: answers its challenges
    extension: tuple[int, str] | None = None  # (company, number) of a phone leg: busy lamp
    auth_tries: int = 0
    call_id: str = ""  # the call it belongs to now, for events
    session_timer: SessionTimer | None = None  # RFC 4028, negotiated with the phone
    local_body: bytes = b""  # the SDP we last sent in a response (a session refresh resends it)
    id: int = field(default_factory=lambda: next(_leg_ids))

    def __post_init__(self) -> None:
        if self.role == "uac":
            self.state = LegState.CALLING
        if self.offer is not None:
            self.negotiation = Negotiation.OFFER_RECEIVED
        self._emit(None)

    def move(self, new: LegState) -> None:
        """Change state along the table; anything else is a bug."""
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.label}: {self.state.value} -> {new.value}")
        log.debug(
            "leg %s %s: %s -> %s", self.label, self.invite.call_id, self.state.value, new.value
        )
        previous, self.state = self.state, new
        self.history.append((self.stack.now(), new))
        self._emit(previous)

    def offered(self, offer: sdp.SessionDescription | None) -> None:
        """The far end sent `offer` (a re-INVITE, an UPDATE) or none (we are to offer)."""
        self.offer = offer
        self.negotiation = Negotiation.OFFER_RECEIVED if offer is not None else Negotiation.IDLE

    def belong_to(self, call_id: str) -> None:
        """The leg moved to another call ("": to none), as a transfer does; say so."""
        if call_id != self.call_id:
            self.call_id = call_id
            self._emit(self.state)

    def set_hold(self, held: bool) -> None:
        """The far end held (or resumed) the media of this leg: while it holds (sendonly,
        inactive) we send it nothing, as our answer (recvonly, inactive) says (RFC 3264)."""
        if held != self.remote_hold:
            self.remote_hold = held
            self.media.withheld = held
            self._emit(self.state)

    def _emit(self, previous: LegState | None) -> None:
        self.events.emit(
            LegChanged(
                leg_id=self.id,
                call_id=self.call_id,
                label=self.label,
                device=self.device,
                extension=self.extension,
                role=self.role,
                previous=previous,
                state=self.state,
                held=self.remote_hold,
                at=self.stack.now(),
            )
        )

    @property
    def ended(self) -> bool:
        return self.state is LegState.ENDED

    @property
    def answered(self) -> bool:
        return self.state is LegState.ANSWERED

    @property
    def unanswered(self) -> bool:
        """A UAS leg whose INVITE still waits for our final response."""
        return self.state in (LegState.INCOMING, LegState.RINGING) and self.role == "uas"

    @property
    def awaiting_answer(self) -> bool:
        return self.negotiation is Negotiation.OFFER_SENT

    @property
    def dialog_key(self) -> tuple[str, str, str] | None:
        dialog = self.dialog
        if dialog is None:
            return None
        return (dialog.call_id, dialog.local_tag, dialog.remote_tag or "")

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
            self.local_body = body
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
            self._release()

    # --- in-dialog requests ----------------------------------------------------------------

    def send_in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        callback: ResponseCallback | None = None,
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

    def hangup(self, status: int = 480) -> None:
        """End this leg from our side: reject with `status`, CANCEL or BYE, by its state.

        The caller of this method decides what becomes of the leg's call.
        """
        state = self.state
        if state is LegState.ENDED:
            return
        if self.unanswered:
            self.respond(status)
        elif state is LegState.ANSWERED:
            self.send_in_dialog("BYE")
            self.move(LegState.ENDED)
            self._release()
        elif state is LegState.CALLING:
            self.move(LegState.CANCEL_PENDING)  # RFC 3261 9.1: CANCEL once a provisional came
        elif state is LegState.RINGING:
            self.move(LegState.ENDING)
            self.stack.send_request(make_cancel(self.invite), self.peer, self.transport, None)
        # CANCEL_PENDING, ENDING: already on its way out

    def provisional_received(self, tag: str | None = None) -> None:
        """A 1xx came for our INVITE (with the far end's To `tag`, an early dialog): ringing,
        or time to send the CANCEL we held back."""
        if tag:
            self.remote_tag = tag
        if self.state is LegState.CANCEL_PENDING:
            self.move(LegState.ENDING)
            self.stack.send_request(make_cancel(self.invite), self.peer, self.transport, None)
        elif self.state in (LegState.CALLING, LegState.RINGING):
            self.move(LegState.RINGING)

    def finish(self) -> None:
        """The far end ended the leg (BYE, a final failure): mark it and release its media."""
        if self.state is not LegState.ENDED:
            self.move(LegState.ENDED)
        self._release()

    def _release(self) -> None:
        if self.owns_media:
            self.media.close()


def reject(
    stack: SipSender,
    invite: Request,
    status: int,
    reason: str | None = None,
    *,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    """Answer an INVITE that never became a leg."""
    stack.send_response(make_response(invite, status, reason, to_tag=new_tag(), headers=headers))


class DialogIndex:
    """The confirmed dialogs of the engine's legs, by (Call-ID, local tag, remote tag)."""

    def __init__(self) -> None:
        self._legs: dict[tuple[str, str, str], Leg] = {}
        self._ids: dict[int, Leg] = {}

    def add(self, leg: Leg) -> None:
        key = leg.dialog_key
        if key is not None:
            self._legs[key] = leg
            self._ids[leg.id] = leg

    def remove(self, leg: Leg) -> None:
        """In-dialog requests for `leg` get 481 from now on."""
        key = leg.dialog_key
        if key is not None and self._legs.get(key) is leg:
            del self._legs[key]
        if self._ids.get(leg.id) is leg:
            del self._ids[leg.id]

    def by_id(self, leg_id: int) -> Leg | None:
        """The leg with this id (events name legs by id), while its dialog is indexed."""
        return self._ids.get(leg_id)

    def find(self, request: Request) -> Leg | None:
        """The leg a request inside a dialog belongs to (our tag is in To, theirs in From)."""
        return self._legs.get(
            (request.call_id, request.to_addr.tag or "", request.from_addr.tag or "")
        )

    def get(self, call_id: str, local_tag: str, remote_tag: str) -> Leg | None:
        return self._legs.get((call_id, local_tag, remote_tag))

    def legs(self) -> list[Leg]:
        return list(self._legs.values())

    def __len__(self) -> int:
        return len(self._legs)
