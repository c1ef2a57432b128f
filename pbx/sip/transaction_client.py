"""Client transactions (RFC 3261 17.1, RFC 6026) and the machinery all transactions share.

A transaction here is a small state machine. It takes a message or a fired timer and returns
actions (`Transmit`, `PassUp`, `TimedOut`, `AckMissing`); `TransactionLayer` in
`pbx/sip/transaction.py` matches messages to transactions, runs the timers and turns those
actions into its own outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, ClassVar

from pbx.sip.headers import Headers
from pbx.sip.message import Request, Response

if TYPE_CHECKING:
    from pbx.sip.transaction import TimerConfig

Addr = tuple[str, int]


class TxnState(Enum):
    """Every state of RFC 3261 17 plus RFC 6026's Accepted; each kind uses a subset."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class Timer(StrEnum):
    """Timer names of RFC 3261 17 / RFC 6026, plus our own."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    # RFC 3261 13.3.1.4 puts 2xx retransmission in the UAS core; here the layer does it.
    RETRANSMIT_2XX = "2xx"
    # RFC 3261 9.1: give up on an INVITE 64*T1 after cancelling it, 487 or not.
    CANCEL_WAIT = "cancel"


class IllegalTransition(RuntimeError):
    """A transaction was asked to make a move its state table forbids (a bug of ours)."""


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send this message to this address."""

    message: Request | Response
    addr: Addr


