"""The SIP transaction layer (RFC 3261 17, RFC 6026, RFC 3581 rport), sans-IO.

The engine feeds it parsed messages, the time and fired timers; it returns what to send and
what to tell the transaction user (TU). Matching is a dict lookup per message and timers sit
on one heap with lazy deletion, so the work per message stays O(1) (plus O(log n) for timers).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass

from pbx.sip.errors import SipParseError
from pbx.sip.headers import Headers, Via
from pbx.sip.ids import MAGIC_COOKIE, new_tag
from pbx.sip.message import Request, Response, make_response
from pbx.sip.transaction_client import (
    AckMissing,
    Action,
    Addr,
    IllegalTransition,
    InviteClientTransaction,
    NonInviteClientTransaction,
    PassUp,
    TimedOut,
    Timer,
    Transaction,
    Transmit,
    TxnState,
)
from pbx.sip.transaction_server import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    default_port,
    response_destination,
)

__all__ = [
    "AckTimeout",
    "IllegalTransition",
    "Output",
    "RequestReceived",
    "ResponseReceived",
    "SendMessage",
    "StrayResponse",
    "TimerConfig",
    "TransactionKey",
    "TransactionLayer",
    "TransactionTimeout",
    "TxnState",
    "make_cancel",
]


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 timer values in seconds (table 4); timer_d is D's floor for UDP."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """Identifies one transaction; hashable, so the TU can map it to its call leg.

    RFC 3261 peers are matched by branch (+ sent-by on the server side, 17.2.3) and method,
    ACK counting as INVITE. RFC 2543 peers (no magic cookie) also need `legacy`:
    (Call-ID, From tag, CSeq number).
    """

    server: bool
    method: str
    branch: str
    sent_by: str = ""
    legacy: tuple[str, str, int] | None = None


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Send `message` to `addr`."""

    message: Request | Response
    addr: Addr


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request for the TU; key is its server transaction (None for an ACK of a 2xx)."""

    request: Request
    addr: Addr
    key: TransactionKey | None


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response for the TU, retransmissions already absorbed."""

    response: Response
    key: TransactionKey


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B/F fired (client: treat as 408), or timer H (server: the ACK never came)."""

    key: TransactionKey
    request: Request


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response that matches no client transaction."""

    response: Response
    addr: Addr


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """A 2xx we sent to an INVITE got no ACK within 64*T1: the TU should send BYE."""

    key: TransactionKey


Output = (
    SendMessage
    | RequestReceived
    | ResponseReceived
    | TransactionTimeout
    | StrayResponse
    | AckTimeout
)

# An ACK we sent for a 2xx, remembered to answer retransmissions of that 2xx.
_AckMemoKey = tuple[str, int, str | None]  # Call-ID, CSeq number, To tag
# A 2xx we sent, waiting for its ACK (which has a branch of its own).
_AwaitKey = tuple[str, str | None, str | None, int]  # Call-ID, From tag, To tag, CSeq number


@dataclass(slots=True)
class _SentAck:
    ack: Request
    addr: Addr
    expires: float


def make_cancel(invite: Request) -> Request:
    """Build the CANCEL for a pending INVITE we sent (RFC 3261 9.1)."""
    if invite.method != "INVITE":
        raise ValueError("only INVITE is cancelled here")
    headers = Headers()
    # Same top Via (so the same branch): the far end matches CANCEL to INVITE by it.
    headers.add("Via", invite.headers.get_all("Via")[0])
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq.number} CANCEL")
    return Request("CANCEL", invite.uri, headers)


def server_key(message: Request | Response, method: str) -> TransactionKey:
    """The server transaction a request (or our response to one) belongs to (17.2.3)."""
    via = message.top_via
    branch = via.branch or ""
    if method == "ACK":
        method = "INVITE"
    sent_by = f"{via.host}:{via.port or default_port(via.transport)}"
    if branch.startswith(MAGIC_COOKIE):
        return TransactionKey(True, method, branch, sent_by)
    # RFC 2543: no unique branch. Request-URI and To tag are left out: a UAS sees one URI per
    # transaction, and the To tag differs between an INVITE and the ACK of its failure.
    legacy = (message.call_id, message.from_addr.tag or "", message.cseq.number)
    return TransactionKey(True, method, branch, sent_by, legacy)


