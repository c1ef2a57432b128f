"""The real engine, started on loopback in a thread of its own, for integration tests.

Peers (SIPp, baresip, linphonec, pyVoIP) are driven synchronously by the tests, so the engine
runs its asyncio loop in a background thread; `EngineThread.run(coro)` reaches into it.

Tests never touch the engine's attributes: they ask a `RunningEngine` (any engine) or a `Pbx`
(an engine on a memory directory and recorder) through the methods below, which evaluate on
the engine's loop. This module is the one place to adapt when the engine's insides change.
Every `wait_*` method waits for a state, never for a fixed time, and fails with an
AssertionError saying what it waited for and what it saw.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pbx.engine.directory import (
    AttendantInfo,
    DeviceInfo,
    DidRoute,
    ExtensionInfo,
    HuntGroupInfo,
    MemoryDirectory,
    MenuInfo,
    TrunkInfo,
)
from pbx.engine.events import CallChanged, DigitPressed
from pbx.engine.records import MemoryRecorder
from pbx.engine.runtime import Engine, EngineConfig
from pbx.engine.schedule import Period
from pbx.sip.digest import ha1
from tests.integration.peers.ports import free_port_range
from tests.integration.peers.sipp import SippResult, run_sipp

REALM = "centralino"
COMPANY = 1
MOH = str(Path(__file__).resolve().parents[2] / "pbx" / "media" / "assets" / "moh.wav")
POLL = 0.02  # how often a wait looks again (seconds)

T = TypeVar("T")


class EngineThread:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="engine", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@dataclass
class RunningEngine:
    """An engine running on its own loop thread, and what tests ask of it."""

    engine: Engine
    thread: EngineThread

    @property
    def port(self) -> int:
        return self.engine.sip_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ the loop
    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run a coroutine on the engine's loop and return its result."""
        return self.thread.run(coro, timeout)

    def call_soon(self, fn: Any, *args: Any) -> None:
        self.thread.loop.call_soon_threadsafe(fn, *args)

    def evaluate(self, fn: Callable[[Engine], T], timeout: float = 10) -> T:
        """fn(engine), evaluated on the engine's loop (never while it is half-way through)."""

        async def evaluate() -> T:
            return fn(self.engine)

        result: T = self.run(evaluate(), timeout)
        return result

    def wait_until(
        self,
        predicate: Callable[[Engine], T],
        timeout: float = 10,
        *,
        what: str,
        seen: Callable[[Engine], object] | None = None,
    ) -> T:
        """Evaluate predicate(engine) on the loop until it is truthy, and return its value.

        On timeout, AssertionError: "waited N s for <what>; saw <seen(engine) or the value>".
        """
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(predicate)
            if value:
                return value
            if time.monotonic() >= deadline:
                observed = self.evaluate(seen) if seen is not None else value
                raise AssertionError(f"waited {timeout:g} s for {what}; saw {observed!r}")
            time.sleep(POLL)

    def start(self) -> None:
        self.run(self.engine.start())

    def stop(self) -> None:
        """Stop the engine (its writers flushed) and its loop thread; twice is harmless."""
        if self.thread.loop.is_closed():
            return
        try:
            self.run(self.engine.stop(), timeout=60)  # its database writers drained
        finally:
            self.thread.close()

    # ------------------------------------------------------------------ registrations
    def contacts(self, username: str) -> list[tuple[str, tuple[str, int]]]:
        """(contact URI, source address) of each live binding of a device."""
        return self.evaluate(
            lambda engine: [
                (str(b.contact), b.source)
                for b in engine.registrar.contacts(username, engine.stack.now())
            ]
        )

    def registered(self, username: str) -> bool:
        return bool(self.contacts(username))

    def wait_registered(self, username: str, timeout: float = 10) -> None:
        """Wait until the device `username` has a live binding."""
        self.wait_until(
            lambda engine: engine.registrar.contacts(username, engine.stack.now()),
            timeout,
            what=f"a registration of {username}",
        )

    def bind(self, username: str, address: str, transport: str = "udp") -> None:
        """Make `username` reachable at host:port without a REGISTER (a SIPp UAS callee)."""
        from pbx.sip.uri import SipUri

        host, port = address.rsplit(":", 1)
        self.evaluate(
            lambda engine: engine.registrar.bind(
                username,
                SipUri.parse(f"sip:{username}@{address}"),
                (host, int(port)),
                transport,
                engine.stack.now(),
            )
        )

    # ------------------------------------------------------------------ calls
    def leftovers(self) -> dict[str, int]:
        """What calls hold in the engine: calls, their legs and dialogs, RTP ports."""
        return self.evaluate(_leftovers)

    def wait_no_calls(self, timeout: float = 10) -> None:
        """Wait until no call is left, nor any of its legs, dialogs or RTP ports."""
        self.wait_until(
            lambda engine: not any(_leftovers(engine).values()),
            timeout,
            what="no calls, legs, dialogs or RTP ports left",
            seen=_leftovers,
        )

    def flush_records(self) -> None:
        """Wait until the call records written so far are in the database."""
        self.engine.recorder.flush()  # type: ignore[attr-defined]

    def is_running(self) -> bool:
        return self.evaluate(lambda engine: engine.running)


