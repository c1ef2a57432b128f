"""The narrow services the call layer uses, each a protocol built once in `Engine`.

The call layer (calls.py, ringer.py, operations.py, dialogs.py) never holds the whole engine:
it gets these, so that unit tests can give it a fake SIP stack and a fake clock, and so that
nothing imports the engine module upwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
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
