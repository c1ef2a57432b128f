"""Recording an announcement by phone: an administrator dials the feature code (`*55` by default,
EngineConfig.record_announcement_code), hears a beep and speaks; `#` or hanging up ends the
recording (at most `max_seconds`), which goes to the `AnnouncementStore` (an Announcement the
portal lists, pbx/announcement_store.py).

The router lets only administrators' phones reach the code (others get 403). The PBX answers
the call itself (`CallManager.answer_locally`) and records what the phone sends as a WAV file,
8 kHz 16-bit PCM (`MediaEndpoint.record`), in the announcements folder, under a random name; a
take shorter than `MIN_SECONDS` (the caller pressed # at once) or whose file could not be
written is deleted.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pbx.engine.call import Call, CallState
from pbx.engine.caller_sessions import CallerSessions
from pbx.engine.calls import CallManager
from pbx.engine.events import Event
from pbx.engine.media import MediaEndpoint, Recording
from pbx.engine.routing import Route
from pbx.engine.services import AnnouncementStore, RecordedAnnouncement, Tasks
from pbx.media.tone import sine

log = logging.getLogger(__name__)

MIN_SECONDS = 0.5  # a shorter take is no announcement
STOP_KEY = "#"
BEEP = sine(1000, 0.3, amplitude=0.3)  # speak now
SAVED = np.concatenate(  # two short beeps: kept, goodbye
    [
        sine(1000, 0.12, amplitude=0.3),
        np.zeros(800, dtype=np.int16),
        sine(1000, 0.12, amplitude=0.3),
    ]
)


@dataclass(eq=False)
class Take:
    """One administrator's call recording an announcement."""

    call: Call
    media: MediaEndpoint
    path: Path
    recording: Recording | None = None
    over: bool = False  # the recording ended: keys and the end of the call change nothing


class AnnouncementRecorder:
    """Every announcement being recorded by phone on one engine."""

    def __init__(
        self,
        calls: CallManager,
        store: AnnouncementStore,
        *,
        folder: str | Path,
        tasks: Tasks,
        max_seconds: float = 120,
    ) -> None:
        self.calls = calls
        self.store = store
        self.folder = Path(folder)
        self.tasks = tasks
        self.max_seconds = max_seconds
        # The administrator hanging up ends the take: what was said is the announcement.
        self.takes = CallerSessions[Take](self._key, lambda take: self._end(take, hang_up=False))
        calls.on_record_announcement = self.start

    def on_event(self, event: Event) -> None:
        self.takes.on_event(event)

    def _key(self, take: Take, digit: str) -> None:
        if digit == STOP_KEY:
            self._end(take, hang_up=True)

    def start(self, call: Call, route: Route) -> None:
        """Answer the administrator's call, beep, and record once the beep has played."""
        media = self.calls.answer_locally(call, by=route.number)
        take = Take(call, media, self.folder / f"phone-{secrets.token_hex(16)}.wav")
        self.takes[call.id] = take
        media.on_played = lambda: self._record(take)
        media.play(BEEP, loop=False)
        log.info("call %s: %s records an announcement", call.id[:8], call.caller.number)

    def _record(self, take: Take) -> None:
        take.media.on_played = None
        if take.over:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            recording = take.media.record(take.path, max_seconds=self.max_seconds)
        except OSError as error:
            log.error("announcement by phone cannot be recorded in %s: %s", self.folder, error)
            self._end(take, hang_up=True)
            return
        recording.on_finished = lambda: self._end(take, hang_up=True)  # full, or disk error
        take.recording = recording

    def _end(self, take: Take, *, hang_up: bool) -> None:
        """Stop recording, hand the take to the store (or delete it), and say goodbye."""
        if take.over:
            return
        take.over = True
        self.takes.pop(take.call.id, None)
        kept = self._keep(take)
        call = take.call
        if not hang_up or call.state is CallState.ENDED:
            return
        if kept:  # two beeps, then goodbye
            take.media.on_played = lambda: self.calls.hangup_call(call, "announcement recorded")
            take.media.play(SAVED, loop=False)
        else:
            self.calls.hangup_call(call, "announcement not recorded")

    def _keep(self, take: Take) -> bool:
        recording = take.recording
        if recording is None:
            return False
        recording.stop()
        duration = recording.duration
        if recording.error is not None or duration < MIN_SECONDS:
            log.info("announcement by phone of %.1f s not kept", duration)
            take.path.unlink(missing_ok=True)
            return False
        caller = take.call.caller
        recorded = RecordedAnnouncement(str(take.path), caller.company_id, caller.number, duration)
        self.tasks.spawn(self.store.save(recorded))
        return True
