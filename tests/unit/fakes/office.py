"""The call layer of one engine over the fakes: `office()` wires it the way `Engine` does
(runtime.py), and `Pbx` drives it (settle, let time pass, hand in requests) and reads back
what happened (calls, legs, events, records, media).

Phone actions are coroutines that let the event loop run afterwards (`Pbx.settle`): the call
manager awaits its ringer's result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbx.engine.announcement_recorder import AnnouncementRecorder
from pbx.engine.attendant import NO_PROMPT, Attendants
from pbx.engine.call import Call, CallState
from pbx.engine.calls import CallManager
from pbx.engine.dialogs import DialogRequests
from pbx.engine.directory import ExtensionInfo, MemoryDirectory
from pbx.engine.events import (
    CallChanged,
    Event,
    EventBus,
    ExtensionState,
    ExtensionStateChanged,
    LegChanged,
)
from pbx.engine.legs import DialogIndex, LegState
from pbx.engine.operations import CallOperations
from pbx.engine.presence import Presence
from pbx.engine.records import MemoryRecorder, RecordWriter
from pbx.engine.routing import Router
from pbx.engine.services import (
    IdleLines,
    MemoryAnnouncementStore,
    MemoryHuntMemory,
    MemoryVoicemailStore,
    Tasks,
)
from pbx.engine.session_timers import SessionTimers
from pbx.engine.voice_prompts import AudioFiles
from pbx.engine.voicemail import Voicemail
from pbx.engine.voicemail_menu import VoicemailMenu
from pbx.sip.message import Request, make_response
from tests.unit.fakes.clock import FakeClock, FakeWallClock
from tests.unit.fakes.directory import (
    CARRIER,
    CARRIER_ADDR,
    FakeRegistrar,
    FakeTrunks,
    office_extensions,
)
from tests.unit.fakes.media import (
    MUSIC,
    FakeEndpoint,
    FakeMediaPorts,
    FakePrompts,
    FakeSpeech,
    inline,
)
from tests.unit.fakes.phones import Phone
from tests.unit.fakes.sip import FakeStack

SETTLE_ROUNDS = 30  # loop iterations that let every woken task run to its next wait
# Where the wall clock starts: a Monday morning in Rome (08:00 UTC is 09:00 there, CET).
MONDAY_9AM = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RECORD_CODE = "*55"  # EngineConfig.record_announcement_code's default
VOICEMAIL_CODE = "*98"  # EngineConfig.voicemail_code's default


class CheckedTasks(Tasks):
    """The engine's task keeper, but a task that fails fails the test (`Pbx.settle`)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[BaseException] = []

    def _done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.failures.append(task.exception())  # type: ignore[arg-type]
        super()._done(task)


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
    wall: FakeWallClock
    hunt_memory: MemoryHuntMemory
    prompts: FakePrompts
    attendants: Attendants
    announcements: MemoryAnnouncementStore
    recorder_by_phone: AnnouncementRecorder | None
    log: list[Event] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    phones: dict[str, Phone] = field(default_factory=dict)
    # Voicemail, with `voicemail_dir` (its store has no mailbox until a test adds one).
    voicemail_store: MemoryVoicemailStore = field(default_factory=MemoryVoicemailStore)
    voicemail: Voicemail | None = None
    voicemail_menu: VoicemailMenu | None = None
    speech: FakeSpeech = field(default_factory=FakeSpeech)

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

    def played(self, phone: Phone) -> list[str]:
        """What was played to `phone` on its open endpoint (or, none open, the last that
        faced it), in order: announcement paths, "silence" (a menu without a playable one),
        "ringback", "music"."""
        facing = [e for e in self.ports.endpoints if e.remote and e.remote[0] == phone.host]
        is_open = [e for e in facing if not e.closed]
        endpoint = self.media(phone) if is_open else facing[-1]
        names = []
        for samples in endpoint.played:
            if samples is NO_PROMPT:
                names.append("silence")
            elif samples is self.attendants.ringback:
                names.append("ringback")
            elif samples is MUSIC:
                names.append("music")
            else:
                names.append(self.prompts.name_of(samples) or repr(samples))
        return names

    def media(self, phone: Phone) -> FakeEndpoint:
        """The one open endpoint facing `phone` (its SDP told us where it receives RTP)."""
        facing = [e for e in self.ports.open if e.remote is not None and e.remote[0] == phone.host]
        assert len(facing) == 1, f"{len(facing)} open endpoints face {phone.device}"
        return facing[0]


def office(
    *overrides: ExtensionInfo,
    media_ports: int = 1000,
    announcements_dir: Path | None = None,
    record_code: str = RECORD_CODE,
    voicemail_dir: Path | None = None,
) -> Pbx:
    """Alice, Bob, Carol and Dave (`office_extensions`, each replaced by an override with
    its number) and a trunk to the carrier, wired as `Engine` wires its call layer; with
    `announcements_dir`, administrators record announcements there by dialling `record_code`;
    with `voicemail_dir`, voicemail records there (`Pbx.voicemail_store` has the mailboxes)."""
    directory = MemoryDirectory(trunk_list=[CARRIER])
    for ext in [*office_extensions(), *overrides]:
        directory.extensions[(ext.company_id, ext.number)] = ext
    clock = FakeClock()
    wall = FakeWallClock(clock, MONDAY_9AM)
    stack = FakeStack(clock)
    ports = FakeMediaPorts(media_ports, clock)
    hunt_memory = MemoryHuntMemory()
    prompts = FakePrompts()
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
        router=Router(
            directory,
            presence.is_busy,
            hunt_memory=hunt_memory,
            record_code=record_code if announcements_dir is not None else "",
            voicemail_code=VOICEMAIL_CODE if voicemail_dir is not None else "",
        ),
        trunks=trunks,
        tasks=tasks,
        dialogs=dialogs,
        hunt_memory=hunt_memory,
    )
    attendants = Attendants(
        calls, directory, clock=clock, tasks=tasks, prompts=prompts, wall_clock=wall
    )
    announcements = MemoryAnnouncementStore()
    recorder_by_phone = None
    if announcements_dir is not None:
        recorder_by_phone = AnnouncementRecorder(
            calls, announcements, folder=announcements_dir, tasks=tasks
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
        wall=wall,
        hunt_memory=hunt_memory,
        prompts=prompts,
        attendants=attendants,
        announcements=announcements,
        recorder_by_phone=recorder_by_phone,
    )
    if voicemail_dir is not None:
        pbx.voicemail_store = MemoryVoicemailStore(voicemail_dir, now=clock.now)
        files = AudioFiles(blocking=inline)
        pbx.voicemail = Voicemail(
            calls,
            pbx.voicemail_store,
            folder=voicemail_dir,
            tasks=tasks,
            speech=pbx.speech,
            files=files,
            blocking=inline,
            wall_clock=wall,
        )
        pbx.voicemail_menu = VoicemailMenu(
            calls, pbx.voicemail_store, tasks=tasks, speech=pbx.speech, files=files
        )
    # The bus logs a failing subscriber and goes on; here the failure fails the test.
    subscribers = (
        presence.on_event,
        RecordWriter(recorder).on_event,
        session_timers.on_event,
        attendants.on_event,
        IdleLines(hunt_memory, wall.timestamp).on_event,
        *([recorder_by_phone.on_event] if recorder_by_phone is not None else []),
        *([pbx.voicemail.on_event] if pbx.voicemail is not None else []),
        *([pbx.voicemail_menu.on_event] if pbx.voicemail_menu is not None else []),
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
