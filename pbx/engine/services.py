"""The narrow services the call layer uses, each a protocol built once in `Engine`.

The call layer (calls.py, ringer.py, operations.py, dialogs.py) never holds the whole engine:
it gets these, so that unit tests can give it a fake SIP stack and a fake clock, and so that
nothing imports the engine module upwards.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pbx.engine.events import Event, ExtensionKey, ExtensionState, ExtensionStateChanged

if TYPE_CHECKING:
    from pbx.engine.directory import HuntGroupInfo, TrunkInfo
    from pbx.engine.media import MediaEndpoint
    from pbx.engine.registrar import Binding
    from pbx.engine.routing import Party, Route, Unavailable
    from pbx.sip.headers import Via
    from pbx.sip.message import Request, Response

log = logging.getLogger(__name__)

Addr = tuple[str, int]
ResponseCallback = Callable[["Response | None"], None]


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time and timers: the event loop's in the engine, a fake one in unit tests."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop as a `Clock`."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay, callback)


class SipSender(Protocol):
    """What legs and the call layer need of the SIP stack (pbx/engine/stack.py)."""

    advertise: str

    def now(self) -> float: ...

    def via(self, transport: str = "udp") -> Via: ...

    def contact(self, user: str = "centralino", transport: str = "udp") -> str: ...

    def send_request(
        self, request: Request, dest: Addr, transport: str, callback: ResponseCallback | None
    ) -> Any: ...

    def send_response(self, response: Response) -> None: ...

    def send_ack(self, ack: Request, dest: Addr, transport: str) -> None: ...

    def destination(self, binding: Binding) -> Addr: ...


class MediaPorts(Protocol):
    """RTP endpoints (pbx/engine/media.py MediaManager) and the hold music."""

    moh: Any

    async def allocate(self) -> MediaEndpoint: ...


class Contacts(Protocol):
    """Where a device can be reached now (the registrar)."""

    def contacts(self, username: str, now: float) -> list[Binding]: ...


class Routing(Protocol):
    """The dial plan (routing.py Router)."""

    async def route(self, caller: Party, dialled: str, depth: int = 0) -> Route | Unavailable: ...

    async def forward(self, caller: Party, target: str) -> Route | Unavailable: ...

    async def hunt_fallback(
        self, caller: Party, group: HuntGroupInfo, depth: int, reason: str
    ) -> Route | Unavailable: ...


class TrunkAddresses(Protocol):
    """The carrier's address for a trunk (trunk.py TrunkManager)."""

    async def address(self, trunk: TrunkInfo) -> Addr | None: ...


class HuntMemory(Protocol):
    """What the hunt algorithms remember between calls (the member that took a group's last
    call, when each line became idle), kept where it survives a restart and every node sees
    it (pbx/hunt_memory.py); `MemoryHuntMemory` for tests."""

    async def last_member(self, company_id: int, group: str) -> str: ...

    async def idle_since(self, company_id: int, numbers: Sequence[str]) -> dict[str, float]: ...

    def took_call(self, company_id: int, group: str, member: str) -> None:
        """Remember (without waiting) that `member` took a call of `group`."""

    def line_idle(self, company_id: int, number: str, at: float) -> None:
        """Remember (without waiting) that extension `number` became idle at `at`."""


class MemoryHuntMemory:
    """HuntMemory in a dict: for tests, and for an engine run without a database."""

    def __init__(self) -> None:
        self.last: dict[tuple[int, str], str] = {}
        self.idle: dict[tuple[int, str], float] = {}

    async def last_member(self, company_id: int, group: str) -> str:
        return self.last.get((company_id, group), "")

    async def idle_since(self, company_id: int, numbers: Sequence[str]) -> dict[str, float]:
        return {n: self.idle[(company_id, n)] for n in numbers if (company_id, n) in self.idle}

    def took_call(self, company_id: int, group: str, member: str) -> None:
        self.last[(company_id, group)] = member

    def line_idle(self, company_id: int, number: str, at: float) -> None:
        self.idle[(company_id, number)] = at


@dataclass(frozen=True, slots=True)
class RecordedAnnouncement:
    """An announcement an administrator recorded by phone, handed to the store."""

    path: str  # a WAV file (8 kHz 16-bit PCM mono): the store's from now on
    company_id: int
    extension: str  # who recorded it
    duration: float  # seconds


class AnnouncementStore(Protocol):
    """Where announcements recorded by phone go (pbx/announcement_store.py: an Announcement
    row the portal lists); `MemoryAnnouncementStore` for tests."""

    async def save(self, recorded: RecordedAnnouncement) -> None: ...


class MemoryAnnouncementStore:
    """Keeps what it is given in a list: for tests, and for an engine run without a database."""

    def __init__(self) -> None:
        self.saved: list[RecordedAnnouncement] = []

    async def save(self, recorded: RecordedAnnouncement) -> None:
        self.saved.append(recorded)


