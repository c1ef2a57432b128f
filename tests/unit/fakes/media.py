"""Fake media: the ports the call layer allocates RTP endpoints from, and endpoints that
only remember what their party hears (another party, hold music, nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pbx.engine.media import NoFreePort
from pbx.engine.services import Addr
from pbx.media.dtmf import DigitReceived

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


class FakeEndpoint:
    """An RTP endpoint that only remembers what it was told: what its party hears."""

    def __init__(self, port: int, relay: FakeRelay) -> None:
        self.port = port
        # `bridge()` (pbx/engine/media.py) uses the endpoint's relay leg and player directly.
        self._relay = relay
        self._leg = self
        self.closed = False
        self.codec = "PCMU"
        self.remote: Addr | None = None  # where the party's SDP wants our RTP
        self.source: FakeEndpoint | None = None  # whose party our party hears
        self.music: Any = None  # what our party hears played instead
        self.on_digit: Callable[[Any], None] | None = None

    def __repr__(self) -> str:
        return f"<FakeEndpoint {self.port} remote={self.remote} closed={self.closed}>"

    def set_remote(self, remote: Addr, pt: int, codec: str, te_pt: int | None) -> None:
        self.remote = remote
        self.codec = codec

    def listen_to(self, source: FakeEndpoint | None) -> None:
        self.source, self.music = source, None

    def play(self, samples: Any, loop: bool = True) -> None:
        self.source, self.music = None, samples

    def _stop_player(self) -> None:
        pass  # a fake plays nothing; `music` says what it would play

    def close(self) -> None:
        self.closed = True

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

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
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
        endpoint = FakeEndpoint(20000 + 2 * len(self.endpoints), self.relay)
        self.endpoints.append(endpoint)
        return endpoint

    @property
    def endpoints(self) -> list[FakeEndpoint]:
        """Every endpoint handed out, closed or not."""
        return self.relay.endpoints

    @property
    def open(self) -> list[FakeEndpoint]:
        return [e for e in self.endpoints if not e.closed]
