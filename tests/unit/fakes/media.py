"""Fake media: the ports the call layer allocates RTP endpoints from, and endpoints that
only remember what their party hears (another party, hold music, an announcement, nothing).

An announcement (`play(..., loop=False)`) lasts its samples' time on the fake clock, after
which `on_played` is called, as the real endpoint does; a recording writes a real WAV file
from what the test makes the party say (`speak`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pbx.engine.media import NoFreePort
from pbx.engine.services import Addr, Timer
from pbx.media.dtmf import DigitReceived
from pbx.media.recorder import RATE, WavRecorder
from tests.unit.fakes.clock import FakeClock

MUSIC = "music on hold"  # what the fake media ports hand out as hold music


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


class FakeRecording:
    """What `FakeEndpoint.record` returns: a real WAV recorder fed by `FakeEndpoint.speak`."""

    def __init__(
        self, endpoint: FakeEndpoint, target: BinaryIO | str | Path, max_seconds: float
    ) -> None:
        if isinstance(target, str | Path):
            self._file: BinaryIO = open(target, "wb")  # noqa: SIM115
            self._owns_file = True
        else:
            self._file, self._owns_file = target, False
        self.recorder = WavRecorder(self._file, max_seconds=max_seconds)
        self.on_finished: Callable[[], None] | None = None
        self.error: OSError | None = None
        self._endpoint: FakeEndpoint | None = endpoint

    @property
    def stopped(self) -> bool:
        return self._endpoint is None

    @property
    def duration(self) -> float:
        return self.recorder.duration

    def stop(self) -> None:
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is None:
            return
        endpoint.recordings.remove(self)
        self.recorder.close()
        if self._owns_file:
            self._file.close()

    def write(self, samples: Any) -> None:
        if self.stopped:
            return
        self.recorder.write_samples(samples)
        if self.recorder.full:  # the real one calls on_finished soon after, not from the relay
            self.stop()
            asyncio.get_running_loop().call_soon(self._finished)

    def _finished(self) -> None:
        if self.on_finished is not None:
            self.on_finished()


class FakeEndpoint:
    """An RTP endpoint that only remembers what it was told: what its party hears."""

    def __init__(self, port: int, relay: FakeRelay, clock: FakeClock | None = None) -> None:
        self.port = port
        self.clock = clock
        # `bridge()` (pbx/engine/media.py) uses the endpoint's relay leg and player directly.
        self._relay = relay
        self._leg = self
        self.closed = False
        self.withheld = False  # the party holds us: nothing is sent to it (Leg.set_hold)
        self.codec = "PCMU"
        self.remote: Addr | None = None  # where the party's SDP wants our RTP
        self.source: FakeEndpoint | None = None  # whose party our party hears
        self.music: Any = None  # what our party hears played instead
        self.on_digit: Callable[[Any], None] | None = None
        self.on_played: Callable[[], None] | None = None
        self.played: list[Any] = []  # everything played to our party, in order
        self.recordings: list[FakeRecording] = []
        self._playing: Timer | None = None  # the end of an announcement

    def __repr__(self) -> str:
        return f"<FakeEndpoint {self.port} remote={self.remote} closed={self.closed}>"

    def set_remote(self, remote: Addr, pt: int, codec: str, te_pt: int | None) -> None:
        self.remote = remote
        self.codec = codec

    def listen_to(self, source: FakeEndpoint | None) -> None:
        self._stop_player()
        self.source, self.music = source, None

    def play(self, samples: Any, loop: bool = True) -> None:
        self._stop_player()
        self.source, self.music = None, samples
        self.played.append(samples)
        if not loop and self.clock is not None:
            self._playing = self.clock.call_later(len(samples) / RATE, self._played)

    def _played(self) -> None:
        self._playing = None
        self.music = None
        if self.on_played is not None:
            self.on_played()

    def _stop_player(self) -> None:
        if self._playing is not None:  # an announcement cut short calls no on_played
            self._playing.cancel()
            self._playing = None

    @property
    def playing(self) -> bool:
        """Whether an announcement is being played (it has not ended yet)."""
        return self._playing is not None

    def record(self, target: BinaryIO | str | Path, max_seconds: float = 600.0) -> FakeRecording:
        if self.closed:
            raise RuntimeError("cannot record on a closed media endpoint")
        recording = FakeRecording(self, target, max_seconds)
        self.recordings.append(recording)
        return recording

    def speak(self, seconds: float, frequency: float = 440.0) -> None:
        """Our party says something for `seconds` (a tone): what recordings of it get."""
        t = np.arange(round(seconds * RATE)) / RATE
        samples = (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
        for recording in list(self.recordings):
            recording.write(samples)

    def close(self) -> None:
        self.closed = True
        self._stop_player()
        for recording in list(self.recordings):
            recording.stop()

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

    def __init__(self, limit: int = 1000, clock: FakeClock | None = None) -> None:
        self.limit = limit
        self.clock = clock
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
        endpoint = FakeEndpoint(20000 + 2 * len(self.endpoints), self.relay, self.clock)
        self.endpoints.append(endpoint)
        return endpoint

    @property
    def endpoints(self) -> list[FakeEndpoint]:
        """Every endpoint handed out, closed or not."""
        return self.relay.endpoints

    @property
    def open(self) -> list[FakeEndpoint]:
        return [e for e in self.endpoints if not e.closed]


class FakePrompts:
    """A `PromptLoader` (pbx/engine/attendant.py): each announcement file is a distinct tone
    of its own length; a path it does not know cannot be read (None, played as silence)."""

    def __init__(self) -> None:
        self.samples: dict[str, np.ndarray] = {}
        self.loaded: list[str] = []

    def add(self, path: str, seconds: float = 3.0) -> str:
        tone = 300 + 50 * len(self.samples)
        t = np.arange(round(seconds * RATE)) / RATE
        self.samples[path] = (4000 * np.sin(2 * np.pi * tone * t)).astype(np.int16)
        return path

    def __call__(self, path: str) -> np.ndarray | None:
        self.loaded.append(path)
        return self.samples.get(path)

    def name_of(self, samples: Any) -> str:
        """The path of the announcement `samples` are, or "" for anything else."""
        return next((path for path, s in self.samples.items() if s is samples), "")


class FakeSpeech:
    """`Speech` (pbx/engine/voice_prompts.py) without espeak-ng: each sentence is a tone of
    its own lasting `seconds`; `said` lists what was asked, in order. `mute()`: nothing can
    be spoken (espeak-ng missing)."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds
        self.samples: dict[str, np.ndarray] = {}
        self.said: list[str] = []
        self.muted = False

    def mute(self) -> None:
        self.muted = True

    async def say(self, text: str) -> np.ndarray | None:
        self.said.append(text)
        if self.muted:
            return None
        if text not in self.samples:
            tone = 500 + 10 * len(self.samples)
            t = np.arange(round(self.seconds * RATE)) / RATE
            self.samples[text] = (3000 * np.sin(2 * np.pi * tone * t)).astype(np.int16)
        return self.samples[text]


async def inline(work: Callable[[], Any]) -> Any:
    """Blocking work done at once on the loop (unit tests): no thread whose end a test
    would have to wait for."""
    return work()