@dataclass(frozen=True, slots=True)
class SavedDialog:
    """What it takes to end an answered leg's dialog (RFC 3261 12) when the engine that had it
    is gone: the dialog in its wire forms, and where its far end listens."""

    leg_id: int
    call_id: str
    local_tag: str
    remote_tag: str | None
    local_uri: str  # our From, with our tag
    remote_uri: str  # our To, with theirs
    remote_target: str  # the far end's Contact: the Request-URI
    route_set: tuple[str, ...]
    local_cseq: int
    secure: bool
    peer: Addr  # where the leg's requests went (its source: NAT-safe)
    transport: str


class DialogJournal(Protocol):
    """This node's answered legs' dialogs, kept where they survive a crash of the engine
    (pbx/dialog_store.py: rows in the database); `MemoryDialogJournal` for tests.

    The next start ends each dialog the journal still holds (dialog_journal.py)."""

    def save(self, dialog: SavedDialog) -> None:
        """Keep `dialog` (without waiting), in place of what was kept for its leg."""

    def forget(self, leg_id: int) -> None:
        """Drop (without waiting) what was kept for leg `leg_id`: it has ended."""

    async def lost(self) -> list[SavedDialog]:
        """Every dialog kept: at start, the ones a previous run never ended."""
        ...

    async def clear(self) -> None:
        """Drop everything kept."""


class MemoryDialogJournal:
    """DialogJournal in a dict: for tests, and for an engine run without a database (where a
    crash loses it anyway)."""

    def __init__(self, dialogs: Sequence[SavedDialog] = ()) -> None:
        self.dialogs: dict[int, SavedDialog] = {d.leg_id: d for d in dialogs}

    def save(self, dialog: SavedDialog) -> None:
        self.dialogs[dialog.leg_id] = dialog

    def forget(self, leg_id: int) -> None:
        self.dialogs.pop(leg_id, None)

    async def lost(self) -> list[SavedDialog]:
        return list(self.dialogs.values())

    async def clear(self) -> None:
        self.dialogs.clear()


# What an extension shows while its line is in use (ringing alone is not a use).
_IN_USE = frozenset({ExtensionState.TALKING, ExtensionState.HELD, ExtensionState.DIALLING})


class IdleLines:
    """Tells the hunt memory when an extension's line becomes idle after being used (a call
    talked, held or dialled): "longest idle" reads it. A line that only rang stays idle since
    its last use. The time is the wall clock's (seconds since the epoch), not the event
    loop's: the database keeps it as a date that other nodes and the next run compare."""

    def __init__(self, memory: HuntMemory, wall_time: Callable[[], float] = time.time) -> None:
        self.memory = memory
        self.wall_time = wall_time
        self._used: set[ExtensionKey] = set()  # in use since they were last idle

    def on_event(self, event: Event) -> None:
        if not isinstance(event, ExtensionStateChanged):
            return
        key = (event.company_id, event.number)
        if event.state in _IN_USE:
            self._used.add(key)
        elif event.state is ExtensionState.IDLE and key in self._used:
            self._used.discard(key)
            self.memory.line_idle(event.company_id, event.number, self.wall_time())


class MessageCounts(Protocol):
    """How many voicemail messages an extension has (the voicemail store): new and heard."""

    async def counts(self, company_id: int, number: str) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """An extension's voicemail, as the engine needs it."""

    company_id: int
    number: str
    enabled: bool = True
    greeting: str = ""  # the owner's greeting (a WAV file's path); "": the default spoken one
    has_pin: bool = False
    time_zone: str = "Europe/Rome"  # the company's: message dates are announced in it