@dataclass(frozen=True, slots=True)
class PassUp:
    """Deliver this message (a response, or an ACK to a 2xx) to the transaction user."""

    message: Request | Response


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Timer B, F or H fired, or a cancelled INVITE got no final response: give up."""


@dataclass(frozen=True, slots=True)
class AckMissing:
    """A 2xx we sent was never acknowledged (RFC 3261 13.3.1.4): the TU should hang up."""


Action = Transmit | PassUp | TimedOut | AckMissing


class Transaction:
    """State, transition checks and timer bookkeeping common to the four kinds."""

    TRANSITIONS: ClassVar[dict[TxnState, frozenset[TxnState]]]
    INITIAL: ClassVar[TxnState]

    __slots__ = ("request", "addr", "reliable", "config", "state", "deadlines", "armed")

    def __init__(self, request: Request, addr: Addr, reliable: bool, config: TimerConfig) -> None:
        self.request = request
        # Where this transaction sends: the next hop (client) or the response target (server).
        self.addr = addr
        self.reliable = reliable
        self.config = config
        self.state = self.INITIAL
        self.deadlines: dict[Timer, float] = {}
        # Newly armed timers, taken by the layer to push on its heap.
        self.armed: list[tuple[float, Timer]] = []

    def move(self, new: TxnState) -> None:
        """Change state; raise IllegalTransition when the table forbids it."""
        if new not in self.TRANSITIONS[self.state]:
            raise IllegalTransition(f"{type(self).__name__}: {self.state.name} -> {new.name}")
        self.state = new
        if new is TxnState.TERMINATED:
            self.deadlines.clear()

    def arm(self, timer: Timer, at: float) -> None:
        """Start (or restart) a timer to fire at `at`."""
        self.deadlines[timer] = at
        self.armed.append((at, timer))

    def disarm(self, *timers: Timer) -> None:
        """Stop timers; their heap entries go stale and are skipped."""
        for timer in timers:
            self.deadlines.pop(timer, None)

    def take_armed(self) -> list[tuple[float, Timer]]:
        """Return and forget the timers armed since the last call."""
        armed, self.armed = self.armed, []
        return armed

    def on_timer(self, timer: Timer, now: float) -> list[Action]:
        """Handle a fired timer (the layer has already dropped stale ones)."""
        raise NotImplementedError

    @property
    def terminated(self) -> bool:
        return self.state is TxnState.TERMINATED


S = TxnState


class InviteClientTransaction(Transaction):
    """RFC 3261 17.1.1 with RFC 6026: Calling, Proceeding, Completed, Accepted, Terminated."""

    TRANSITIONS = {
        S.CALLING: frozenset({S.PROCEEDING, S.COMPLETED, S.ACCEPTED, S.TERMINATED}),
        S.PROCEEDING: frozenset({S.COMPLETED, S.ACCEPTED, S.TERMINATED}),
        S.COMPLETED: frozenset({S.TERMINATED}),
        S.ACCEPTED: frozenset({S.TERMINATED}),
        S.TERMINATED: frozenset(),
    }
    INITIAL = S.CALLING

    __slots__ = ("interval", "ack", "seen_provisional", "seen_2xx_tags")

    def __init__(self, request: Request, addr: Addr, reliable: bool, config: TimerConfig) -> None:
        super().__init__(request, addr, reliable, config)
        self.interval = config.t1
        self.ack: Request | None = None
        self.seen_provisional: set[tuple[int, str | None, str | None]] = set()
        self.seen_2xx_tags: set[str | None] = set()

    def start(self, now: float) -> list[Action]:
        """Send the INVITE and start timers A (unreliable only) and B."""
        if not self.reliable:
            self.arm(Timer.A, now + self.interval)
        self.arm(Timer.B, now + 64 * self.config.t1)
        return [Transmit(self.request, self.addr)]

    def cancelled(self, now: float) -> None:
        """The TU sent a CANCEL: stop waiting forever for the final response (RFC 3261 9.1)."""
        if self.state in (S.CALLING, S.PROCEEDING) and Timer.CANCEL_WAIT not in self.deadlines:
            self.arm(Timer.CANCEL_WAIT, now + 64 * self.config.t1)

    def on_response(self, response: Response, now: float) -> list[Action]:
        """Handle a response matched to this transaction."""
        status = response.status
        if self.state in (S.CALLING, S.PROCEEDING):
            if status < 200:
                if self.state is S.CALLING:
                    self.move(S.PROCEEDING)
                    self.disarm(Timer.A, Timer.B)
                return self._provisional(response)
            self.disarm(Timer.A, Timer.B, Timer.CANCEL_WAIT)
            if status < 300:
                self.move(S.ACCEPTED)
                self.arm(Timer.M, now + 64 * self.config.t1)
                self.seen_2xx_tags.add(response.to_addr.tag)
                return [PassUp(response)]
            self.ack = make_ack_for_failure(self.request, response)
            if self.reliable:
                self.move(S.TERMINATED)
            else:
                self.move(S.COMPLETED)
                self.arm(Timer.D, now + self.config.timer_d)
            return [PassUp(response), Transmit(self.ack, self.addr)]
        if self.state is S.COMPLETED and status >= 300 and self.ack is not None:
            return [Transmit(self.ack, self.addr)]
        if self.state is S.ACCEPTED and 200 <= status < 300:
            tag = response.to_addr.tag
            if tag not in self.seen_2xx_tags:
                # Another fork answered: a second dialog the TU must ACK (and usually BYE).
                self.seen_2xx_tags.add(tag)
                return [PassUp(response)]
        return []

    def _provisional(self, response: Response) -> list[Action]:
        # Identical provisionals (a UAS retransmitting a 180, a 100rel retransmission) are
        # absorbed; a new status, fork or RSeq is news for the TU.
        key = (response.status, response.to_addr.tag, response.headers.get("RSeq"))
        if key in self.seen_provisional:
            return []
        self.seen_provisional.add(key)
        return [PassUp(response)]

    def on_timer(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.A and self.state is S.CALLING:
            # Timer A doubles without a cap (RFC 3261 17.1.1.2).
            self.interval *= 2
            self.arm(Timer.A, now + self.interval)
            return [Transmit(self.request, self.addr)]
        if timer in (Timer.B, Timer.CANCEL_WAIT):
            self.move(S.TERMINATED)
            return [TimedOut()]
        if timer in (Timer.D, Timer.M):
            self.move(S.TERMINATED)
        return []


# The non-INVITE client and server transactions share their states (RFC 3261 17.1.2, 17.2.2).
NON_INVITE_TRANSITIONS = {
    S.TRYING: frozenset({S.PROCEEDING, S.COMPLETED, S.TERMINATED}),
    S.PROCEEDING: frozenset({S.COMPLETED, S.TERMINATED}),
    S.COMPLETED: frozenset({S.TERMINATED}),
    S.TERMINATED: frozenset(),
}


class NonInviteClientTransaction(Transaction):
    """RFC 3261 17.1.2: Trying, Proceeding, Completed, Terminated."""

    TRANSITIONS = NON_INVITE_TRANSITIONS
    INITIAL = S.TRYING

    __slots__ = ("interval", "seen_provisional")

    def __init__(self, request: Request, addr: Addr, reliable: bool, config: TimerConfig) -> None:
        super().__init__(request, addr, reliable, config)
        self.interval = config.t1
        self.seen_provisional: set[int] = set()

    def start(self, now: float) -> list[Action]:
        """Send the request and start timers E (unreliable only) and F."""
        if not self.reliable:
            self.arm(Timer.E, now + self.interval)
        self.arm(Timer.F, now + 64 * self.config.t1)
        return [Transmit(self.request, self.addr)]

    def on_response(self, response: Response, now: float) -> list[Action]:
        """Handle a response matched to this transaction."""
        if self.state not in (S.TRYING, S.PROCEEDING):
            return []  # a retransmitted final response, absorbed in Completed
        if response.status < 200:
            if self.state is S.TRYING:
                self.move(S.PROCEEDING)
            if response.status in self.seen_provisional:
                return []
            self.seen_provisional.add(response.status)
            return [PassUp(response)]
        self.disarm(Timer.E, Timer.F)
        if self.reliable:
            self.move(S.TERMINATED)
        else:
            self.move(S.COMPLETED)
            self.arm(Timer.K, now + self.config.t4)
        return [PassUp(response)]

    def on_timer(self, timer: Timer, now: float) -> list[Action]:
        if timer is Timer.E and self.state in (S.TRYING, S.PROCEEDING):
            # Trying: T1 doubling up to T2; Proceeding: every T2 (RFC 3261 17.1.2.2).
            if self.state is S.TRYING:
                self.interval = min(2 * self.interval, self.config.t2)
            else:
                self.interval = self.config.t2
            self.arm(Timer.E, now + self.interval)
            return [Transmit(self.request, self.addr)]
        if timer is Timer.F:
            self.move(S.TERMINATED)
            return [TimedOut()]
        if timer is Timer.K:
            self.move(S.TERMINATED)
        return []


def make_ack_for_failure(invite: Request, response: Response) -> Request:
    """Build the ACK for a 300-699 answer to `invite` (RFC 3261 17.1.1.3)."""
    headers = Headers()
    # One Via, the INVITE's top one, so that the server transaction matches the ACK.
    headers.add("Via", invite.headers.get_all("Via")[0])
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} ACK")
    return Request("ACK", invite.uri, headers)
