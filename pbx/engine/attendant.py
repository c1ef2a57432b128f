"""The auto-attendant ("Multiselection"): answers a call, plays a menu's announcement and does
what the caller's key says (SPEC E3, E4).

A call routed to a Multiselection is answered by the PBX (`CallManager.answer_locally`, state
ATTENDANT); the menu of the moment is chosen by the week's schedule and the holidays in the
company's time zone (schedule.py). Keys (RFC 4733 or SIP INFO) arrive as `DigitPressed` events
and are taken while the announcement plays, so a caller who knows the menu need not wait. A key
that leads on (an extension, a hunt group, an outside number, the operator) routes the call
again, with ringback meanwhile; "go to a menu" and "back" move along the caller's path.

A menu that leads back into itself never traps a caller: a timeout or an invalid key replays the
menu `retries` times, then the menu's timeout action (or invalid-key action) is done; a
session that has failed `MAX_FAILURES` times in all, whatever the menus say, is hung up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np

from pbx.engine.call import Call, CallState
from pbx.engine.caller_sessions import CallerSessions
from pbx.engine.calls import CallManager
from pbx.engine.directory import AttendantInfo, Directory, MenuAction, MenuInfo
from pbx.engine.events import Event
from pbx.engine.media import MediaEndpoint
from pbx.engine.routing import Route
from pbx.engine.schedule import menu_at
from pbx.engine.services import Clock, Tasks, Timer
from pbx.media.tone import ringback

log = logging.getLogger(__name__)

MAX_FAILURES = 12  # timeouts and invalid keys in one call, all menus together
NO_PROMPT = np.zeros(4000, dtype=np.int16)  # half a second of silence for a menu without one
GOODBYE_SECONDS = 0.5

PromptLoader = Callable[[str], "np.ndarray | None"]


class PromptCache:
    """Announcements decoded once (8 kHz samples), by path: a file is never rewritten (a new
    recording gets a new name), so what was decoded stays right. A file that cannot be read
    is logged and plays as silence."""

    def __init__(self, load: Callable[[str], np.ndarray], size: int = 64) -> None:
        self.load = load
        self.size = size
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray | None:
        samples = self.cache.get(path)
        if samples is None:
            try:
                samples = self.load(path)
            except (OSError, ValueError) as error:
                log.error("announcement %s cannot be played: %s", path, error)
                return None
            if len(self.cache) >= self.size:
                self.cache.pop(next(iter(self.cache)))
            self.cache[path] = samples
        return samples


@dataclass
class Session:
    """One caller in a Multiselection: where they are and how often they failed."""

    call: Call
    info: AttendantInfo
    media: MediaEndpoint
    menu: MenuInfo
    path: list[int] = field(default_factory=list)  # the menus before this one, for "back"
    tries: int = 0  # timeouts and invalid keys in this menu
    failures: int = 0  # ...in all menus
    timer: Timer | None = None
    leaving: bool = False  # sent on: keys no longer count


class Attendants:
    """Every auto-attendant session of one engine."""

    def __init__(
        self,
        calls: CallManager,
        directory: Directory,
        *,
        clock: Clock,
        tasks: Tasks,
        prompts: PromptLoader,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.calls = calls
        self.directory = directory
        self.clock = clock
        self.tasks = tasks
        self.prompts = prompts
        self.wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self.sessions = CallerSessions[Session](self.key, self._stop_timer)
        self.ringback = ringback()
        calls.on_attendant = self.start

    # --- events --------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        self.sessions.on_event(event)

    # --- answering -----------------------------------------------------------------------

    def start(self, call: Call, route: Route) -> None:
        """Answer `call` for the Multiselection of `route` and play its menu of the moment."""
        info = route.attendant
        assert info is not None
        menu = self.menu_now(info)
        if menu is None:
            self.calls.unavailable(call, f"Multiselection {info.number} has no menu now")
            return
        media = self.calls.answer_locally(call, CallState.ATTENDANT, by=info.number)
        session = Session(call, info, media, menu)
        self.sessions[call.id] = session
        media.on_played = lambda: self._played(session)
        log.info("call %s: Multiselection %s, menu %s", call.id[:8], info.number, menu.name)
        self._play(session)

    def menu_now(self, info: AttendantInfo) -> MenuInfo | None:
        """The menu that answers now: a holiday's, the week's, or the default one."""
        holidays: dict[date, int] = dict(info.holidays)
        menu_id = menu_at(
            self.wall_clock(), info.time_zone, info.periods, holidays, info.default_menu
        )
        return info.menu(menu_id)

    # --- menus ---------------------------------------------------------------------------

    def _play(self, session: Session) -> None:
        self._stop_timer(session)
        samples = self.prompts(session.menu.announcement) if session.menu.announcement else None
        session.media.play(samples if samples is not None else NO_PROMPT, loop=False)

    def _played(self, session: Session) -> None:
        """The announcement ended: wait for a key."""
        if session.leaving or session.call.state is not CallState.ATTENDANT:
            return
        session.timer = self.clock.call_later(
            session.menu.timeout, lambda: self._failed(session, "timeout")
        )

    def key(self, session: Session, digit: str) -> None:
        if session.leaving or session.call.state is not CallState.ATTENDANT:
            return
        self._stop_timer(session)
        action = session.menu.action(digit)
        if action is None or digit in ("timeout", "invalid"):
            self._failed(session, "invalid")
            return
        self._do(session, action)

    def _failed(self, session: Session, why: str) -> None:
        """A timeout or an invalid key: replay, or (retries spent) the menu's own action."""
        session.timer = None
        if session.leaving or session.call.state is not CallState.ATTENDANT:
            return
        session.failures += 1
        session.tries += 1
        if session.failures >= MAX_FAILURES:
            self._hang_up(session, "too many timeouts and invalid keys")
            return
        if session.tries <= session.menu.retries:
            self._play(session)
            return
        action = session.menu.action(why) or session.menu.action("timeout")
        if action is None or action.action == "replay":  # nothing else to do: goodbye
            self._hang_up(session, f"no key ({why})")
            return
        self._do(session, action)

    def _do(self, session: Session, action: MenuAction) -> None:
        kind = action.action
        if kind == "replay":
            self._play(session)
        elif kind == "menu":
            target = session.info.menu(action.menu)
            if target is None:
                self._failed(session, "invalid")
                return
            session.path.append(session.menu.id)
            self._enter(session, target)
        elif kind == "back":
            previous = session.info.menu(session.path.pop()) if session.path else None
            self._enter(session, previous or session.menu)
        elif kind == "hangup":
            self._hang_up(session, "menu hangup")
        elif kind == "operator":
            self._send_on(session, "", operator=True)
        elif kind == "voicemail":
            self._send_on(session, action.number, voicemail=True)
        elif kind in ("extension", "hunt_group", "outside"):
            self._send_on(session, action.number)
        else:
            log.warning("menu %s: unknown action %s", session.menu.name, kind)
            self._failed(session, "invalid")

    def _enter(self, session: Session, menu: MenuInfo) -> None:
        session.menu = menu
        session.tries = 0
        self._play(session)

    def _hang_up(self, session: Session, reason: str) -> None:
        session.leaving = True
        self._stop_timer(session)
        self.calls.hangup_call(session.call, reason)

    def _send_on(
        self, session: Session, number: str, *, operator: bool = False, voicemail: bool = False
    ) -> None:
        """Route the caller again, to `number` (or the operator, or a voicemail)."""
        session.leaving = True
        self._stop_timer(session)
        session.media.on_played = None
        call = session.call
        session.media.play(self.ringback)
        call.move(CallState.ROUTING)

        async def route() -> None:
            caller = call.caller
            if voicemail:
                self.calls.unavailable(call, "voicemail from a menu", voicemail=number)
                return
            target = number
            if operator:
                target = await self.directory.operator_number(caller.company_id)
            found = await self.calls.router.route(caller, target, 1)
            await self.calls.follow(call, found)

        self.tasks.spawn(route())

    @staticmethod
    def _stop_timer(session: Session) -> None:
        if session.timer is not None:
            session.timer.cancel()
            session.timer = None