@dataclass(frozen=True, slots=True)
class LeftMessage:
    """A message recorded by the engine (or found after a crash), handed to the store."""

    company_id: int
    number: str  # the extension whose mailbox it is
    caller: str
    caller_name: str
    call_id: str
    received_at: datetime  # aware
    duration: float  # seconds
    file_name: str  # its name in the voicemail folder, chosen before recording started
    pending: str  # where it was recorded: the store moves it to the voicemail folder


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message in a mailbox, for listening by phone."""

    id: int
    caller: str
    caller_name: str
    received_at: datetime  # aware
    duration: float
    path: str
    heard: bool


class PinCheck(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    LOCKED = "locked"  # too many wrong PINs lately: even the right one is refused for a while
    NO_PIN = "no_pin"  # the owner never set one: nobody listens by phone


class VoicemailStore(MessageCounts, Protocol):
    """Mailboxes and their messages (pbx/voicemail_store.py: the database and the voicemail
    folder); `MemoryVoicemailStore` for tests and for an engine run without a database.

    Messages come in new ones first, newest first (as the portal lists them). A method that
    changes counts says nothing to anyone: the engine emits `MailboxChanged` after it.
    """

    async def mailbox(self, company_id: int, number: str) -> MailboxInfo | None: ...

    async def saved(self, message: LeftMessage) -> bool:
        """Keep a recording as a message: the file moved from `pending` to the voicemail
        folder as `file_name`, then the row that points to it. Safe to repeat (a crash
        between the two): a message already kept is kept once. False when nothing is kept
        (the mailbox is gone, no file); raises when the database fails, leaving the file
        where a restart finds it."""
        ...

    async def check_pin(self, company_id: int, number: str, pin: str) -> PinCheck: ...

    async def messages(self, company_id: int, number: str) -> list[StoredMessage]: ...

    async def mark_heard(self, company_id: int, number: str, message_id: int) -> None: ...

    async def delete(self, company_id: int, number: str, message_id: int) -> None: ...


class MemoryVoicemailStore:
    """VoicemailStore in dicts; with `folder`, kept recordings are moved there as the real
    store does. `add()` makes a mailbox (none exists until then: every call ends as without
    voicemail)."""

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        pin_attempts: int = 5,
        lock_seconds: float = 900,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.pin_attempts = pin_attempts
        self.lock_seconds = lock_seconds
        self.now = now
        self.mailboxes: dict[ExtensionKey, MailboxInfo] = {}
        self.pins: dict[ExtensionKey, str] = {}
        self.failed_pins: dict[ExtensionKey, int] = {}
        self.locked_until: dict[ExtensionKey, float] = {}
        self.kept: dict[ExtensionKey, list[StoredMessage]] = {}
        self.left: list[LeftMessage] = []  # what `saved` kept, in order
        self._ids = itertools.count(1)

    def add(self, company_id: int, number: str, *, pin: str = "", **options: Any) -> MailboxInfo:
        """A mailbox for extension `number` (options: MailboxInfo's fields)."""
        key = (company_id, number)
        info = MailboxInfo(company_id, number, has_pin=bool(pin), **options)
        self.mailboxes[key] = info
        if pin:
            self.pins[key] = pin
        self.kept.setdefault(key, [])
        return info

    def put(self, company_id: int, number: str, message: StoredMessage) -> None:
        """A message already there (tests of listening)."""
        self.kept.setdefault((company_id, number), []).append(message)

    async def mailbox(self, company_id: int, number: str) -> MailboxInfo | None:
        return self.mailboxes.get((company_id, number))

    async def saved(self, message: LeftMessage) -> bool:
        key = (message.company_id, message.number)
        if key not in self.mailboxes:
            Path(message.pending).unlink(missing_ok=True)
            return False
        kept = self.kept.setdefault(key, [])
        path = Path(message.pending)
        if self.folder is not None:
            target = self.folder / message.file_name
            if any(Path(m.path) == target for m in kept):
                return True  # kept before a crash
            if path.exists():
                os.replace(path, target)
            elif not target.exists():
                return False
            path = target
        stored = StoredMessage(
            next(self._ids),
            message.caller,
            message.caller_name,
            message.received_at,
            message.duration,
            str(path),
            heard=False,
        )
        kept.append(stored)
        self.left.append(message)
        return True

    async def check_pin(self, company_id: int, number: str, pin: str) -> PinCheck:
        key = (company_id, number)
        if self.locked_until.get(key, float("-inf")) > self.now():
            return PinCheck.LOCKED
        right = self.pins.get(key, "")
        if not right:
            return PinCheck.NO_PIN
        if pin == right:
            self.failed_pins[key] = 0
            return PinCheck.ACCEPTED
        self.failed_pins[key] = self.failed_pins.get(key, 0) + 1
        if self.failed_pins[key] < self.pin_attempts:
            return PinCheck.WRONG
        self.failed_pins[key] = 0
        self.locked_until[key] = self.now() + self.lock_seconds
        return PinCheck.LOCKED  # that one was the last wrong PIN allowed

    async def messages(self, company_id: int, number: str) -> list[StoredMessage]:
        kept = self.kept.get((company_id, number), [])
        return sorted(kept, key=lambda m: (m.heard, -m.received_at.timestamp()))

    async def mark_heard(self, company_id: int, number: str, message_id: int) -> None:
        kept = self.kept.get((company_id, number), [])
        for i, message in enumerate(kept):
            if message.id == message_id:
                kept[i] = replace(message, heard=True)

    async def delete(self, company_id: int, number: str, message_id: int) -> None:
        kept = self.kept.get((company_id, number), [])
        for message in [m for m in kept if m.id == message_id]:
            kept.remove(message)
            if self.folder is not None:
                Path(message.path).unlink(missing_ok=True)

    async def counts(self, company_id: int, number: str) -> tuple[int, int]:
        kept = self.kept.get((company_id, number), [])
        heard = sum(m.heard for m in kept)
        return len(kept) - heard, heard


class Tasks:
    """Keeps every background task of the engine until it ends, and logs its failure."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def __len__(self) -> int:
        return len(self._tasks)