@dataclass
class CallerMedia:
    """The RTP endpoint of the caller's leg of a call."""

    port: int
    ignored: int  # packets dropped because they came from somewhere else


@dataclass
class CallerWatch:
    """What the engine sent to a call's caller and the keys the caller pressed, each stamped
    with the engine's clock (its loop time): filled on the engine's thread, read by the test."""

    sent: list[tuple[float, bytes]] = field(default_factory=list)  # (time, RTP packet)
    digits: list[tuple[float, str]] = field(default_factory=list)  # (DigitPressed.at, digit)

    def packets_after(self, since: float) -> list[tuple[float, bytes]]:
        return [(at, packet) for at, packet in list(self.sent) if at >= since]


@dataclass
class Pbx(RunningEngine):
    """A running engine, with the memory directory and call recorder behind it."""

    directory: MemoryDirectory = field(default_factory=MemoryDirectory)
    recorder: MemoryRecorder = field(default_factory=MemoryRecorder)
    secrets: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ provisioning
    def add_extension(
        self,
        number: str,
        name: str = "",
        *,
        secret: str | None = None,
        devices: tuple[str, ...] | None = None,
        **options: Any,
    ) -> str:
        """Provision an extension with one device per username (default: the number)."""
        secret = secret or f"secret-{number}-xyz"
        usernames = devices or (number,)
        for username in usernames:
            self.directory.devices[username] = DeviceInfo(
                username,
                REALM,
                ha1(username, REALM, secret, "MD5"),
                ha1(username, REALM, secret, "SHA-256"),
                COMPANY,
                number,
            )
            self.secrets[username] = secret
        self.directory.extensions[(COMPANY, number)] = ExtensionInfo(
            COMPANY, number, name or f"Ext {number}", tuple(usernames), **options
        )
        return secret

    def add_trunk(
        self, port: int, *, dids: dict[str, str] | None = None, **options: Any
    ) -> TrunkInfo:
        trunk = TrunkInfo(1, COMPANY, "carrier", "127.0.0.1", port, **options)
        self.directory.trunk_list[:] = [trunk]
        for number, target in (dids or {}).items():
            self.directory.dids[number] = DidRoute(number, COMPANY, 1, "extension", target)
        self.run(self.engine.trunks.load())
        return trunk

    def dial(
        self, number: str, scenario: str = "uac_call", *, caller: str = "201", **options: Any
    ) -> SippResult:
        """Run a SIPp caller scenario: `caller` (authenticated with its secret) dials `number`."""
        return run_sipp(
            scenario,
            self.address,
            keys={"service": number, "user": caller},
            auth=(caller, self.secrets[caller]),
            **options,
        )

    # ------------------------------------------------------------------ call records
    def wait_records(self, count: int = 1, timeout: float = 10) -> list[dict[str, object]]:
        """Wait until `count` calls have their records closed; exactly `count`, no more."""

        def closed(_: Engine) -> list[dict[str, object]] | None:
            records = [dict(r) for r in self.recorder.records.values()]
            done = len(records) >= count and all(r["disposition"] != "in_progress" for r in records)
            return records if done else None

        records = self.wait_until(
            closed,
            timeout,
            what=f"{count} closed call record(s)",
            seen=lambda _: list(self.recorder.records.values()),
        )
        assert len(records) == count, f"{len(records)} call records, want {count}: {records}"
        return records

    def wait_record(
        self, disposition: str | None = None, *, count: int = 1, timeout: float = 10
    ) -> dict[str, object]:
        """Wait for `count` closed call records and return the newest one.

        With `disposition`, fail at once when the newest record ended otherwise.
        """
        records = self.wait_records(count, timeout)
        newest = records[-1]
        if disposition is not None:
            assert newest["disposition"] == disposition, (
                f"the last call ended {newest['disposition']!r}, want {disposition!r}: {records}"
            )
        return newest

    # ------------------------------------------------------------------ what else tests ask
    def caller_media(self) -> CallerMedia:
        """The caller's RTP endpoint in the only live call."""
        return self.evaluate(_caller_media)

    def wait_caller_ignored(self, packets: int, timeout: float = 10) -> int:
        """Wait until the caller's leg of the only call has dropped `packets` strangers' packets."""
        ignored: int = self.wait_until(
            lambda engine: (
                _caller_media(engine).ignored >= packets and _caller_media(engine).ignored
            ),
            timeout,
            what=f"{packets} packets from strangers ignored",
            seen=_caller_media,
        )
        return ignored

    def wait_trunk_states(self, timeout: float = 10) -> dict[str, str]:
        """Wait until every trunk's registration has an outcome; {trunk name: state}."""
        states: dict[str, str] = self.wait_until(
            lambda engine: (
                "unregistered" not in _trunk_states(engine).values() and _trunk_states(engine)
            ),
            timeout,
            what="the trunks' registrations to succeed or fail",
            seen=_trunk_states,
        )
        return states

    def accepted_digests(self) -> dict[str, int]:
        """How many requests were authenticated with each digest algorithm."""
        return self.evaluate(lambda engine: dict(engine.auth.accepted))

    # ------------------------------------------------------------------ reception
    def add_attendant(self, number: str, *menus: MenuInfo, **options: Any) -> AttendantInfo:
        """Provision a Multiselection on `number`: the first menu answers all week round."""
        week = tuple(Period(day, 0, 24 * 60, menus[0].id) for day in range(7))
        info = AttendantInfo(
            COMPANY, number, f"Multiselection {number}", periods=week, menus=menus, **options
        )
        self.directory.attendants[(COMPANY, number)] = info
        return info

    def add_hunt_group(
        self, number: str, algorithm: str, members: tuple[tuple[str, int], ...], **options: Any
    ) -> HuntGroupInfo:
        """Provision a hunt group: members are (extension, ring time in seconds) in order."""
        group = HuntGroupInfo(COMPANY, number, f"Group {number}", algorithm, members, **options)
        self.directory.hunt_groups[(COMPANY, number)] = group
        return group

    def watch_next_caller(self) -> CallerWatch:
        """Log what the engine sends to the caller of the next call, and the keys that caller
        presses (`CallerWatch`): from the call's first change of state on (its routing), so
        before anything is played to it."""
        watch = CallerWatch()
        self.evaluate(lambda engine: _watch_next_caller(engine, watch))
        return watch

    def call_states(self) -> list[str]:
        """The state of each live call."""
        return self.evaluate(lambda engine: [c.state.value for c in engine.calls.calls.values()])

    def extension_states(self, *numbers: str) -> dict[str, str]:
        """What each extension's phones are doing, as presence sees it (idle, ringing...)."""
        return self.evaluate(
            lambda engine: {n: engine.presence.state(COMPANY, n).value for n in numbers}
        )

    def live_legs(self) -> list[str]:
        """Who each live leg of every call faces: its device (or label), not yet ended."""
        return self.evaluate(_live_legs)


