"""A fake SIP stack: it records what the call layer sends and keeps the response callbacks,
so that a test reads the SIP back and hands responses (or timeouts) in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pbx.engine.registrar import Binding
from pbx.engine.services import Addr, ResponseCallback
from pbx.sip.headers import Via
from pbx.sip.ids import new_branch
from pbx.sip.message import Request, Response
from tests.unit.fakes.clock import FakeClock

ADVERTISE = "192.0.2.1"  # the PBX's address in Contact, Via and SDP


@dataclass
class Sent:
    """One message the call layer handed to the SIP stack."""

    message: Request | Response
    dest: Addr | None = None  # None for a response: it goes back the way its request came
    callback: ResponseCallback | None = None


def _same_transaction(response: Response, request: Request) -> bool:
    return (
        response.call_id == request.call_id
        and response.cseq.number == request.cseq.number
        and response.cseq.method == request.method
        and response.branch == request.branch
    )


class FakeStack:
    """A `SipSender` that records what it is told to send and keeps the response callbacks."""

    advertise = ADVERTISE
    port = 5060

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[Sent] = []

    def now(self) -> float:
        return self.clock.now()

    def via(self, transport: str = "udp") -> Via:
        return Via.parse(
            f"SIP/2.0/{transport.upper()} {ADVERTISE}:{self.port};branch={new_branch()};rport"
        )

    def contact(self, user: str = "centralino", transport: str = "udp") -> str:
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{user}@{ADVERTISE}:{self.port}{suffix}>"

    def send_request(
        self, request: Request, dest: Addr, transport: str, callback: ResponseCallback | None
    ) -> Any:
        self.sent.append(Sent(request, dest, callback))
        return request.branch

    def send_response(self, response: Response) -> None:
        self.sent.append(Sent(response))

    def send_ack(self, ack: Request, dest: Addr, transport: str) -> None:
        self.sent.append(Sent(ack, dest))

    def destination(self, binding: Binding) -> Addr:
        return binding.source

    # --- what tests read and do ------------------------------------------------------------

    def requests_to(self, addr: Addr) -> list[Request]:
        return [s.message for s in self.sent if isinstance(s.message, Request) and s.dest == addr]

    def responses_to(self, request: Request) -> list[Response]:
        return [
            s.message
            for s in self.sent
            if isinstance(s.message, Response) and _same_transaction(s.message, request)
        ]

    def waits_for(self, request: Request) -> bool:
        """Whether whoever sent `request` listens for its responses."""
        return any(s.message is request and s.callback is not None for s in self.sent)

    def deliver(self, request: Request, response: Response | None) -> None:
        """Hand `response` (None: timer B fired) to whoever sent `request`."""
        sent = next(s for s in reversed(self.sent) if s.message is request)
        assert sent.callback is not None, f"nobody waits for responses to {request.method}"
        sent.callback(response)
