"""Server transactions (RFC 3261 17.2, RFC 6026) and where their responses go (18.2.2, 3581)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbx.sip.message import Request, Response
from pbx.sip.transaction_client import (
    NON_INVITE_TRANSITIONS,
    AckMissing,
    Action,
    Addr,
    IllegalTransition,
    PassUp,
    TimedOut,
    Timer,
    Transaction,
    Transmit,
    TxnState,
)

if TYPE_CHECKING:
    from pbx.sip.headers import Via
    from pbx.sip.transaction import TimerConfig

S = TxnState

_SECURE_TRANSPORTS = frozenset({"TLS", "WSS"})


def default_port(transport: str) -> int:
    """The port a Via or URI without one means (RFC 3261 18.2.2, 19.1.2)."""
    return 5061 if transport.upper() in _SECURE_TRANSPORTS else 5060


def response_destination(via: Via, source: Addr, reliable: bool) -> Addr:
    """Where responses to a request go (RFC 3261 18.2.2 with RFC 3581 rport).

    Args:
        via: the request's top Via, already stamped with received/rport.
        source: the address the request came from.
        reliable: whether it came over a connection (then answer on that connection).
    """
    if reliable:
        return source
    params = via.params
    maddr = params.get("maddr")
    if maddr:
        return maddr, via.port or default_port(via.transport)
    if "rport" in params:
        rport = params.get("rport")
        port = int(rport) if rport and rport.isdigit() else source[1]
        return params.get("received") or source[0], port
    return params.get("received") or via.host, via.port or default_port(via.transport)


class InviteServerTransaction(Transaction):
    """RFC 3261 17.2.1 with RFC 6026: Proceeding, Completed, Confirmed, Accepted, Terminated.

    In Accepted the transaction also retransmits the 2xx (T1 doubling, capped at T2) until
    the ACK comes, and reports AckMissing when timer L (64*T1) fires first.
    """

    TRANSITIONS = {
        S.PROCEEDING: frozenset({S.COMPLETED, S.ACCEPTED}),
        S.COMPLETED: frozenset({S.CONFIRMED, S.TERMINATED}),
        S.CONFIRMED: frozenset({S.TERMINATED}),
        S.ACCEPTED: frozenset({S.TERMINATED}),
        S.TERMINATED: frozenset(),
    }
    INITIAL = S.PROCEEDING

    __slots__ = ("interval", "provisional", "final", "acked")

    def __init__(self, request: Request, addr: Addr, reliable: bool, config: TimerConfig) -> None:
        super().__init__(request, addr, reliable, config)
        self.interval = config.t1
        self.provisional: Response | None = None
        self.final: Response | None = None
        self.acked = False

    def on_request(self, request: Request, now: float) -> list[Action]:
        """Handle a retransmitted INVITE or an ACK matched to this transaction."""
        if request.method == "ACK":
            return self._on_ack(request, now)
        if self.state is S.PROCEEDING and self.provisional is not None:
            return [Transmit(self.provisional, self.addr)]
        if self.state is S.COMPLETED and self.final is not None:
            return [Transmit(self.final, self.addr)]
        # Accepted (RFC 6026 8.5) and Confirmed absorb retransmissions.
        return []

    def _on_ack(self, ack: Request, now: float) -> list[Action]:
        if self.state is S.COMPLETED:
            self.disarm(Timer.G, Timer.H)
            if self.reliable:
                self.move(S.TERMINATED)
            else:
                self.move(S.CONFIRMED)
                self.arm(Timer.I, now + self.config.t4)
            return []
        if self.state is S.ACCEPTED and not self.acked:
            # The ACK of a 2xx belongs to the TU; timer L keeps absorbing INVITE copies.
            self.acked = True
            self.disarm(Timer.RETRANSMIT_2XX)
            return [PassUp(ack)]
        return []

    def send(self, response: Response, now: float) -> list[Action]:
        """Send a response from the TU; raise IllegalTransition after a final one."""
        status = response.status
        if self.state is S.PROCEEDING:
            if status < 200:
                self.provisional = response
            elif status < 300:
                self.final = response
                self.move(S.ACCEPTED)
                self.arm(Timer.L, now + 64 * self.config.t1)
                if not self.reliable:
                    self.arm(Timer.RETRANSMIT_2XX, now + self.interval)
            else:
                self.final = response
                self.move(S.COMPLETED)
                if not self.reliable:
                    self.arm(Timer.G, now + self.interval)
                self.arm(Timer.H, now + 64 * self.config.t1)
            return [Transmit(response, self.addr)]
        if self.state is S.ACCEPTED and 200 <= status < 300:
            # RFC 6026 7.1: further 2xx from the TU go out; they also replace what we repeat.
            self.final = response
            return [Transmit(response, self.addr)]
        raise IllegalTransition(f"cannot send {status} in INVITE server state {self.state.name}")

    def on_timer(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.G and self.state is S.COMPLETED and self.final is not None:
            self.interval = min(2 * self.interval, self.config.t2)
            self.arm(Timer.G, now + self.interval)
            return [Transmit(self.final, self.addr)]
        if timer is Timer.RETRANSMIT_2XX and self.state is S.ACCEPTED and self.final is not None:
            self.interval = min(2 * self.interval, self.config.t2)
            self.arm(Timer.RETRANSMIT_2XX, now + self.interval)
            return [Transmit(self.final, self.addr)]
        if timer is Timer.H:
            self.move(S.TERMINATED)
            return [TimedOut()]
        if timer is Timer.I:
            self.move(S.TERMINATED)
        if timer is Timer.L:
            self.move(S.TERMINATED)
            if not self.acked:
                return [AckMissing()]
        return []


class NonInviteServerTransaction(Transaction):
    """RFC 3261 17.2.2: Trying, Proceeding, Completed, Terminated."""

    TRANSITIONS = NON_INVITE_TRANSITIONS
    INITIAL = S.TRYING

    __slots__ = ("last",)

    def __init__(self, request: Request, addr: Addr, reliable: bool, config: TimerConfig) -> None:
        super().__init__(request, addr, reliable, config)
        self.last: Response | None = None

    def on_request(self, request: Request, now: float) -> list[Action]:
        """Handle a retransmitted request: repeat the last response, if any."""
        if self.last is not None and self.state in (S.PROCEEDING, S.COMPLETED):
            return [Transmit(self.last, self.addr)]
        return []

    def send(self, response: Response, now: float) -> list[Action]:
        """Send a response from the TU; raise IllegalTransition after a final one."""
        if self.state is S.COMPLETED:
            raise IllegalTransition(f"cannot send {response.status} after a final response")
        self.last = response
        if response.status < 200:
            if self.state is S.TRYING:
                self.move(S.PROCEEDING)
        elif self.reliable:
            self.move(S.TERMINATED)
        else:
            self.move(S.COMPLETED)
            self.arm(Timer.J, now + 64 * self.config.t1)
        return [Transmit(response, self.addr)]

    def on_timer(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.J:
            self.move(S.TERMINATED)
        return []


ServerTransaction = InviteServerTransaction | NonInviteServerTransaction