# The engine's insides, read on its loop: the only functions to adapt when they change.


def _leftovers(engine: Engine) -> dict[str, int]:
    return {
        "calls": len(engine.calls.calls),
        "legs": len(engine.calls.leg_call),
        "dialogs": len(engine.calls.dialogs),
        "rtp_ports": engine.media.in_use,
    }


def _caller_media(engine: Engine) -> CallerMedia:
    calls = list(engine.calls.calls.values())
    assert len(calls) == 1, f"{len(calls)} live calls, want 1"
    return CallerMedia(calls[0].a.media.port, calls[0].a.media.ignored)


class _LoggedTransport:
    """An RTP socket's transport that notes each datagram sent, with the engine's time."""

    def __init__(self, transport: Any, log: list[tuple[float, bytes]], now: Any) -> None:
        self._transport = transport
        self._log = log
        self._now = now

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self._log.append((self._now(), bytes(data)))
        self._transport.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _watch_next_caller(engine: Engine, watch: CallerWatch) -> None:
    watched: list[str] = []  # the call's id, once it is known

    def on_event(event: object) -> None:
        if isinstance(event, CallChanged) and not watched:
            call = engine.calls.calls.get(event.call_id)
            if call is None or call.a.media.transport is None:
                return  # not attached yet: its next change will do
            watched.append(call.id)
            endpoint = call.a.media
            endpoint.transport = _LoggedTransport(  # type: ignore[assignment]
                endpoint.transport, watch.sent, engine.clock.now
            )
        elif isinstance(event, DigitPressed) and event.call_id in watched:
            watch.digits.append((event.at, event.digit))

    engine.events.subscribe(on_event)  # type: ignore[arg-type]


