"""The real engine, started on loopback in a thread of its own, for integration tests.

Peers (SIPp, baresip, linphonec, pyVoIP) are driven synchronously by the tests, so the engine
runs its asyncio loop in a background thread; `EngineThread.run(coro)` reaches into it.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbx.engine.directory import DeviceInfo, DidRoute, ExtensionInfo, MemoryDirectory, TrunkInfo
from pbx.engine.records import MemoryRecorder
from pbx.engine.runtime import Engine, EngineConfig
from pbx.sip.digest import ha1
from tests.integration.peers.ports import free_port_range
from tests.integration.peers.sipp import SippResult, run_sipp

REALM = "centralino"
COMPANY = 1
MOH = str(Path(__file__).resolve().parents[2] / "pbx" / "media" / "assets" / "moh.wav")


@dataclass
class Pbx:
    """A running engine and the directory behind it."""

    engine: Engine
    directory: MemoryDirectory
    recorder: MemoryRecorder
    thread: EngineThread
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.engine.sip_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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

    def bind(self, username: str, address: str, transport: str = "udp") -> None:
        """Make `username` reachable at host:port without a REGISTER (a SIPp UAS callee)."""
        host, port = address.rsplit(":", 1)

        async def bind() -> None:
            from pbx.sip.uri import SipUri

            self.engine.registrar.bind(
                username,
                SipUri.parse(f"sip:{username}@{address}"),
                (host, int(port)),
                transport,
                self.engine.stack.now(),
            )

        self.run(bind())

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

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        return self.thread.run(coro, timeout)

    def call_soon(self, fn: Any, *args: Any) -> None:
        self.thread.loop.call_soon_threadsafe(fn, *args)

    def registered(self, username: str) -> bool:
        async def check() -> bool:
            return bool(self.engine.registrar.contacts(username, self.engine.stack.now()))

        return bool(self.run(check()))

    def wait_registered(self, username: str, timeout: float = 10) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.registered(username):
                return
            time.sleep(0.05)
        raise AssertionError(f"{username} did not register")


class EngineThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="engine", daemon=True)
        self.thread.start()

    def bind(self, username: str, address: str, transport: str = "udp") -> None:
        """Make `username` reachable at host:port without a REGISTER (a SIPp UAS callee)."""
        host, port = address.rsplit(":", 1)

        async def bind() -> None:
            from pbx.sip.uri import SipUri

            self.engine.registrar.bind(
                username,
                SipUri.parse(f"sip:{username}@{address}"),
                (host, int(port)),
                transport,
                self.engine.stack.now(),
            )

        self.run(bind())

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def start_pbx(**config: Any) -> Pbx:
    """Start an engine on a free port with an empty directory."""
    directory = MemoryDirectory()
    recorder = MemoryRecorder()
    sip_port = free_port_range(1)
    rtp_low = random.randrange(30000, 38000, 200)
    cfg = EngineConfig(
        bind="127.0.0.1",
        sip_port=sip_port,
        rtp_ports=(rtp_low, rtp_low + 199),
        realm=REALM,
        moh_path=MOH,
        **config,
    )
    thread = EngineThread()
    engine = Engine(cfg, directory, recorder)
    thread.run(engine.start())
    return Pbx(engine, directory, recorder, thread)


def stop_pbx(pbx: Pbx) -> None:
    try:
        pbx.run(pbx.engine.stop())
    finally:
        pbx.thread.close()
