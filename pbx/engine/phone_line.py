"""The caller's side of a call the PBX answered itself (voicemail), as awaitables: play to it,
wait for its keys. Time is the engine's `Clock`, so unit tests drive it with a fake one.

A voice application is then a coroutine that reads as its script ("say this, wait for a key
for 10 s, ..."); whoever owns the call feeds the line the caller's keys (`pressed`) from the
engine's `DigitPressed` events and cancels the coroutine when the call ends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from pbx.engine.services import Clock


class Playable(Protocol):
    """What a line needs of a media endpoint (the real one, or a fake)."""

    on_played: Callable[[], None] | None

    def play(self, samples: Any, loop: bool = True) -> None: ...

    def listen_to(self, source: Any) -> None: ...


class Line:
    """Plays to the caller and hands out the keys it presses, in order."""

    def __init__(self, media: Playable, clock: Clock) -> None:
        self.media = media
        self.clock = clock
        self.keys: deque[str] = deque()  # pressed and not taken yet
        self._waiter: asyncio.Future[None] | None = None
        self._played = False
        media.on_played = self._on_played

    def pressed(self, digit: str) -> None:
        """The caller pressed a key."""
        self.keys.append(digit)
        self.wake()

    def wake(self) -> None:
        """Something happened that the script may wait for (a key, the end of a prompt, a
        recording that stopped by itself)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_played(self) -> None:
        self._played = True
        self.wake()

    async def _wait(self, timeout: float | None = None) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        timer = self.clock.call_later(timeout, self.wake) if timeout is not None else None
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def play(self, samples: Any, *, interrupt: bool = True) -> str | None:
        """Play `samples` once. With `interrupt`, a key pressed before or meanwhile cuts it
        short and is returned; None once it played to its end."""
        if interrupt and self.keys:
            return self.keys.popleft()
        self._played = False
        self.media.play(samples, loop=False)
        while not self._played:
            if interrupt and self.keys:
                self.media.listen_to(None)  # silence: the rest of the prompt is not played
                return self.keys.popleft()
            await self._wait()
        return None

    async def key(self, timeout: float) -> str | None:
        """The next key (one pressed earlier first), or None after `timeout` seconds."""
        deadline = self.clock.now() + timeout
        while not self.keys:
            left = deadline - self.clock.now()
            if left <= 0:
                return None
            await self._wait(left)
        return self.keys.popleft()

    async def until(self, done: Callable[[], bool]) -> None:
        """Wait until `done()` holds, looking again at each key and each `wake()`."""
        while not done():
            await self._wait()
