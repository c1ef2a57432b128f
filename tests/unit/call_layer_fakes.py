"""A PBX's call layer over fakes: a SIP stack, a clock, media ports and phones, all in memory.

Nothing here opens a socket or reads the time. `office()` wires the call layer the way
`Engine` does (runtime.py) over these fakes. A `Phone` plays one registered device with the
real SIP message and dialog code: it answers or refuses the INVITEs the PBX sends it, dials,
and sends BYE, re-INVITE, UPDATE and REFER inside its dialogs, so that what the tests read
back is the SIP the call layer really sends. Phone actions are coroutines that let the event
loop run afterwards (`Pbx.settle`): the call manager awaits its ringer's result.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pbx.engine.call import Call, CallState
from pbx.engine.calls import CallManager
from pbx.engine.dialogs import DialogRequests
from pbx.engine.directory import ExtensionInfo, MemoryDirectory, TrunkInfo
from pbx.engine.events import (
    CallChanged,
    Event,
    EventBus,
    ExtensionState,
    ExtensionStateChanged,
    LegChanged,
)
from pbx.engine.legs import DialogIndex, LegState
from pbx.engine.media import NoFreePort
from pbx.engine.operations import CallOperations
from pbx.engine.presence import Presence
from pbx.engine.records import MemoryRecorder, RecordWriter
from pbx.engine.registrar import Binding
from pbx.engine.routing import Party, Router
from pbx.engine.services import ResponseCallback, Tasks
from pbx.engine.session_timers import SessionTimers
from pbx.media.dtmf import DigitReceived
from pbx.sip import sdp
from pbx.sip.dialog import Dialog
from pbx.sip.headers import Headers, Via
from pbx.sip.ids import new_branch, new_call_id, new_tag
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import SipUri

Addr = tuple[str, int]

ADVERTISE = "192.0.2.1"  # the PBX's address in Contact, Via and SDP
COMPANY = 1
MUSIC = "music on hold"  # what the fake media ports hand out as hold music
SETTLE_ROUNDS = 30  # loop iterations that let every woken task run to its next wait
RTP_PORT = 16384  # each phone has its own host, so one RTP port each is enough


# --- time --------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeTimer:
    due: float
    order: int
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A `Clock` whose time moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[FakeTimer] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self._now + delay, next(self._order), callback)
        self._timers.append(timer)
        return timer

    def next_due(self) -> float | None:
        """When the next live timer fires (None: no timer)."""
        return min((t.due for t in self._timers if not t.cancelled), default=None)

    def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, firing the timers that fall due, in order."""
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        while True:
            due = [t for t in self._timers if not t.cancelled and t.due <= when]
            if not due:
                break
            timer = min(due, key=lambda t: (t.due, t.order))
            self._timers.remove(timer)
            self._now = timer.due
            timer.callback()
        self._now = max(self._now, when)


# --- media -------------------------------------------------------------------------------


class FakeRelay:
    """Stands in for the relay core that `pbx.engine.media.bridge` reaches into."""

    def __init__(self) -> None:
        self.endpoints: list[FakeEndpoint] = []

    def bridge(self, a: FakeEndpoint, b: FakeEndpoint) -> None:
        """`a` and `b` hear each other, and whoever heard either before goes silent."""
        for other in self.endpoints:
            if other.source in (a, b) and other not in (a, b):
                other.listen_to(None)
        a.listen_to(b)
        b.listen_to(a)


