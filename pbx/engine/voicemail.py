"""Voicemail: a caller nobody answered leaves a message (SPEC A4).

Every call that ends unanswered goes through `CallManager.unavailable` (no answer, busy,
do-not-disturb, no registered phone, a menu key or a hunt group's fallback naming an
extension's voicemail), which hands it here with the extension concerned. When that
extension's mailbox is on, the PBX answers (`answer_locally`), plays the greeting (the owner's
own, else a spoken one, else a beep alone) and a beep, and records what the caller says
until they hang up, press #, or `max_seconds` pass; # gets a thank-you before the hang-up. A
recording under `MIN_SECONDS` is dropped. Below `min_free_mb` of free disk the caller hears
that the mailbox is full, and nothing is recorded.

Crash safety: the recording is written under ``<folder>/pending/<node>/`` with a small JSON
file beside it, written before recording starts, that says whose message it is; the WAV is
flushed in small chunks (pbx/media/recorder.py). When the recording ends the store moves it
into the voicemail folder and writes the row (the file before the row); then the JSON goes.
A crash mid-recording leaves both files, and `recover()` at the next start of the same node
turns them into a message. Each change of a mailbox's counts is a `MailboxChanged` event:
message lamps follow it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbx.engine.call import Call, CallState
from pbx.engine.caller_sessions import CallerSessions
from pbx.engine.calls import CallManager
from pbx.engine.events import Event, ExtensionKey, MailboxChanged
from pbx.engine.media import MediaEndpoint, Recording
from pbx.engine.phone_line import Line
from pbx.engine.services import LeftMessage, MailboxInfo, Tasks, VoicemailStore
from pbx.engine.voice_prompts import (
    BEEP,
    CUE,
    AudioFiles,
    Blocking,
    Samples,
    Sentences,
    Speech,
    digits,
    joined,
)
from pbx.media.wav import WavFormatError, parse_wav

log = logging.getLogger(__name__)

MIN_SECONDS = 1.0  # a shorter recording is no message (a caller who hung up at the beep)
STOP_KEY = "#"
KEEP_RETRY_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)  # then every minute
MB = 1024 * 1024


@dataclass(eq=False)
class Deposit:
    """One caller leaving a message."""

    call: Call
    box: MailboxInfo
    media: MediaEndpoint
    line: Line
    file_name: str = ""
    received_at: datetime | None = None
    recording: Recording | None = None
    task: asyncio.Task[Any] | None = None
    over: bool = False  # the recording was handed to the store or dropped


class Voicemail:
    """Every message being left on one engine, and what a crash left behind."""

    def __init__(
        self,
        calls: CallManager,
        store: VoicemailStore,
        *,
        folder: str | Path,
        tasks: Tasks,
        speech: Speech,
        files: AudioFiles | None = None,
        node: str = "node1",
        blocking: Blocking = asyncio.to_thread,
        wall_clock: Callable[[], datetime] | None = None,
        max_seconds: float = 180,
        min_free_mb: float = 200,
        language: str = "it",
    ) -> None:
        self.calls = calls
        self.store = store
        self.folder = Path(folder)
        self.pending = self.folder / "pending" / node
        self.tasks = tasks
        self.speech = speech
        self.files = files or AudioFiles(blocking=blocking)
        self.blocking = blocking
        self.wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self.max_seconds = max_seconds
        self.min_free_mb = min_free_mb
        self.say = Sentences(language)
        # The caller hanging up ends the message: what they said is kept.
        self.deposits = CallerSessions[Deposit](
            lambda deposit, digit: deposit.line.pressed(digit), self._hung_up
        )
        self._saving: set[asyncio.Task[Any]] = set()
        calls.on_voicemail = self.take

    def on_event(self, event: Event) -> None:
        self.deposits.on_event(event)

    def _hung_up(self, deposit: Deposit) -> None:
        if deposit.task is not None:
            deposit.task.cancel()
        self._finish(deposit)

    # --- taking a call ---------------------------------------------------------------------

    async def take(self, call: Call, mailbox: ExtensionKey) -> bool:
        """Answer `call` for the voicemail of extension `mailbox`; False when its mailbox is
        off or missing (or voicemail cannot work now): the call then ends without it."""
        box = await self.store.mailbox(*mailbox)
        if box is None or not box.enabled:
            return False
        try:
            room = await self.blocking(self._has_room)
        except OSError as error:
            log.error("voicemail folder %s unusable: %s", self.pending, error)
            return False
        if room:
            prompt = await self._greeting(box)
        else:
            log.warning("voicemail of %s: less than %s MB free", box.number, self.min_free_mb)
            prompt = await self._sentence(self.say("full"))
        if call.state not in (CallState.ROUTING, CallState.RINGING):
            return False  # the caller gave up meanwhile: nothing to answer
        media = self.calls.answer_locally(call, by="voicemail")
        deposit = Deposit(call, box, media, Line(media, self.calls.clock))
        self.deposits[call.id] = deposit
        log.info("call %s: voicemail of %s", call.id[:8], box.number)
        deposit.task = self.tasks.spawn(self._run(deposit, prompt, room))
        return True

    def _has_room(self) -> bool:
        self.pending.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.pending).free >= self.min_free_mb * MB

    async def _greeting(self, box: MailboxInfo) -> Samples:
        own = await self.files.get(box.greeting) if box.greeting else None
        if own is None:
            own = await self.speech.say(self.say("greeting", number=digits(box.number)))
        return joined(own, BEEP)  # without speech: the beep alone

    async def _sentence(self, text: str) -> Samples:
        spoken = await self.speech.say(text)
        return spoken if spoken is not None else CUE

    async def _run(self, deposit: Deposit, prompt: Samples, room: bool) -> None:
        line = deposit.line
        if not room:
            await line.play(prompt, interrupt=False)
            self._hang_up(deposit, "voicemail full")
            return
        await line.play(prompt, interrupt=False)
        line.keys.clear()  # keys pressed over the greeting mean nothing
        try:
            self._record(deposit)
        except OSError as error:
            log.error("voicemail of %s cannot record: %s", deposit.box.number, error)
            self._hang_up(deposit, "voicemail cannot record")
            return
        recording = deposit.recording
        assert recording is not None
        recording.on_finished = line.wake  # the longest message, or the disk failed
        await line.until(lambda: STOP_KEY in line.keys or recording.stopped)
        kept = self._finish(deposit)
        goodbye = await self._sentence(self.say("saved" if kept else "goodbye"))
        await line.play(goodbye, interrupt=False)
        self._hang_up(deposit, "voicemail recorded" if kept else "voicemail too short")

    def _hang_up(self, deposit: Deposit, reason: str) -> None:
        self.deposits.pop(deposit.call.id, None)  # our own hang-up: nothing left to finish
        self.calls.hangup_call(deposit.call, reason)

    # --- recording -------------------------------------------------------------------------

    def _record(self, deposit: Deposit) -> None:
        """Say whose message it is (the JSON beside it), then record."""
        call, box = deposit.call, deposit.box
        deposit.file_name = f"{secrets.token_hex(16)}.wav"
        deposit.received_at = self.wall_clock()
        about = {
            "company_id": box.company_id,
            "number": box.number,
            "caller": call.caller.number,
            "caller_name": call.caller.name,
            "call_id": call.id,
            "received_at": deposit.received_at.isoformat(),
            "file_name": deposit.file_name,
        }
        sidecar = self._sidecar(deposit.file_name)
        written = sidecar.with_suffix(".tmp")
        written.write_text(json.dumps(about))
        os.replace(written, sidecar)
        try:
            deposit.recording = deposit.media.record(
                self.pending / deposit.file_name, max_seconds=self.max_seconds
            )
        except BaseException:
            sidecar.unlink(missing_ok=True)
            raise

    def _sidecar(self, file_name: str) -> Path:
        return self.pending / f"{Path(file_name).stem}.json"

    def _finish(self, deposit: Deposit) -> bool:
        """Stop recording; hand the message to the store, or drop it. Whether it is kept."""
        if deposit.over:
            return False
        deposit.over = True
        recording = deposit.recording
        if recording is None:  # hung up during the greeting
            return False
        recording.stop()
        wav, sidecar = self.pending / deposit.file_name, self._sidecar(deposit.file_name)
        duration = recording.duration
        if duration < MIN_SECONDS:
            log.info("voicemail of %s: %.1f s, not kept", deposit.box.number, duration)
            self.tasks.spawn(self._drop(wav, sidecar))
            return False
        call, box = deposit.call, deposit.box
        assert deposit.received_at is not None
        message = LeftMessage(
            box.company_id,
            box.number,
            call.caller.number,
            call.caller.name,
            call.id,
            deposit.received_at,
            duration,
            deposit.file_name,
            str(wav),
        )
        self._keep_later(message)
        return True

    async def saved_all(self, timeout: float = 5) -> None:
        """Wait (at most `timeout` s) until the messages left so far are with the store: a
        clean stop leaves nothing for `recover()`."""
        if self._saving:
            await asyncio.wait(set(self._saving), timeout=timeout)

    async def _drop(self, *paths: Path) -> None:
        await self.blocking(lambda: _remove(*paths))

    # --- keeping a message -------------------------------------------------------------------

    def _keep_later(self, message: LeftMessage, tries: int = 0) -> None:
        saving = self.tasks.spawn(self._keep(message, tries))
        self._saving.add(saving)
        saving.add_done_callback(self._saving.discard)

    async def _keep(self, message: LeftMessage, tries: int = 0) -> None:
        """Hand the message to the store until it takes it. While the store fails (the
        database is away) both files wait in the pending folder and the store is asked again,
        after each of `KEEP_RETRY_PAUSES` then every minute; a stop meanwhile leaves them for
        the next start. `tries`: how many times it was asked already."""
        kept = await self._store(message, tries=1) if tries == 0 else None
        tries = max(tries, 1)
        pauses = _keep_pauses(after=tries)
        while kept is None:
            await self._pause(next(pauses))
            tries += 1
            kept = await self._store(message, tries)
        if tries > 1:
            log.info("voicemail for %s stored at try %d", message.number, tries)
        await self._stored(message, kept)

    async def _store(self, message: LeftMessage, tries: int) -> bool | None:
        """Ask the store once: whether it kept the message, None when it failed."""
        try:
            return await self.store.saved(message)
        except Exception as error:
            if tries == 1:
                log.warning(
                    "voicemail for %s not stored yet (%s): kept in %s until the store takes it",
                    message.number,
                    " ".join(str(error).split()) or type(error).__name__,
                    self.pending,
                )
            return None

    async def _stored(self, message: LeftMessage, kept: bool) -> None:
        """The store answered: the JSON goes; a kept message lights the lamps."""
        sidecar = self._sidecar(message.file_name)
        await self.blocking(lambda: sidecar.unlink(missing_ok=True))
        if kept:
            log.info("voicemail for %s from %s kept", message.number, message.caller)
            self.calls.events.emit(
                MailboxChanged(message.company_id, message.number, self.calls.clock.now())
            )

    async def _pause(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self.calls.clock.call_later(seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()

    # --- after a crash ---------------------------------------------------------------------

    async def recover(self) -> int:
        """Turn what a crash of this node left in its pending folder into messages (those
        of `MIN_SECONDS` or more); how many were kept at once. Those the store cannot take
        now are kept later, in the background, as a new message is."""
        try:
            found = await self.blocking(self._left_behind)
        except OSError as error:
            log.error("voicemail left behind in %s not read: %s", self.pending, error)
            return 0
        kept = 0
        for message in found:
            answer = await self._store(message, tries=1)
            if answer is None:
                self._keep_later(message, tries=1)
                continue
            await self._stored(message, answer)
            kept += answer
        if found:
            log.info("voicemail: %d of %d messages recovered after a crash", kept, len(found))
        return kept

    def _left_behind(self) -> list[LeftMessage]:
        if not self.pending.is_dir():
            return []
        found = []
        for sidecar in sorted(self.pending.glob("*.json")):
            try:
                message = _read_sidecar(sidecar, self.pending)
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.error("voicemail %s unreadable, left there: %s", sidecar, error)
                continue
            wav = Path(message.pending)
            # Not pending any more: the store moved it and crashed before its row.
            duration = _duration(wav if wav.exists() else self.folder / message.file_name)
            if duration < MIN_SECONDS:
                _remove(wav, sidecar)
                continue
            found.append(replace(message, duration=duration))
        return found


def _keep_pauses(after: int) -> Iterator[float]:
    """Seconds to wait before each next try of the store, `after` tries: short at first, then
    a minute for as long as needed."""
    yield from KEEP_RETRY_PAUSES[after - 1 :]
    while True:
        yield 60.0


def _read_sidecar(sidecar: Path, pending: Path) -> LeftMessage:
    """The message a JSON file beside a recording describes (its duration unknown: 0)."""
    about = json.loads(sidecar.read_text())
    file_name = str(about["file_name"])
    if Path(file_name).name != file_name:
        raise ValueError(f"not a file name: {file_name!r}")
    return LeftMessage(
        int(about["company_id"]),
        str(about["number"]),
        str(about.get("caller", "")),
        str(about.get("caller_name", "")),
        str(about.get("call_id", "")),
        datetime.fromisoformat(about["received_at"]),
        0.0,
        file_name,
        str(pending / file_name),
    )


def _duration(path: Path) -> float:
    """Seconds of audio in a recording, as far as its header says (0: none, unreadable)."""
    try:
        audio = parse_wav(path.read_bytes())
    except (OSError, WavFormatError):
        return 0.0
    return len(audio.samples) / audio.rate


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
