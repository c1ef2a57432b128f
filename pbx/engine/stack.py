"""The asyncio shell around the sans-IO SIP core: parse, validate, transactions, timers.

Datagrams and stream messages come in from the transports; what the transaction layer wants
sent goes out; what it delivers goes to the transaction user (the engine); its next timer is
armed with `loop.call_at`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from pbx.engine.legs import ALLOW_OUTSIDE_DIALOGS
from pbx.engine.transport import Addr, SipTransports
from pbx.sip import transaction as tx
from pbx.sip.errors import SipParseError
from pbx.sip.headers import Via
from pbx.sip.ids import new_branch, new_tag
from pbx.sip.message import Request, Response, make_response, parse_message

# The transaction layer's received/rport stamp (RFC 3261 18.2.1, RFC 3581 4), reused so that
# the answers sent here without a transaction carry the same Via as those sent through one.
from pbx.sip.transaction import stamp_via
from pbx.sip.validate import check_request

if TYPE_CHECKING:
    from pbx.engine.registrar import Binding

log = logging.getLogger(__name__)

ResponseCallback = Callable[[Response | None], None]  # None: the transaction timed out


class TransactionUser(Protocol):
    def on_request(self, request: Request, source: Addr, transport: str, key: Any) -> None: ...

    def on_stray_response(self, response: Response, source: Addr) -> None: ...

    def on_ack_timeout(self, key: Any) -> None: ...


class SipStack:
    """One engine's SIP endpoint: UDP+TCP transports, a transaction layer and its timers."""

    def __init__(self, advertise: str, timers: tx.TimerConfig | None = None) -> None:
        self.advertise = advertise
        self.transports = SipTransports(self._on_bytes, self._tcp_closed, self._tcp_failed)
        self.layer = tx.TransactionLayer(timers or tx.TimerConfig())
        self.user: TransactionUser | None = None
        self._callbacks: dict[Any, ResponseCallback] = {}
        self._tcp_peers: set[Addr] = set()
        # The To tag of the responses to each INVITE still ringing, for the 200 to its CANCEL.
        self._invite_tags: dict[tx.TransactionKey, str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"received": 0, "malformed": 0, "sent": 0}

    @property
    def port(self) -> int:
        return self.transports.port

    async def start(self, host: str, port: int) -> None:
        self._loop = asyncio.get_running_loop()
        await self.transports.start(host, port)

    async def close(self) -> None:
        if self._timer:
            self._timer.cancel()
        await self.transports.close()

    def now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def via(self, transport: str = "udp") -> Via:
        """A fresh top Via for a request we originate."""
        return Via.parse(
            f"SIP/2.0/{transport.upper()} {self.advertise}:{self.port};branch={new_branch()};rport"
        )

    def contact(self, user: str = "centralino", transport: str = "udp") -> str:
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{user}@{self.advertise}:{self.port}{suffix}>"

    def destination(self, binding: Binding) -> Addr:
        """Where to send a request for a registered contact (see Binding.destination)."""
        return binding.destination(self.transports.connected)

    # --- input ---------------------------------------------------------------------------

    def _on_bytes(self, data: bytes, source: Addr, transport: str) -> None:
        self.stats["received"] += 1
        if transport == "tcp":
            self._tcp_peers.add(source)
        try:
            message = parse_message(data)
        except SipParseError as error:
            self.stats["malformed"] += 1
            log.info("malformed SIP from %s:%s: %s %s", *source, error.status, error.reason)
            partial = getattr(error, "partial", None)
            if isinstance(partial, Request) and partial.method != "ACK":
                status, reason = error.status, error.reason
                self._answer_statelessly(
                    partial,
                    lambda request: make_response(request, status, reason),
                    source,
                    transport,
                )
            return
        if isinstance(message, Request) and message.method != "ACK" and _check(message) is not None:
            # Checked again once stamped, so that the answer copies the stamped Via: a refusal
            # is rare, and stamping every request here would parse each top Via twice.
            self._answer_statelessly(message, _check, source, transport)
            return
        self._process(self.layer.receive(message, source, self.now(), reliable=transport == "tcp"))

    def _answer_statelessly(
        self,
        request: Request,
        answer: Callable[[Request], Response | None],
        source: Addr,
        transport: str,
    ) -> None:
        """Answer a request the transaction layer never sees: malformed, or refused."""
        with suppress(SipParseError):  # a top Via we cannot read goes back as it came
            stamp_via(request, source)
        try:
            response = answer(request)
            if response is None:
                return
            if _needs_to_tag(response):
                _add_to_tag(response, new_tag())
            data = bytes(response)
        except Exception:  # a partial request we cannot even answer: drop it
            log.debug("cannot answer malformed request from %s", source)
            return
        self.transports.send(data, source, transport)

    # --- output --------------------------------------------------------------------------

    def send_request(
        self, request: Request, dest: Addr, transport: str, callback: ResponseCallback | None
    ) -> Any:
        """Send a request in a new client transaction; `callback` gets each response."""
        if transport == "tcp":
            self._tcp_peers.add(dest)
        key, outputs = self.layer.send_request(
            request, dest, self.now(), reliable=transport == "tcp"
        )
        if callback is not None:
            self._callbacks[key] = callback
        self._process(outputs)
        return key

    def send_response(self, response: Response) -> None:
        """Send a response through the server transaction of its request.

        A final or provisional response to a request whose To had no tag gets one here
        (RFC 3261 8.2.6.2) unless the transaction user gave it one (an INVITE's leg does);
        the 200 to a CANCEL gets the tag of its INVITE's responses (RFC 3261 9.2).
        """
        method = response.cseq.method
        if _needs_to_tag(response):
            _add_to_tag(response, self._cancel_tag(response) if method == "CANCEL" else new_tag())
        self._process(self.layer.send_response(response, self.now()))
        if method == "INVITE" and response.status > 100:
            key = tx.server_key(response, method)
            tag = response.to_addr.tag
            if response.status < 200 and tag is not None:
                self._invite_tags[key] = tag
            elif response.status >= 200:  # a later CANCEL has no effect (RFC 3261 9.2)
                self._invite_tags.pop(key, None)

    def _cancel_tag(self, response: Response) -> str:
        """The To tag for a response to a CANCEL: its INVITE's, when that has one yet.

        When the INVITE got no tagged response yet, its final one (a 487) will carry the tag
        its leg chose, not this one: the engine answers the CANCEL first (runtime.py).
        """
        try:
            key = tx.server_key(response, "INVITE")  # CANCEL and INVITE share branch and CSeq
        except SipParseError:
            return new_tag()
        return self._invite_tags.get(key) or new_tag()

    def send_ack(self, ack: Request, dest: Addr, transport: str) -> None:
        if transport == "tcp":
            self._tcp_peers.add(dest)
        self._process(self.layer.send_ack(ack, dest, self.now()))

    def _tcp_failed(self, peer: Addr) -> None:
        """Requests waiting for a connection that could not be made fail now."""
        self._process(self.layer.transport_failed(peer, self.now()))

    def _tcp_closed(self, peer: Addr) -> None:
        self._tcp_peers.discard(peer)

    def _transport_for(self, addr: Addr) -> str:
        return "tcp" if addr in self._tcp_peers else "udp"

    def _process(self, outputs: list[Any]) -> None:
        # What the layer sends (an ACK for a 401, say) leaves before the TU reacts to the
        # same event, so that the far end sees the ACK before our next INVITE.
        outputs = sorted(outputs, key=lambda out: not isinstance(out, tx.SendMessage))
        for out in outputs:
            try:
                self._handle_output(out)
            except Exception:
                log.exception("error handling %s", type(out).__name__)
        self._arm_timer()

    def _handle_output(self, out: Any) -> None:
        if isinstance(out, tx.SendMessage):
            self.stats["sent"] += 1
            self.transports.send(bytes(out.message), out.addr, self._transport_for(out.addr))
        elif isinstance(out, tx.RequestReceived):
            assert self.user is not None
            self.user.on_request(out.request, out.addr, self._transport_for(out.addr), out.key)
        elif isinstance(out, tx.ResponseReceived):
            callback = self._callbacks.get(out.key)
            if out.response.status >= 200:
                self._callbacks.pop(out.key, None)
            if callback is not None:
                callback(out.response)
        elif isinstance(out, tx.TransactionTimeout):
            callback = self._callbacks.pop(out.key, None)
            if callback is not None:
                callback(None)
        elif isinstance(out, tx.StrayResponse):
            assert self.user is not None
            self.user.on_stray_response(out.response, out.addr)
        elif isinstance(out, tx.AckTimeout):
            assert self.user is not None
            self.user.on_ack_timeout(out.key)

    # --- timers --------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        when = self.layer.next_timer()
        if when is None or self._loop is None:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return  # the armed timer fires first and re-arms
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._process(self.layer.handle_timers(self.now()))