class FakeEndpoint:
    """An RTP endpoint that only remembers what it was told: what its party hears."""

    def __init__(self, port: int, relay: FakeRelay) -> None:
        self.port = port
        # `bridge()` (pbx/engine/media.py) uses the endpoint's relay leg and player directly.
        self._relay = relay
        self._leg = self
        self.closed = False
        self.codec = "PCMU"
        self.remote: Addr | None = None  # where the party's SDP wants our RTP
        self.source: FakeEndpoint | None = None  # whose party our party hears
        self.music: Any = None  # what our party hears played instead
        self.on_digit: Callable[[Any], None] | None = None

    def __repr__(self) -> str:
        return f"<FakeEndpoint {self.port} remote={self.remote} closed={self.closed}>"

    def set_remote(self, remote: Addr, pt: int, codec: str, te_pt: int | None) -> None:
        self.remote = remote
        self.codec = codec

    def listen_to(self, source: FakeEndpoint | None) -> None:
        self.source, self.music = source, None

    def play(self, samples: Any, loop: bool = True) -> None:
        self.source, self.music = None, samples

    def _stop_player(self) -> None:
        pass  # a fake plays nothing; `music` says what it would play

    def close(self) -> None:
        self.closed = True

    def hears(self, other: FakeEndpoint) -> bool:
        return self.source is other and not self.closed

    @property
    def hears_music(self) -> bool:
        return self.music is MUSIC

    def press(self, digit: str, duration_ms: int = 100) -> None:
        """The party pressed a key (what the RTP side reports)."""
        assert self.on_digit is not None, "nobody listens to this endpoint's key presses"
        self.on_digit(DigitReceived(digit, duration_ms))


def bridged(a: FakeEndpoint, b: FakeEndpoint) -> bool:
    """Whether the parties of `a` and `b` hear each other."""
    return a.hears(b) and b.hears(a)