def stamp_via(request: Request, source: Addr) -> Via:
    """Add received/rport to the top Via as the server transport must (18.2.1, RFC 3581 4)."""
    via = request.top_via
    params = via.params
    wants_rport = "rport" in params and not params["rport"]
    if not wants_rport and (via.host == source[0] or params.get("received") == source[0]):
        return via
    # The parsed Via is cached per raw value by the message: change a copy, never it.
    stamped = Via(via.transport, via.host, via.port, dict(params))
    stamped.params["received"] = source[0]
    if wants_rport:
        stamped.params["rport"] = str(source[1])
    values = request.headers.get_all("Via")
    request.headers.remove("Via")
    for value in reversed(values[1:]):
        request.headers.prepend("Via", value)
    request.headers.prepend("Via", str(stamped))
    return stamped


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    def __init__(self, config: TimerConfig | None = None) -> None:
        self.config = config or TimerConfig()
        self._txns: dict[TransactionKey, Transaction] = {}
        self._acks_sent: dict[_AckMemoKey, _SentAck] = {}
        self._awaiting_ack: dict[_AwaitKey, TransactionKey] = {}
        self._await_key_of: dict[TransactionKey, _AwaitKey] = {}
        self._heap: list[tuple[float, int, TransactionKey, Timer]] = []
        self._seq = itertools.count()
        # Every memo lives 64*T1, so expiry order is insertion order: a queue, not a heap.
        self._ack_expiry: deque[tuple[float, _AckMemoKey]] = deque()

    # -- input from the network -------------------------------------------------------------

    def receive(
        self, message: Request | Response, addr: Addr, now: float, *, reliable: bool = False
    ) -> list[Output]:
        """Handle a parsed message from `addr`; bad headers make it drop, never raise."""
        try:
            if isinstance(message, Response):
                return self._receive_response(message, addr, now)
            return self._receive_request(message, addr, now, reliable)
        except SipParseError:
            # parse_message validates the core headers; this guards hand-built input.
            return []

    def _receive_response(self, response: Response, addr: Addr, now: float) -> list[Output]:
        cseq = response.cseq
        to_tag = response.to_addr.tag  # parsed before any state changes: a bad To drops here
        if cseq.method == "INVITE" and 200 <= response.status < 300:
            memo = self._acks_sent.get((response.call_id, cseq.number, to_tag))
            if memo is not None:
                # A retransmitted 2xx: its ACK was lost, send it again (RFC 3261 13.2.2.4).
                return [SendMessage(memo.ack, memo.addr)]
        key = TransactionKey(False, cseq.method, response.branch or "")
        txn = self._txns.get(key)
        if not isinstance(txn, InviteClientTransaction | NonInviteClientTransaction):
            return [StrayResponse(response, addr)]
        return self._run(key, txn, txn.on_response(response, now), addr)

    def _receive_request(
        self, request: Request, addr: Addr, now: float, reliable: bool
    ) -> list[Output]:
        via = stamp_via(request, addr)
        key = server_key(request, request.method)
        txn = self._txns.get(key)
        if request.method == "ACK":
            if txn is None:
                # An RFC 3261 ACK of a 2xx has a branch of its own: match it by dialog.
                await_key = (
                    request.call_id,
                    request.from_addr.tag,
                    request.to_addr.tag,
                    request.cseq.number,
                )
                matched = self._awaiting_ack.get(await_key)
                if matched is not None:
                    key, txn = matched, self._txns.get(matched)
            if not isinstance(txn, InviteServerTransaction):
                # ACK of a 2xx whose transaction is gone (or never was): the TU decides.
                return [RequestReceived(request, addr, None)]
            return self._run(key, txn, txn.on_request(request, now), addr)
        if isinstance(txn, InviteServerTransaction | NonInviteServerTransaction):
            if not _reused_branch_with_credentials(txn, request):
                return self._run(key, txn, txn.on_request(request, now), addr)
            del self._txns[key]  # the old transaction is over: what is left of it is dropped
        dest = response_destination(via, addr, reliable)
        new: InviteServerTransaction | NonInviteServerTransaction
        if request.method == "INVITE":
            new = InviteServerTransaction(request, dest, reliable, self.config)
        else:
            new = NonInviteServerTransaction(request, dest, reliable, self.config)
        self._txns[key] = new
        if request.method == "CANCEL" and self.find_invite_for_cancel(request) is None:
            answer = make_response(request, 481, to_tag=new_tag())
            return self._run(key, new, new.send(answer, now), addr)
        return [RequestReceived(request, addr, key)]

    # -- input from the TU --------------------------------------------------------------------

    def send_request(
        self, request: Request, addr: Addr, now: float, *, reliable: bool = False
    ) -> tuple[TransactionKey, list[Output]]:
        """Start a client transaction for `request` (its top Via carries a fresh branch).

        Raises:
            ValueError: for an ACK (use send_ack), a branch without the magic cookie or one
                already in use.
        """
        if request.method == "ACK":
            raise ValueError("ACK is not a transaction: use send_ack")
        branch = request.branch or ""
        if not branch.startswith(MAGIC_COOKIE):
            raise ValueError("requests we send need an RFC 3261 branch (see ids.new_branch)")
        key = TransactionKey(False, request.method, branch)
        if key in self._txns:
            raise ValueError(f"a {request.method} transaction with branch {branch} exists")
        txn: InviteClientTransaction | NonInviteClientTransaction
        if request.method == "INVITE":
            txn = InviteClientTransaction(request, addr, reliable, self.config)
        else:
            txn = NonInviteClientTransaction(request, addr, reliable, self.config)
            if request.method == "CANCEL":
                invite = self._txns.get(TransactionKey(False, "INVITE", branch))
                if isinstance(invite, InviteClientTransaction):
                    invite.cancelled(now)
                    self._push_armed(TransactionKey(False, "INVITE", branch), invite)
        self._txns[key] = txn
        return key, self._run(key, txn, txn.start(now), addr)

    def send_response(self, response: Response, now: float) -> list[Output]:
        """Send a response through the server transaction of its request.

        Raises:
            ValueError: when no server transaction matches (a TU bug).
            IllegalTransition: for a response after the final one.
        """
        key = server_key(response, response.cseq.method)
        txn = self._txns.get(key)
        if not isinstance(txn, InviteServerTransaction | NonInviteServerTransaction):
            raise ValueError(f"no server transaction for {response.status} {response.cseq}")
        outputs = self._run(key, txn, txn.send(response, now), txn.addr)
        if isinstance(txn, InviteServerTransaction) and txn.state is TxnState.ACCEPTED:
            await_key = (
                response.call_id,
                response.from_addr.tag,
                response.to_addr.tag,
                response.cseq.number,
            )
            self._awaiting_ack[await_key] = key
            self._await_key_of[key] = await_key
        return outputs

    def send_ack(self, ack: Request, addr: Addr, now: float) -> list[Output]:
        """Send the TU's ACK for a 2xx and repeat it whenever that 2xx comes again (64*T1)."""
        if ack.method != "ACK":
            raise ValueError("send_ack sends ACKs")
        memo_key = (ack.call_id, ack.cseq.number, ack.to_addr.tag)
        expires = now + 64 * self.config.t1
        self._acks_sent[memo_key] = _SentAck(ack, addr, expires)
        self._ack_expiry.append((expires, memo_key))
        return [SendMessage(ack, addr)]

    def find_invite_for_cancel(self, cancel: Request) -> TransactionKey | None:
        """The INVITE server transaction a received CANCEL targets (RFC 3261 9.2), if any."""
        try:
            key = server_key(cancel, "INVITE")
        except SipParseError:
            return None
        return key if isinstance(self._txns.get(key), InviteServerTransaction) else None

    # -- time ---------------------------------------------------------------------------------

    def handle_timers(self, now: float) -> list[Output]:
        """Fire every timer due at `now`."""
        outputs: list[Output] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            when, _, key, timer = heapq.heappop(heap)
            txn = self._txns.get(key)
            if txn is None or txn.deadlines.get(timer) != when:
                continue  # stopped or re-armed since: a stale entry
            del txn.deadlines[timer]
            outputs += self._run(key, txn, txn.on_timer(timer, now), txn.addr)
        expiry = self._ack_expiry
        while expiry and expiry[0][0] <= now:
            when, memo_key = expiry.popleft()
            memo = self._acks_sent.get(memo_key)
            if memo is not None and memo.expires == when:
                del self._acks_sent[memo_key]
        return outputs

    def next_timer(self) -> float | None:
        """When handle_timers should next be called, or None when nothing is pending."""
        heap = self._heap
        while heap:
            when, _, key, timer = heap[0]
            txn = self._txns.get(key)
            if txn is not None and txn.deadlines.get(timer) == when:
                break
            heapq.heappop(heap)
        expiry = self._ack_expiry
        while expiry:
            when, memo_key = expiry[0]
            memo = self._acks_sent.get(memo_key)
            if memo is not None and memo.expires == when:
                break
            expiry.popleft()
        candidates = [entries[0][0] for entries in (heap, expiry) if entries]
        return min(candidates) if candidates else None

    # -- introspection ------------------------------------------------------------------------

    def transport_failed(self, addr: Addr, now: float) -> list[Output]:
        """A connection-oriented transport to `addr` failed (a TCP connect was refused).

        Every client transaction waiting on it ends at once, as a timeout would end it
        (RFC 3261 17.1.4): the TU learns now, not 32 s later from timer B or F.
        """
        outputs: list[Output] = []
        for key, txn in list(self._txns.items()):
            if key.server or getattr(txn, "addr", None) != addr or txn.terminated:
                continue
            outputs.append(TransactionTimeout(key, txn.request))
            self._forget(key)
        return outputs

    def active_count(self) -> int:
        """How many transactions are alive (terminated ones are dropped at once)."""
        return len(self._txns)

    def state_of(self, key: TransactionKey) -> TxnState | None:
        """The state of a transaction, or None once it is gone."""
        txn = self._txns.get(key)
        return txn.state if txn is not None else None

    # -- internals ----------------------------------------------------------------------------

    def _run(
        self, key: TransactionKey, txn: Transaction, actions: list[Action], addr: Addr
    ) -> list[Output]:
        """Turn a transaction's actions into outputs, arm its timers, drop it when done."""
        outputs: list[Output] = []
        for action in actions:
            if isinstance(action, Transmit):
                outputs.append(SendMessage(action.message, action.addr))
            elif isinstance(action, PassUp):
                message = action.message
                if isinstance(message, Response):
                    outputs.append(ResponseReceived(message, key))
                else:
                    outputs.append(RequestReceived(message, addr, None))
            elif isinstance(action, TimedOut):
                outputs.append(TransactionTimeout(key, txn.request))
            elif isinstance(action, AckMissing):
                outputs.append(AckTimeout(key))
        if txn.terminated:
            self._forget(key)
        else:
            self._push_armed(key, txn)
        return outputs

    def _push_armed(self, key: TransactionKey, txn: Transaction) -> None:
        for when, timer in txn.take_armed():
            heapq.heappush(self._heap, (when, next(self._seq), key, timer))

    def _forget(self, key: TransactionKey) -> None:
        del self._txns[key]
        await_key = self._await_key_of.pop(key, None)
        if await_key is not None and self._awaiting_ack.get(await_key) == key:
            del self._awaiting_ack[await_key]


def _reused_branch_with_credentials(
    txn: InviteServerTransaction | NonInviteServerTransaction, request: Request
) -> bool:
    """A client that answers our 401/407 with the branch of the challenged request.

    RFC 3261 8.1.3.5 wants a new request (new branch, higher CSeq), but pyVoIP 1.6.8 resends its
    INVITE with the old branch and CSeq plus credentials. Matched strictly, that is a
    retransmission and gets the 401 again, forever; it is really a new request.
    """
    final = getattr(txn, "final", None) or getattr(txn, "last", None)
    if final is None or final.status not in (401, 407):
        return False
    had = "Authorization" in txn.request.headers or "Proxy-Authorization" in txn.request.headers
    has = "Authorization" in request.headers or "Proxy-Authorization" in request.headers
    return has and not had