def _needs_to_tag(response: Response) -> bool:
    """Whether a response must get a To tag of ours (RFC 3261 8.2.6.2): all but a 100 do."""
    if response.status == 100:
        return False
    to = response.headers.get("To")
    if to is None:
        return False
    lowered = to.lower()
    if "tag" not in lowered:
        return True  # no tag for sure, without parsing the header (a 401...)
    if ";tag=" in lowered:
        return False  # as make_response and every phone write it: no need to parse either
    try:
        return response.to_addr.tag is None
    except SipParseError:
        return False  # a To we cannot read (a malformed request's): a tag would not mend it


def _add_to_tag(response: Response, tag: str) -> None:
    """Add a tag to the To of a response that has none (its parsed views are cached by value)."""
    to = response.headers.get("To")
    if to is not None:
        response.headers.set("To", f"{to};tag={tag}")


# The option tags a phone may require of us (RFC 4028 session timers: session_timers.py),
# and the methods the engine implements: a Require on any other method is left to the
# engine's 405, which RFC 3261 8.2.1 puts before the 420 of 8.2.2.3.
SUPPORTED = frozenset({"timer"})
IMPLEMENTED = frozenset(method.strip() for method in ALLOW_OUTSIDE_DIALOGS.split(","))


def _check(request: Request) -> Response | None:
    return check_request(request, supported=SUPPORTED if request.method in IMPLEMENTED else None)