class FakeMediaPorts:
    """`MediaPorts` handing out fake endpoints, at most `limit` open at once."""

    moh = MUSIC

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.relay = FakeRelay()
        self.allocations = 0
        self._gate: asyncio.Event | None = None
        self._paused_from = 0

    def pause(self, after: int = 0) -> None:
        """Make allocations wait until `resume()` (finding a port takes a while), once
        `after` more have been made."""
        self._gate = asyncio.Event()
        self._paused_from = self.allocations + after

    def resume(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    async def allocate(self) -> FakeEndpoint:
        number = self.allocations
        self.allocations += 1
        if self._gate is not None and number >= self._paused_from:
            await self._gate.wait()
        if len(self.open) >= self.limit:
            raise NoFreePort("no free fake port")
        endpoint = FakeEndpoint(20000 + 2 * len(self.endpoints), self.relay)
        self.endpoints.append(endpoint)
        return endpoint

    @property
    def endpoints(self) -> list[FakeEndpoint]:
        """Every endpoint handed out, closed or not."""
        return self.relay.endpoints

    @property
    def open(self) -> list[FakeEndpoint]:
        return [e for e in self.endpoints if not e.closed]


# --- SIP -------------------------------------------------------------------------------


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

    def deliver(self, request: Request, response: Response | None) -> None:
        """Hand `response` (None: timer B fired) to whoever sent `request`."""
        sent = next(s for s in reversed(self.sent) if s.message is request)
        assert sent.callback is not None, f"nobody waits for responses to {request.method}"
        sent.callback(response)


class FakeRegistrar:
    """`Contacts`: the bindings of registered devices, which never expire."""

    def __init__(self) -> None:
        self.bindings: dict[str, list[Binding]] = {}

    def add(self, username: str, contact: str, source: Addr, transport: str = "udp") -> None:
        binding = Binding(
            username, SipUri.parse(contact), source, transport, float("inf"), new_call_id(), 1
        )
        self.bindings.setdefault(username, []).append(binding)

    def contacts(self, username: str, now: float) -> list[Binding]:
        return [b for b in self.bindings.get(username, []) if b.expires_at > now]


class FakeTrunks:
    """`TrunkAddresses`: the carrier's address per trunk id (None: it cannot be resolved)."""

    def __init__(self) -> None:
        self.addresses: dict[int, Addr | None] = {}

    async def address(self, trunk: TrunkInfo) -> Addr | None:
        return self.addresses.get(trunk.id)


class CheckedTasks(Tasks):
    """The engine's task keeper, but a task that fails fails the test (`Pbx.settle`)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[BaseException] = []

    def _done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.failures.append(task.exception())  # type: ignore[arg-type]
        super()._done(task)


# --- the PBX -----------------------------------------------------------------------------


def extension(number: str, name: str, *devices: str, **options: Any) -> ExtensionInfo:
    """An extension of the test company."""
    return ExtensionInfo(COMPANY, number, name, devices, **options)


def office_extensions() -> list[ExtensionInfo]:
    """Alice (201), Bob (202, a desk phone and a mobile), Carol (203) and Dave (204)."""
    return [
        extension("201", "Alice", "alice"),
        extension("202", "Bob", "bob-desk", "bob-mobile"),
        extension("203", "Carol", "carol"),
        extension("204", "Dave", "dave"),
    ]


CARRIER = TrunkInfo(
    1,
    COMPANY,
    "carrier",
    "sip.carrier.example",
    username="acme",
    password="s3cret",
    caller_id="0212345678",
    outbound_prefix="0",
)
CARRIER_ADDR = ("198.51.100.7", 5060)


@dataclass(eq=False, repr=False)
class Pbx:
    """The call layer of one engine, wired as runtime.py does, over fakes."""

    clock: FakeClock
    stack: FakeStack
    ports: FakeMediaPorts
    registrar: FakeRegistrar
    directory: MemoryDirectory
    trunks: FakeTrunks
    events: EventBus
    presence: Presence
    recorder: MemoryRecorder
    tasks: CheckedTasks
    dialogs: DialogIndex
    calls: CallManager
    operations: CallOperations
    session_timers: SessionTimers
    dialog_requests: DialogRequests
    log: list[Event] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    phones: dict[str, Phone] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Pbx at {self.clock.now()}: {len(self.calls.calls)} calls>"

    # --- driving ---------------------------------------------------------------------------

    async def settle(self) -> None:
        """Let every task that can run do so; fail if one of them (or a subscriber) failed."""
        for _ in range(SETTLE_ROUNDS):
            await asyncio.sleep(0)
        failures = self.tasks.failures + self.failures
        if failures:
            raise failures[0]

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass, settling after each timer (it may arm the next one)."""
        target = self.clock.now() + seconds
        while (due := self.clock.next_due()) is not None and due <= target:
            self.clock.advance_to(due)
            await self.settle()
        self.clock.advance_to(target)
        await self.settle()

    def receive(self, request: Request) -> None:
        """A request inside a dialog reaches the PBX (what Engine.on_request does with it)."""
        leg = self.dialogs.find(request)
        if request.method == "ACK":
            if leg is not None:
                self.dialog_requests.handle(leg, request)
            return
        if leg is None:
            self.stack.send_response(make_response(request, 481))
            return
        self.dialog_requests.handle(leg, request)

    def phone(self, device: str, *, registered: bool = True) -> Phone:
        """The phone of `device` (an extension lists it), registered unless told otherwise."""
        if device in self.phones:
            return self.phones[device]
        ext = next(e for e in self.directory.extensions.values() if device in e.devices)
        phone = Phone(self, device, ext.number, ext.display_name, f"10.0.0.{len(self.phones) + 11}")
        if registered:
            self.registrar.add(device, f"sip:{device}@{phone.host}:5060", phone.addr)
        self.phones[device] = phone
        return phone

    def second_contact(self, device: str) -> Phone:
        """The same device registered again from another address (a second line, a NAT)."""
        first = self.phone(device)
        phone = Phone(self, device, first.number, first.name, f"10.0.1.{len(self.phones) + 11}")
        self.registrar.add(device, f"sip:{device}@{phone.host}:5060", phone.addr)
        return phone

    def carrier(self) -> Phone:
        """The carrier's side of the trunk: it gets the INVITEs of calls out."""
        self.trunks.addresses[CARRIER.id] = CARRIER_ADDR
        return Phone(self, "carrier", "", "", CARRIER_ADDR[0])

    # --- reading -----------------------------------------------------------------------------

    def call(self, call_id: str) -> Call:
        return self.calls.calls[call_id]

    def call_states(self, call_id: str) -> list[CallState]:
        """Every state the call passed through, from its creation."""
        return [e.state for e in self.log if isinstance(e, CallChanged) and e.call_id == call_id]

    def call_ids(self) -> list[str]:
        """The PBX's calls, in the order they were created."""
        return [e.call_id for e in self.log if isinstance(e, CallChanged) and e.previous is None]

    def ended(self, call_id: str) -> CallChanged:
        """The event that ended the call."""
        return next(
            e
            for e in self.log
            if isinstance(e, CallChanged) and e.call_id == call_id and e.state is CallState.ENDED
        )

    def leg_states(self, device: str) -> list[list[LegState]]:
        """The states each leg of `device` (or with that label) passed through, leg by leg."""
        legs: dict[int, list[LegState]] = {}
        for e in self.log:
            if not isinstance(e, LegChanged) or device not in (e.device, e.label):
                continue
            states = legs.setdefault(e.leg_id, [])
            if not states or states[-1] is not e.state:
                states.append(e.state)
        return list(legs.values())

    def extension_states(self, number: str) -> list[ExtensionState]:
        """What the busy lamp of `number` showed, from idle on."""
        changes = [
            e for e in self.log if isinstance(e, ExtensionStateChanged) and e.number == number
        ]
        return [changes[0].previous, *(e.state for e in changes)] if changes else []

    def record(self, call_id: str) -> dict[str, object]:
        return self.recorder.records[call_id]

    def media(self, phone: Phone) -> FakeEndpoint:
        """The one open endpoint facing `phone` (its SDP told us where it receives RTP)."""
        facing = [e for e in self.ports.open if e.remote is not None and e.remote[0] == phone.host]
        assert len(facing) == 1, f"{len(facing)} open endpoints face {phone.device}"
        return facing[0]


def office(*overrides: ExtensionInfo, media_ports: int = 1000) -> Pbx:
    """Alice, Bob, Carol and Dave (`office_extensions`, each replaced by an override with
    its number) and a trunk to the carrier, wired as `Engine` wires its call layer."""
    directory = MemoryDirectory(trunk_list=[CARRIER])
    for ext in [*office_extensions(), *overrides]:
        directory.extensions[(ext.company_id, ext.number)] = ext
    clock = FakeClock()
    stack = FakeStack(clock)
    ports = FakeMediaPorts(media_ports)
    registrar = FakeRegistrar()
    trunks = FakeTrunks()
    events = EventBus()
    presence = Presence(events)
    recorder = MemoryRecorder()
    tasks = CheckedTasks()
    dialogs = DialogIndex()
    calls = CallManager(
        stack=stack,
        clock=clock,
        events=events,
        media=ports,
        contacts=registrar,
        router=Router(directory, presence.is_busy),
        trunks=trunks,
        tasks=tasks,
        presence=presence,
        dialogs=dialogs,
    )
    operations = CallOperations(calls, moh=ports.moh, clock=clock)
    session_timers = SessionTimers(calls, stack=stack, clock=clock)
    pbx = Pbx(
        clock=clock,
        stack=stack,
        ports=ports,
        registrar=registrar,
        directory=directory,
        trunks=trunks,
        events=events,
        presence=presence,
        recorder=recorder,
        tasks=tasks,
        dialogs=dialogs,
        calls=calls,
        operations=operations,
        session_timers=session_timers,
        dialog_requests=DialogRequests(calls, operations, session_timers, stack=stack, tasks=tasks),
    )
    # The bus logs a failing subscriber and goes on; here the failure fails the test.
    subscribers = (
        presence.on_event,
        RecordWriter(recorder).on_event,
        session_timers.on_event,
        pbx.log.append,
    )
    for subscriber in subscribers:
        events.subscribe(_strict(subscriber, pbx.failures))
    return pbx


def _strict(
    subscriber: Callable[[Event], None], failures: list[BaseException]
) -> Callable[[Event], None]:
    def deliver(event: Event) -> None:
        try:
            subscriber(event)
        except Exception as error:
            failures.append(error)
            raise

    return deliver


# --- phones ------------------------------------------------------------------------------


@dataclass(eq=False)
class Dialled:
    """A call a phone placed: its INVITE, and the call the PBX made of it (if any)."""

    phone: Phone
    invite: Request
    key: Any  # the INVITE's server transaction, as CANCEL names it
    made: str | None  # the id of the PBX's call (None: refused before it was a call)

    @property
    def call_id(self) -> str:
        """The id of the call the PBX made of this INVITE."""
        assert self.made is not None, f"the INVITE never became a call: {self.statuses}"
        return self.made

    @property
    def statuses(self) -> list[int]:
        """The statuses the PBX answered the INVITE with, in order."""
        return [r.status for r in self.phone.pbx.stack.responses_to(self.invite)]

    @property
    def final(self) -> Response:
        finals = [r for r in self.phone.pbx.stack.responses_to(self.invite) if r.status >= 200]
        assert len(finals) == 1, f"{len(finals)} final responses: {self.statuses}"
        return finals[0]

    @property
    def sip_call_id(self) -> str:
        return self.invite.call_id

    async def cancel(self, *, settle: bool = True) -> bool:
        """The caller gives up: what a CANCEL for the INVITE does; whether a call was found."""
        known = self.phone.pbx.calls.cancel(self.key)
        if settle:
            await self.phone.pbx.settle()
        return known

    async def ack(self, body: bytes = b"") -> None:
        """ACK the PBX's 200, with an answer in it when the 200 carried an offer."""
        await self.phone.ack(self.final, body)


class Phone:
    """One registered device, played by the test; its SIP is real, its network is the fake."""

    def __init__(self, pbx: Pbx, device: str, number: str, name: str, host: str) -> None:
        self.pbx = pbx
        self.device = device
        self.number = number
        self.name = name
        self.host = host
        self.addr: Addr = (host, 5060)
        self._tags: dict[str, str] = {}  # Call-ID of an INVITE the PBX sent us -> our To tag
        self._dialled: list[Request] = []
        self._dialogs: dict[str, Dialog] = {}  # Call-ID -> our side of the dialog
        self._byes: set[str] = set()  # Call-IDs of the dialogs we hung up
        self._versions = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Phone {self.device}>"

    @property
    def contact(self) -> str:
        return f"<sip:{self.device}@{self.host}:5060>"

    def via(self) -> Via:
        return Via.parse(f"SIP/2.0/UDP {self.host}:5060;branch={new_branch()}")

    def sdp(self, direction: str = "sendrecv") -> bytes:
        offer = sdp.make_offer(
            self.host, RTP_PORT, session_id=7, version=next(self._versions), direction=direction
        )
        return bytes(offer)

    # --- what the PBX sent this phone -------------------------------------------------------

    def received(self, method: str | None = None) -> list[Request]:
        requests = self.pbx.stack.requests_to(self.addr)
        return [r for r in requests if method is None or r.method == method]

    @property
    def got(self) -> list[str]:
        """The methods of the requests the PBX sent this phone, in order."""
        return [r.method for r in self.received()]

    @property
    def invites(self) -> list[Request]:
        """The INVITEs that started calls to this phone (re-INVITEs left out)."""
        return [r for r in self.received("INVITE") if r.to_addr.tag is None]

    @property
    def invite(self) -> Request:
        invites = self.invites
        assert invites, f"{self.device} got no INVITE"
        return invites[-1]

    def notified(self, call_id: str | None = None) -> list[int]:
        """The statuses of the transfer NOTIFYs (sipfrag) this phone got."""
        wanted = self.dialog(call_id).call_id
        return [int(r.body.split()[1]) for r in self.received("NOTIFY") if r.call_id == wanted]

    # --- answering the PBX's INVITEs ------------------------------------------------------

    async def reply(
        self,
        status: int,
        invite: Request | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        settle: bool = True,
    ) -> None:
        """Respond to the PBX's INVITE (the last one by default); `settle=False` leaves the
        call manager no time to react before the test's next step."""
        invite = invite or self.invite
        tag = None if status == 100 else self._tags.setdefault(invite.call_id, new_tag())
        response = make_response(invite, status, to_tag=tag, headers=headers, body=body)
        self.pbx.stack.deliver(invite, response)
        if settle:
            await self.pbx.settle()

    async def ring(self, invite: Request | None = None) -> None:
        await self.reply(180, invite)

    async def answer(
        self, invite: Request | None = None, *, body: bytes | None = None, settle: bool = True
    ) -> None:
        """200 with our answer to the PBX's offer (or `body`)."""
        invite = invite or self.invite
        if body is None:
            body = self.answer_to(invite.body)
        tag = self._tags.setdefault(invite.call_id, new_tag())
        self._dialogs[invite.call_id] = Dialog.from_uas(invite, tag)
        headers = (("Contact", self.contact), ("Content-Type", "application/sdp"))
        await self.reply(200, invite, headers=headers, body=body, settle=settle)

    async def refuse(self, status: int = 486, invite: Request | None = None) -> None:
        await self.reply(status, invite)

    async def never_answer(self, invite: Request | None = None) -> None:
        """The INVITE's transaction times out (timer B): nobody there."""
        self.pbx.stack.deliver(invite or self.invite, None)
        await self.pbx.settle()

    # --- calling ---------------------------------------------------------------------------

    async def dial(self, number: str, *, body: bytes | None = None) -> Dialled:
        """Send the PBX an INVITE for `number` with our offer, or `body` (b"": late offer)."""
        headers = Headers(
            [
                ("Via", str(self.via())),
                ("Max-Forwards", "70"),
                ("From", f'"{self.name}" <sip:{self.number}@{ADVERTISE}>;tag={new_tag()}'),
                ("To", f"<sip:{number}@{ADVERTISE}>"),
                ("Call-ID", new_call_id(self.host)),
                ("CSeq", "1 INVITE"),
                ("Contact", self.contact),
            ]
        )
        body = self.sdp() if body is None else body
        if body:
            headers.add("Content-Type", "application/sdp")
        invite = Request("INVITE", f"sip:{number}@{ADVERTISE}", headers, body)
        self._dialled.append(invite)
        key = ("INVITE", invite.branch)
        caller = Party(COMPANY, self.number, self.name, self.device)
        direction = "outbound" if number.startswith("0") else "internal"
        pbx = self.pbx
        mark = len(pbx.log)

        async def invited() -> None:  # what Engine._invite does once the caller is known
            pbx.calls.setup_started(key)
            try:
                await pbx.calls.incoming(invite, self.addr, "udp", key, caller, number, direction)
            finally:
                pbx.calls.setup_finished(key)

        pbx.tasks.spawn(invited())
        await pbx.settle()
        created = [
            e.call_id for e in pbx.log[mark:] if isinstance(e, CallChanged) and e.previous is None
        ]
        return Dialled(self, invite, key, created[0] if created else None)

    # --- inside dialogs --------------------------------------------------------------------

    def dialog(self, call_id: str | None = None) -> Dialog:
        """Our side of the dialog with this SIP Call-ID (None: the one dialog still up)."""
        for invite in self._dialled:
            if invite.call_id not in self._dialogs:
                ok = [r for r in self.pbx.stack.responses_to(invite) if 200 <= r.status < 300]
                if ok:
                    self._dialogs[invite.call_id] = Dialog.from_uac(invite, ok[0])
        if call_id is None:
            byes = {r.call_id for r in self.received("BYE")} | self._byes
            live = [c for c in self._dialogs if c not in byes]
            assert len(live) == 1, f"{self.device} has {len(live)} dialogs up: name one"
            call_id = live[0]
        return self._dialogs[call_id]

    def replaces(self, call_id: str) -> str:
        """A Replaces value naming our dialog `call_id` as the PBX sees it (RFC 3891 3)."""
        invite = next((d for d in self._dialled if d.call_id == call_id), None)
        answered = invite is None or any(
            r.status >= 200 for r in self.pbx.stack.responses_to(invite)
        )
        if not answered:  # our INVITE still rings: name its early dialog
            assert invite is not None
            tagged = [r for r in self.pbx.stack.responses_to(invite) if r.to_addr.tag]
            to_tag, from_tag = tagged[-1].to_addr.tag, invite.from_addr.tag
        else:
            dialog = self.dialog(call_id)
            to_tag, from_tag = dialog.remote_tag, dialog.local_tag
        return f"{call_id};to-tag={to_tag};from-tag={from_tag}"

    async def send(
        self,
        method: str,
        call_id: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Response | None:
        """Send a request in one of our dialogs; returns the PBX's last response to it."""
        dialog = self.dialog(call_id)
        request, _ = dialog.create_request(
            method,
            via=self.via(),
            contact=self.contact,
            body=body,
            content_type=content_type,
            extra_headers=headers,
        )
        if method == "BYE":
            self._byes.add(dialog.call_id)
        self.pbx.receive(request)
        await self.pbx.settle()
        responses = self.pbx.stack.responses_to(request)
        last = responses[-1] if responses else None
        if method == "INVITE" and body and last is not None and 200 <= last.status < 300:
            await self.ack(last)  # a re-INVITE without an offer is ACKed by the test, answered
        return last

    async def ack(self, response: Response, body: bytes = b"") -> None:
        """ACK the PBX's 2xx to one of our INVITEs, with our answer when it carried an offer."""
        dialog = self.dialog(response.call_id)
        ack, _ = dialog.make_ack(
            response.cseq.number,
            via=self.via(),
            body=body,
            content_type="application/sdp" if body else None,
        )
        self.pbx.receive(ack)
        await self.pbx.settle()

    def answer_to(self, offer: bytes, direction: str | None = None) -> bytes:
        """Our SDP answer to the PBX's `offer`."""
        answer = sdp.negotiate(
            sdp.SessionDescription.parse(offer),
            local_ip=self.host,
            local_port=RTP_PORT,
            session_id=7,
            version=next(self._versions),
            direction=direction,
        )
        return bytes(answer.sdp)

    async def hang_up(self, call_id: str | None = None) -> Response | None:
        return await self.send("BYE", call_id)

    async def hold(self, call_id: str | None = None, method: str = "INVITE") -> Response | None:
        """Put the other party on hold: an offer that only sends (RFC 3264 8.4)."""
        return await self.offer(self.sdp("sendonly"), call_id, method)

    async def resume(self, call_id: str | None = None, method: str = "INVITE") -> Response | None:
        return await self.offer(self.sdp("sendrecv"), call_id, method)

    async def offer(
        self, body: bytes, call_id: str | None = None, method: str = "INVITE"
    ) -> Response | None:
        content_type = "application/sdp" if body else None
        return await self.send(method, call_id, body=body, content_type=content_type)

    async def refer(
        self, number: str, call_id: str | None = None, *, replaces: str | None = None
    ) -> Response | None:
        """Transfer the other party of our dialog to `number` (attended: `replaces`)."""
        headers = {"Replaces": replaces} if replaces else {}
        target = SipUri("sip", number, None, ADVERTISE, None, {}, headers)
        refer_to = (
            ("Refer-To", f"<{target}>"),
            ("Referred-By", f"<sip:{self.number}@{ADVERTISE}>"),
        )
        return await self.send("REFER", call_id, headers=refer_to)
