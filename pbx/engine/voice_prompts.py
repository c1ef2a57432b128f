"""What voicemail says: its sentences in Italian and English, spoken by espeak-ng
(pbx/media/speech.py) on a worker thread and kept, and the tones it plays.

Speech is made once per sentence (a greeting names its extension: once per extension) and
kept in a small cache; without espeak-ng every sentence is None and voicemail falls back to
tones (a greeting is then the beep alone).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from pbx.media import speech
from pbx.media.tone import sine
from pbx.media.wav import load_as_pcm8k

log = logging.getLogger(__name__)

T = TypeVar("T")
Samples = npt.NDArray[np.int16]
Blocking = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs blocking work (disk, speech synthesis) away from the event loop: `asyncio.to_thread`
in the engine, inline in unit tests."""

BEEP = sine(1000, 0.4, amplitude=0.3)  # speak now
CUE = np.concatenate(  # a sentence that could not be spoken: two short low tones
    [sine(600, 0.15, amplitude=0.25), np.zeros(800, np.int16), sine(600, 0.15, amplitude=0.25)]
)
PAUSE = np.zeros(2400, np.int16)  # 0.3 s between sentences

TEXTS: dict[str, dict[str, str]] = {
    "it": {
        "greeting": "Il numero {number} non è raggiungibile. Lasciate un messaggio dopo il segnale.",
        "full": "La casella vocale è piena. Non è possibile lasciare messaggi. Arrivederci.",
        "saved": "Messaggio registrato. Grazie, arrivederci.",
        "pin": "Casella vocale del numero {number}. Inserite il PIN seguito dal tasto cancelletto.",
        "wrong_pin": "PIN errato.",
        "locked": "Casella vocale bloccata per troppi PIN errati. Riprovate più tardi. "
        "Arrivederci.",
        "no_pin": "Questa casella vocale non ha un PIN. Impostatelo nel portale. Arrivederci.",
        "summary": "Avete {new} e {heard}.",
        "new_one": "un messaggio nuovo",
        "new_many": "{count} messaggi nuovi",
        "heard_one": "un messaggio già ascoltato",
        "heard_many": "{count} messaggi già ascoltati",
        "no_messages": "Non ci sono messaggi. Arrivederci.",
        "header_new": "Messaggio nuovo, ricevuto {date}, da {caller}.",
        "header_heard": "Messaggio ricevuto {date}, da {caller}.",
        "date": "{weekday} {day} {month} alle {hour}",
        "minutes": "{hour} e {minute}",
        "unknown_caller": "numero sconosciuto",
        "options": "Per riascoltare premete 1, per cancellare 7, per il successivo 9, "
        "per il precedente asterisco.",
        "deleted": "Messaggio cancellato.",
        "first": "Questo è il primo messaggio.",
        "end": "Non ci sono altri messaggi. Arrivederci.",
        "goodbye": "Arrivederci.",
        "unavailable": "La casella vocale non è disponibile in questo momento. "
        "Riprovate più tardi. Arrivederci.",
    },
    "en": {
        "greeting": "Number {number} cannot take your call. Please leave a message after the tone.",
        "full": "The mailbox is full. No messages can be left. Goodbye.",
        "saved": "Your message has been recorded. Thank you, goodbye.",
        "pin": "Mailbox of number {number}. Enter your PIN followed by the hash key.",
        "wrong_pin": "Wrong PIN.",
        "locked": "This mailbox is locked after too many wrong PINs. Try again later. Goodbye.",
        "no_pin": "This mailbox has no PIN. Set one in the portal. Goodbye.",
        "summary": "You have {new} and {heard}.",
        "new_one": "one new message",
        "new_many": "{count} new messages",
        "heard_one": "one old message",
        "heard_many": "{count} old messages",
        "no_messages": "There are no messages. Goodbye.",
        "header_new": "New message, received {date}, from {caller}.",
        "header_heard": "Message received {date}, from {caller}.",
        "date": "{weekday} {day} {month} at {hour}",
        "minutes": "{hour} {minute:02d}",
        "unknown_caller": "an unknown number",
        "options": "To hear it again press 1, to delete it 7, for the next message 9, "
        "for the previous one star.",
        "deleted": "Message deleted.",
        "first": "This is the first message.",
        "end": "There are no more messages. Goodbye.",
        "goodbye": "Goodbye.",
        "unavailable": "Voicemail is not available right now. Please try again later. Goodbye.",
    },
}
WEEKDAYS = {
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def digits(number: str) -> str:
    """A number said digit by digit, as phone numbers are ("2 0 1")."""
    return " ".join(number)


class Sentences:
    """The sentences of one language, filled in."""

    def __init__(self, language: str = "it") -> None:
        if language not in TEXTS:
            raise ValueError(f"voicemail speaks {', '.join(TEXTS)}, not {language!r}")
        self.language = language
        self.texts = TEXTS[language]

    def __call__(self, key: str, **values: Any) -> str:
        return self.texts[key].format(**values)

    def count(self, kind: str, count: int) -> str:
        """ "un messaggio nuovo", "3 messaggi nuovi", "0 messaggi nuovi"."""
        if count == 1:
            return self.texts[f"{kind}_one"]
        return self.texts[f"{kind}_many"].format(count=count)

    def date(self, when: datetime, time_zone: str) -> str:
        """When a message came, in the company's time zone: "lunedì 2 marzo alle 9 e 15"."""
        local = when.astimezone(ZoneInfo(time_zone))
        hour = (
            str(local.hour)
            if local.minute == 0
            else self.texts["minutes"].format(hour=local.hour, minute=local.minute)
        )
        return self.texts["date"].format(
            weekday=WEEKDAYS[self.language][local.weekday()],
            day=local.day,
            month=MONTHS[self.language][local.month - 1],
            hour=hour,
        )

    def caller(self, number: str, name: str) -> str:
        if not number or not number.strip("+").isdigit():
            return self.texts["unknown_caller"]
        return f"{digits(number)}, {name}" if name else digits(number)


class Speech(Protocol):
    """Says a sentence: 8 kHz samples, or None when it cannot be spoken."""

    async def say(self, text: str) -> Samples | None: ...


class SpokenPrompts:
    """`Speech` by espeak-ng on a worker thread, each sentence made once and kept (the last
    `size` ones). espeak-ng missing or failing: None, said once in the log."""

    def __init__(
        self,
        language: str = "it",
        *,
        blocking: Blocking = asyncio.to_thread,
        synthesise: Callable[[str, str], bytes] = speech.synthesise,
        size: int = 256,
    ) -> None:
        self.language = language
        self.blocking = blocking
        self.synthesise = synthesise
        self.size = size
        self._cache: OrderedDict[str, asyncio.Future[Samples | None]] = OrderedDict()
        self._warned = False

    async def say(self, text: str) -> Samples | None:
        made = self._cache.get(text)
        if made is not None:
            self._cache.move_to_end(text)
        else:  # its own task: callers of one sentence share it, a caller gone stops nothing
            made = asyncio.ensure_future(self.blocking(lambda: self._render(text)))
            self._cache[text] = made
            made.add_done_callback(lambda done: self._forget_failed(text, done))
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return await asyncio.shield(made)

    def _forget_failed(self, text: str, done: asyncio.Future[Samples | None]) -> None:
        if (done.cancelled() or done.exception() is not None) and self._cache.get(text) is done:
            del self._cache[text]

    def _render(self, text: str) -> Samples | None:
        try:
            return load_as_pcm8k(self.synthesise(text, self.language))
        except (speech.SpeechError, ValueError) as error:
            if not self._warned:
                self._warned = True
                log.warning("voicemail speaks with tones only: %s", error)
            return None


class AudioFiles:
    """Recordings to play (greetings, messages), decoded to 8 kHz on a worker thread. Kept by
    path (the last `size`): a file is never rewritten, a new one gets a new name. A file that
    cannot be read is logged and is None."""

    def __init__(
        self,
        *,
        blocking: Blocking = asyncio.to_thread,
        load: Callable[[str], Samples] = load_as_pcm8k,
        size: int = 16,
    ) -> None:
        self.blocking = blocking
        self.load = load
        self.size = size
        self._cache: OrderedDict[str, Samples] = OrderedDict()

    async def get(self, path: str) -> Samples | None:
        samples = self._cache.get(path)
        if samples is not None:
            self._cache.move_to_end(path)
            return samples
        try:
            samples = await self.blocking(lambda: self.load(path))
        except (OSError, ValueError) as error:
            log.error("recording %s cannot be played: %s", path, error)
            return None
        assert samples is not None
        self._cache[path] = samples
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return samples


def joined(*parts: Samples | None) -> Samples:
    """Sentences and recordings played one after the other, with a short pause between."""
    pieces: list[Samples] = []
    for part in parts:
        if part is None or not len(part):
            continue
        if pieces:
            pieces.append(PAUSE)
        pieces.append(part)
    return np.concatenate(pieces) if pieces else PAUSE