def _live_legs(engine: Engine) -> list[str]:
    return sorted(
        leg.device or leg.label
        for call in engine.calls.calls.values()
        for leg in (call.a, call.b)
        if leg is not None and not leg.ended
    )


def _trunk_states(engine: Engine) -> dict[str, str]:
    return {r.trunk.name: r.state.value for r in engine.trunks.registrations.values()}


def _engine_config(**config: Any) -> EngineConfig:
    rtp_low = random.randrange(30000, 38000, 200)
    options: dict[str, Any] = {
        "bind": "127.0.0.1",
        "sip_port": free_port_range(1),
        "rtp_ports": (rtp_low, rtp_low + 199),
        "realm": REALM,
        "moh_path": MOH,
    }
    options.update(config)
    return EngineConfig(**options)


def start_pbx(**config: Any) -> Pbx:
    """Start an engine on a free port with an empty directory (config: EngineConfig fields)."""
    directory = MemoryDirectory()
    recorder = MemoryRecorder()
    thread = EngineThread()
    pbx = Pbx(Engine(_engine_config(**config), directory, recorder), thread, directory, recorder)
    try:
        pbx.start()
    except BaseException:
        thread.close()
        raise
    return pbx


def start_engine(build: Callable[[], Engine]) -> RunningEngine:
    """Start an engine built by `build` (on the loop thread, as the real processes do)."""
    thread = EngineThread()
    try:
        running = RunningEngine(build(), thread)
        running.start()
    except BaseException:
        thread.close()
        raise
    return running


def stop_pbx(pbx: RunningEngine) -> None:
    pbx.stop()
