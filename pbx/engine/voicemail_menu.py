"""Listening to voicemail by phone (SPEC A4): the voicemail feature code (`*98` by default,
EngineConfig.voicemail_code) from an extension's phone; `*98` followed by an extension's
number reaches that extension's mailbox instead (its PIN is asked all the same).

1. The PBX answers and asks for the mailbox's PIN: digits, then # (* starts again; a pause
   of `PIN_SECONDS` ends the entry too). A wrong PIN is asked again, `PIN_TRIES` times per
   call; the store locks the mailbox after repeated wrong PINs (Mailbox.try_pin), which is
   said before hanging up. A mailbox without a PIN cannot be listened to by phone.
2. It says how many new and old messages there are, then plays them, new ones first, newest
   first: for each, the date and time it came (the company's time zone) and the caller, then
   the recording. A message is marked heard as it starts playing.
3. During or after a message:
   - 1  hear it again
   - 7  delete it
   - 9 or #  the next message
   - *  the previous message
   After the options are said, `OPTION_SECONDS` without a key says them again; a second
   silence ends the call. After the last message: "no more messages", and goodbye.

Keys cut short whatever is being said, so a caller who knows the menu need not wait.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from pbx.engine.call import Call
from pbx.engine.caller_sessions import CallerSessions
from pbx.engine.calls import CallManager
from pbx.engine.events import Event, MailboxChanged
from pbx.engine.phone_line import Line
from pbx.engine.routing import Route
from pbx.engine.services import PinCheck, StoredMessage, Tasks, VoicemailStore
from pbx.engine.voice_prompts import CUE, AudioFiles, Samples, Sentences, Speech, digits, joined

log = logging.getLogger(__name__)

PIN_TRIES = 3  # wrong PINs in one call before goodbye
PIN_SECONDS = 8.0  # a pause this long ends the PIN's entry
MAX_PIN_DIGITS = 16
OPTION_SECONDS = 8.0
REPLAY, DELETE, NEXT, PREVIOUS = "1", "7", ("9", "#"), "*"


@dataclass(eq=False)
class Listening:
    """One caller listening to a mailbox."""

    call: Call
    company_id: int
    number: str  # the mailbox's extension
    line: Line
    task: asyncio.Task[Any] | None = None


class VoicemailMenu:
    """Every caller listening to voicemail by phone on one engine."""

    def __init__(
        self,
        calls: CallManager,
        store: VoicemailStore,
        *,
        tasks: Tasks,
        speech: Speech,
        files: AudioFiles | None = None,
        language: str = "it",
    ) -> None:
        self.calls = calls
        self.store = store
        self.tasks = tasks
        self.speech = speech
        self.files = files or AudioFiles()
        self.say = Sentences(language)
        self.sessions = CallerSessions[Listening](
            lambda session, digit: session.line.pressed(digit), _stop
        )
        calls.on_listen_voicemail = self.start

    def on_event(self, event: Event) -> None:
        self.sessions.on_event(event)

    def start(self, call: Call, route: Route) -> None:
        """Answer the caller of the voicemail feature code and walk them through the menu."""
        media = self.calls.answer_locally(call, by="voicemail")
        session = Listening(
            call, call.caller.company_id, route.mailbox, Line(media, self.calls.clock)
        )
        self.sessions[call.id] = session
        log.info(
            "call %s: %s listens to voicemail %s", call.id[:8], call.caller.number, route.mailbox
        )
        session.task = self.tasks.spawn(self._run(session))

    async def _run(self, session: Listening) -> None:
        reason = "voicemail listened"
        try:
            reason = await self._listen(session)
        except Exception as error:  # the store (the database) failed: say so, not silence
            log.warning(
                "call %s: voicemail %s cannot be listened to now: %s",
                session.call.id[:8],
                session.number,
                " ".join(str(error).split()) or type(error).__name__,
            )
            reason = "voicemail unavailable"
            if session.call.id in self.sessions:
                await self._tell(session, self.say("unavailable"))
        finally:
            if self.sessions.pop(session.call.id, None) is not None:  # not hung up by the caller
                self.calls.hangup_call(session.call, reason)

    async def _sentence(self, text: str) -> Samples:
        spoken = await self.speech.say(text)
        return spoken if spoken is not None else CUE

    async def _tell(self, session: Listening, text: str) -> None:
        """Say `text` to its end, whatever is pressed."""
        await session.line.play(await self._sentence(text), interrupt=False)

    def _changed(self, session: Listening) -> None:
        self.calls.events.emit(
            MailboxChanged(session.company_id, session.number, self.calls.clock.now())
        )

    # --- the script ------------------------------------------------------------------------

    async def _listen(self, session: Listening) -> str:
        """The whole call; returns why it ended."""
        box = await self.store.mailbox(session.company_id, session.number)
        if box is None:
            await self._tell(session, self.say("goodbye"))
            return "no mailbox"
        if not box.has_pin:
            await self._tell(session, self.say("no_pin"))
            return "voicemail without a PIN"
        checked = await self._log_in(session)
        if checked is not PinCheck.ACCEPTED:
            why = {PinCheck.LOCKED: self.say("locked"), PinCheck.NO_PIN: self.say("no_pin")}
            await self._tell(
                session, why.get(checked, f"{self.say('wrong_pin')} {self.say('goodbye')}")
            )
            return f"voicemail PIN {checked.value}"
        messages = await self.store.messages(session.company_id, session.number)
        if not messages:
            await self._tell(session, self.say("no_messages"))
            return "no messages"
        new = sum(not m.heard for m in messages)
        summary = self.say(
            "summary",
            new=self.say.count("new", new),
            heard=self.say.count("heard", len(messages) - new),
        )
        await session.line.play(await self._sentence(summary))  # a key skips it
        return await self._walk(session, box.time_zone, messages)

    async def _log_in(self, session: Listening) -> PinCheck:
        ask = await self._sentence(self.say("pin", number=digits(session.number)))
        prompt = ask
        for _ in range(PIN_TRIES):
            pin = await self._read_pin(session.line, prompt)
            if pin:
                checked = await self.store.check_pin(session.company_id, session.number, pin)
                if checked is not PinCheck.WRONG:
                    return checked
                log.info(
                    "voicemail %s: wrong PIN from %s", session.number, session.call.caller.number
                )
            prompt = joined(await self._sentence(self.say("wrong_pin")), ask)
        return PinCheck.WRONG

    @staticmethod
    async def _read_pin(line: Line, prompt: Samples) -> str:
        entered = ""
        key = await line.play(prompt)
        while True:
            if key is None:
                key = await line.key(PIN_SECONDS)
                if key is None:  # a pause: what was typed is the PIN
                    return entered
            if key == "#":
                return entered
            if key == "*":
                entered = ""
            elif key.isdigit() and len(entered) < MAX_PIN_DIGITS:
                entered += key
            key = None

    async def _walk(self, session: Listening, time_zone: str, messages: list[StoredMessage]) -> str:
        line, index = session.line, 0
        while index < len(messages):
            key = await self._play(session, messages, index, time_zone)
            key = await self._choice(line, key)
            if key is None:
                await self._tell(session, self.say("goodbye"))
                return "no choice"
            if key == DELETE:
                await self.store.delete(session.company_id, session.number, messages[index].id)
                self._changed(session)
                del messages[index]
                await line.play(await self._sentence(self.say("deleted")))
            elif key in NEXT:
                index += 1
            elif key == PREVIOUS:
                if index == 0:
                    await line.play(await self._sentence(self.say("first")))
                index = max(index - 1, 0)
            # REPLAY: the same message again
        await self._tell(session, self.say("end"))
        return "no more messages"

    async def _play(
        self, session: Listening, messages: list[StoredMessage], index: int, time_zone: str
    ) -> str | None:
        """Say when and from whom, then play the message; marked heard as it starts. The
        key that cut it short, if any."""
        message = messages[index]
        header = self.say(
            "header_heard" if message.heard else "header_new",
            date=self.say.date(message.received_at, time_zone),
            caller=self.say.caller(message.caller, message.caller_name),
        )
        spoken = await self._sentence(header)
        recording = await self.files.get(message.path)
        if not message.heard:
            await self.store.mark_heard(session.company_id, session.number, message.id)
            messages[index] = replace(message, heard=True)
            self._changed(session)
        return await session.line.play(joined(spoken, recording))

    async def _choice(self, line: Line, key: str | None) -> str | None:
        """A key of the menu: `key` if it is one, else from the options said (twice at most
        in silence); None when the caller chose nothing."""
        silences = 0
        while key not in (REPLAY, DELETE, PREVIOUS, *NEXT):
            key = await line.play(await self._sentence(self.say("options")))
            if key is None:
                key = await line.key(OPTION_SECONDS)
            if key is None:
                silences += 1
                if silences == 2:
                    return None
        return key


def _stop(session: Listening) -> None:
    """The caller hung up while listening: the script stops where it is."""
    if session.task is not None:
        session.task.cancel()
