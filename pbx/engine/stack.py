"""The asyncio shell around the sans-IO SIP core: parse, validate, transactions, timers.

Datagrams and stream messages come in from the transports; what the transaction layer wants
sent goes out; what it delivers goes to the transaction user (the engine); its next timer is
armed with `loop.call_at`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from pbx.engine.transport import Addr, SipTransports
from pbx.sip import transaction as tx
from pbx.sip.errors import SipParseError
from pbx.sip.headers import Via
from pbx.sip.ids import new_branch
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.validate import check_request

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
        self.transports = SipTransports(self._on_bytes, self._tcp_closed)
        self.layer = tx.TransactionLayer(timers or tx.TimerConfig())
        self.user: TransactionUser | None = None
        self._callbacks: dict[Any, ResponseCallback] = {}
        self._tcp_peers: set[Addr] = set()
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
                self._send_stateless(
                    make_response(partial, error.status, error.reason), source, transport
                )
            return
        if isinstance(message, Request) and message.method != "ACK":
            rejection = check_request(message)
            if rejection is not None:
                self._send_stateless(rejection, source, transport)
                return
        self._process(self.layer.receive(message, source, self.now(), reliable=transport == "tcp"))

    def _send_stateless(self, response: Response, source: Addr, transport: str) -> None:
        try:
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
        self._process(self.layer.send_response(response, self.now()))

    def send_ack(self, ack: Request, dest: Addr, transport: str) -> None:
        if transport == "tcp":
            self._tcp_peers.add(dest)
        self._process(self.layer.send_ack(ack, dest, self.now()))

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
