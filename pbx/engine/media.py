"""RTP media anchored in the engine: the asyncio side of ``pbx.media.relay``.

Each leg has one UDP socket (a ``MediaEndpoint``) and one ``MediaLeg`` in the manager's
``RelayCore``. The endpoint only moves bytes and keeps time: a datagram goes to
``RelayCore.process`` and whatever comes back leaves through the listening legs' sockets (and
key presses go to ``on_digit``); a leg fed by a player gets ``RelayCore.player_packet`` every
20 ms on an absolute schedule. Every packet decision (latching, payload types, µ-law/A-law, one
continuous stream for the far end across source switches, RTCP and comfort noise dropped) is
the relay core's. Recordings (``MediaEndpoint.record``) are relay taps; this module opens their
files and stops them when a write fails.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pbx.media.dtmf import DigitReceived
from pbx.media.player import Player
from pbx.media.recorder import WavRecorder
from pbx.media.relay import Addr, Feed, MediaLeg, Output, RelayCore, Transmit

__all__ = ["PTIME", "MediaEndpoint", "MediaManager", "Recording", "bridge"]

log = logging.getLogger(__name__)

PTIME = 0.02  # seconds between two player packets


class _EndpointLeg(MediaLeg):
    """A relay leg that knows the socket its packets leave through."""

    def __init__(self, endpoint: MediaEndpoint) -> None:
        super().__init__(None, name=str(endpoint.port))
        self.endpoint: MediaEndpoint | None = endpoint  # None once closed: no cycle left behind


class Recording:
    """What ``MediaEndpoint.record`` returns: a recording in progress, and how to stop it.

    It stops on ``stop()``, when its endpoint closes, when ``max_seconds`` are recorded, or when
    the file cannot be written (disk full): the call goes on either way, only the recording
    ends. ``on_finished`` is called once when it stops by itself (the last two cases), e.g. for
    voicemail to hang up at the time limit; it is called soon after, not from inside the relay,
    so that it may rewire or end the call.
    """

    def __init__(
        self, endpoint: MediaEndpoint, recorder: WavRecorder, file: BinaryIO, owns_file: bool
    ) -> None:
        self.recorder = recorder
        self.on_finished: Callable[[], None] | None = None
        self.error: OSError | None = None
        """The write error that stopped the recording, if one did."""
        self._endpoint: MediaEndpoint | None = endpoint
        self._file = file
        self._owns_file = owns_file
        self._event_loop = asyncio.get_running_loop()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "recording"
        return f"<Recording {self.duration:.1f} s {state}>"

    @property
    def stopped(self) -> bool:
        return self._endpoint is None

    @property
    def duration(self) -> float:
        """Seconds recorded so far."""
        return self.recorder.duration

    def stop(self) -> None:
        """Stop recording and finish the file (closed when ``record`` was given a path)."""
        endpoint = self._endpoint
        if endpoint is None:
            return
        self._endpoint = None
        endpoint._recordings.remove(self)
        endpoint._relay.remove_tap(endpoint._leg, self)
        try:
            try:
                self.recorder.close()
            finally:
                if self._owns_file:
                    self._file.close()
        except OSError as error:  # the endpoint must close all the same
            self._failed(error, endpoint.port)

    def receive_audio(self, packet: bytes, codec: str, now: float) -> None:
        """The relay tap: record, and stop on a full recording or a failed write."""
        endpoint = self._endpoint
        if endpoint is None:  # stopped by another tap's doing while this packet went round
            return
        try:
            self.recorder.write_packet(packet, codec, now)
        except OSError as error:
            self._failed(error, endpoint.port)
        else:
            if not self.recorder.full:
                return
        self.stop()
        self._event_loop.call_soon(self._finished)

    def _failed(self, error: OSError, port: int) -> None:
        if self.error is None:  # the first failure says why; retries at stop() add nothing
            self.error = error
            log.warning("recording on port %s stopped: %s", port, error)

    def _finished(self) -> None:
        if self.on_finished is not None:
            self.on_finished()


class MediaEndpoint(asyncio.DatagramProtocol):
    """Our RTP socket facing one party; what it receives goes to whoever listens to it."""

    def __init__(self, manager: MediaManager, port: int) -> None:
        self.manager = manager
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.closed = False
        self.sent = 0
        self.withheld = False
        """True while the party holds us (sendonly, inactive): nothing is sent to it."""
        self.tap: Callable[[bytes], None] | None = None
        """Sees every packet accepted from the latched source, RTCP excepted (tests)."""
        self.on_digit: Callable[[DigitReceived], None] | None = None
        """Called with each key press the party makes (RFC 4733), whatever we relay it to."""
        self.on_played: Callable[[], None] | None = None
        """Called once each time a non-looping ``play`` reaches its end (not when replaced)."""
        self._recordings: list[Recording] = []
        self._relay = manager.relay
        self._process = self._relay.process  # bound once: it runs for every datagram
        self._leg = _EndpointLeg(self)
        self._clock = asyncio.get_running_loop().time
        self._accepted = 0  # datagrams handed to the relay core
        self._early = 0  # datagrams before the party's SDP was known
        self._timer: asyncio.TimerHandle | None = None
        self._samples: np.ndarray | None = None  # what the player plays, to restart it
        self._loop = True
        self._played = 0  # samples of a non-looping recording sent so far

    def __repr__(self) -> str:
        return f"<MediaEndpoint {self.port} {self._leg!r}>"

    # --- what the relay core knows ----------------------------------------------------------

    @property
    def remote(self) -> Addr | None:
        """The address in the party's SDP."""
        return self._leg.remote

    @property
    def latched(self) -> Addr | None:
        """Where the party's RTP really comes from (and where ours goes)."""
        return self._leg.latched

    @property
    def codec(self) -> str:
        return self._leg.codec

    @property
    def pt(self) -> int:
        return self._leg.pt

    @property
    def te_pt(self) -> int | None:
        return self._leg.event_pt

    @property
    def ignored(self) -> int:
        """Datagrams from sources other than the latched one, or before any SDP."""
        return self._leg.ignored + self._early

    @property
    def heard(self) -> int:
        """Every packet from the phone itself: audio, comfort noise and RTCP (liveness)."""
        return self._accepted - self._leg.ignored

    @property
    def received(self) -> int:
        """RTP packets accepted from the party (RTCP and malformed packets excluded)."""
        leg = self._leg
        return self._accepted - leg.ignored - leg.rtcp - leg.dropped

    @property
    def playing(self) -> bool:
        return self._leg.feed is Feed.PLAYER

    # --- configuration ----------------------------------------------------------------------

    def set_remote(self, remote: Addr, pt: int, codec: str, te_pt: int | None) -> None:
        """Where the party wants our RTP, and what it agreed to receive."""
        self._relay.reconfigure(self._leg, remote, codec, pt, te_pt)
        if self._timer is not None and self._leg.feed is not Feed.PLAYER:
            # The codec changed under the player: the relay core dropped it, start a new one
            # (music again from the top; an announcement where it was).
            assert self._samples is not None
            rest = self._samples if self._loop else self._samples[self._played :]
            self.play(rest, loop=self._loop)

    # --- input ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        leg = self._leg
        if leg.remote is None:
            # No SDP yet: nothing may latch, or a stray packet would steal the stream.
            self._early += 1
            return
        if len(addr) != 2:  # IPv6 socket addresses carry flowinfo and scope id
            addr = addr[:2]
        self._accepted += 1
        out = self._process(leg, data, addr, self._clock())
        if out is not None:
            if type(out) is list:  # cheaper than isinstance, on every packet
                self._dispatch(out)  # several listeners, or key presses
            else:  # one datagram for one listener: a call's every packet
                listener = out[2].endpoint  # type: ignore[union-attr]
                if listener is not None:
                    listener._send(out)
        if self.tap is not None and addr == leg.latched:  # accepted, so latched
            self._tapped(data)

    def _dispatch(self, outputs: list[Output]) -> None:
        """Send to every listener, then report key presses (after, so a callback that
        rewires the call does not change where this packet goes)."""
        digits = []
        for output in outputs:
            if isinstance(output, DigitReceived):
                digits.append(output)
                continue
            listener = output[2].endpoint  # type: ignore[attr-defined]
            if listener is not None:
                listener._send(output)
        on_digit = self.on_digit
        if on_digit is not None:
            for digit in digits:
                on_digit(digit)

    def _tapped(self, data: bytes) -> None:
        if len(data) >= 12 and data[0] & 0xC0 == 0x80 and not 200 <= data[1] <= 204:
            self.tap(data)  # type: ignore[misc]

    # --- output -----------------------------------------------------------------------------

    def _send(self, out: Transmit | tuple[bytes, Addr]) -> None:
        transport = self.transport
        if transport is not None and not self.closed and not self.withheld:
            transport.sendto(out[0], out[1])
            self.sent += 1

    def listen_to(self, source: MediaEndpoint | None) -> None:
        """Relay what `source` receives to our party (None: silence).

        Our party stops hearing what it heard before; whoever else hears `source` goes on.
        """
        self._stop_player()
        if source is None:
            self._relay.silence(self._leg)
        else:
            self._relay.connect(source._leg, self._leg)

    def play(self, samples: np.ndarray, loop: bool = True) -> None:
        """Feed our party from a recording: music on hold until told otherwise, or, with
        ``loop=False``, an announcement once, after which ``on_played`` is called."""
        self._stop_player()
        leg = self._leg
        player = Player(
            samples,
            leg.codec,
            loop=loop,
            ssrc=random.getrandbits(32),
            pt=leg.pt,
            sequence=random.getrandbits(16),
            timestamp=random.getrandbits(32),
        )
        self._relay.play(leg, player)
        self._samples, self._loop, self._played = samples, loop, 0
        event_loop = asyncio.get_running_loop()
        self._tick(player, event_loop, event_loop.time(), 0)

    def _tick(
        self, player: Player, event_loop: asyncio.AbstractEventLoop, start: float, n: int
    ) -> None:
        """Send the player's next packet; re-arm on the absolute schedule so that it never drifts."""
        self._timer = None
        if self.closed or self._leg.player is not player:
            return
        out = self._relay.player_packet(self._leg, event_loop.time())
        if out is not None:
            self._send(out)
            self._played += player.frame
        if player.finished:
            self._relay.silence(self._leg)
            if self.on_played is not None:
                self.on_played()  # may start the next announcement at once
            return
        n += 1
        self._timer = event_loop.call_at(
            start + n * PTIME, self._tick, player, event_loop, start, n
        )

    def _stop_player(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def record(self, target: BinaryIO | str | Path, max_seconds: float = 600.0) -> Recording:
        """Record what our party sends (not what it hears), whatever it is connected to.

        Args:
            target: a path (the file is created, and closed when the recording stops) or a
                binary file object opened for writing (left open: it is the caller's).
            max_seconds: the recording stops by itself after this long.

        Returns:
            The recording: ``stop()`` it when done; closing the endpoint stops it too.

        Raises:
            OSError: the file cannot be created.
            RuntimeError: the endpoint is closed (a bug in the caller).
        """
        if self.closed:
            raise RuntimeError("cannot record on a closed media endpoint")
        if isinstance(target, str | Path):
            # Closed by Recording.stop(), which outlives this call: no `with` here.
            file: BinaryIO = open(target, "wb")  # noqa: SIM115
            owns_file = True
        else:
            file, owns_file = target, False
        try:
            recorder = WavRecorder(file, max_seconds=max_seconds)
        except BaseException:
            if owns_file:
                file.close()
            raise
        recording = Recording(self, recorder, file, owns_file)
        self._recordings.append(recording)
        self._relay.add_tap(self._leg, recording)
        return recording

    def close(self) -> None:
        """Stop relaying and recording, close the socket and give the port back."""
        if self.closed:
            return
        self.closed = True
        self._stop_player()
        for recording in list(self._recordings):
            recording.stop()
        self._relay.remove(self._leg)
        # Break the endpoint <-> relay leg cycle: at hundreds of calls a second, cycles left to
        # the garbage collector become its full-collection pauses, seen as post-dial delay.
        self._leg.endpoint = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.manager.release(self.port)


def bridge(a: MediaEndpoint, b: MediaEndpoint) -> None:
    """Join two legs both ways: each hears what the other sends, and nobody else hears them.

    Whoever listened to either before (the old partner of a transferred party) goes silent;
    recordings go on.
    """
    a._stop_player()
    b._stop_player()
    a._relay.bridge(a._leg, b._leg)


class NoFreePort(RuntimeError):
    """Every RTP port of the range is in use: the call is refused (503), nothing else breaks."""


class MediaManager:
    """Allocates RTP ports (even numbers, RFC 3550 11) and owns the relay core and hold music."""

    def __init__(
        self, host: str, port_range: tuple[int, int], moh: np.ndarray | None = None
    ) -> None:
        self.host = host
        low, high = port_range
        self.port_range = port_range
        self._free = list(range(low + (low % 2), high, 2))
        random.shuffle(self._free)  # a port is not reused at once: stray late packets fade
        self._used: set[int] = set()
        self.moh = moh if moh is not None else np.zeros(8000, dtype=np.int16)
        self.relay = RelayCore()

    async def allocate(self) -> MediaEndpoint:
        """Open an RTP socket on a free port."""
        loop = asyncio.get_running_loop()
        for _ in range(len(self._free)):
            port = self._free.pop(0)
            try:
                _, endpoint = await loop.create_datagram_endpoint(
                    functools.partial(MediaEndpoint, self, port), local_addr=(self.host, port)
                )
            except OSError:
                self._free.append(port)  # taken by someone else: try it again later
                continue
            self._used.add(port)
            return endpoint
        raise NoFreePort("no free RTP port in {}-{}".format(*self.port_range))

    def release(self, port: int) -> None:
        """Give a port back; it goes to the end of the queue."""
        if port in self._used:
            self._used.discard(port)
            self._free.append(port)

    @property
    def in_use(self) -> int:
        return len(self._used)
