"""How the engine takes a SUBSCRIBE: authenticated first like any request of a phone, then
489, 404, 403 or a subscription; OPTIONS and 405 name SUBSCRIBE and the event packages.

A real `Engine` whose transports are replaced by a recorder: bytes in, parsed answers out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pbx.engine.directory import DeviceInfo, ExtensionInfo, MemoryDirectory
from pbx.engine.runtime import Engine, EngineConfig
from pbx.engine.transport import Addr, OnMessage
from pbx.sip.digest import DigestClient, ha1
from pbx.sip.message import Request, Response, parse_message

PHONE: Addr = ("192.0.2.55", 5062)
SECRET = "s3cret-201"


class _Wire:
    """Stands in for the engine's transports: records what it sends."""

    port = 5060

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.sent: list[bytes] = []

    async def start(self, host: str, port: int) -> None:
        pass

    async def close(self) -> None:
        pass

    def send(self, data: bytes, addr: Addr, transport: str = "udp") -> None:
        self.sent.append(data)

    def connected(self, addr: Addr) -> bool:
        return False


def _directory() -> MemoryDirectory:
    directory = MemoryDirectory()
    for number in ("201", "202"):
        directory.extensions[(1, number)] = ExtensionInfo(1, number, f"Ext {number}", (number,))
        directory.devices[number] = DeviceInfo(
            number, "centralino", ha1(number, "centralino", SECRET), "", 1, number
        )
    directory.extensions[(2, "301")] = ExtensionInfo(2, "301", "Elsewhere", ("acme-301",))
    directory.devices["acme-301"] = DeviceInfo("acme-301", "centralino", "", "", 2, "301")
    return directory


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine = Engine(
        EngineConfig(sip_port=5060, rtp_ports=(39100, 39110), freeze_gc=False, media_timeout=0),
        _directory(),
    )
    engine.stack.transports = _Wire(engine.stack.transports.on_message)  # type: ignore[assignment]
    await engine.stack.start("127.0.0.1", 5060)
    yield engine
    engine.subscriptions.close()
    engine.tasks.cancel_all()
    await engine.stack.close()


def _wire(engine: Engine) -> _Wire:
    assert isinstance(engine.stack.transports, _Wire)
    return engine.stack.transports


def _subscribe(
    target: str, event: str, *, cseq: int = 1, authorization: str = "", to_tag: str = ""
) -> bytes:
    lines = [
        f"SUBSCRIBE sip:{target}@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP {PHONE[0]}:{PHONE[1]};branch=z9hG4bK-sub-{target}-{cseq}",
        "From: <sip:201@127.0.0.1>;tag=phone-1",
        f"To: <sip:{target}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else ""),
        "Call-ID: sub-1@192.0.2.55",
        f"CSeq: {cseq} SUBSCRIBE",
        f"Contact: <sip:201@{PHONE[0]}:{PHONE[1]}>",
        f"Event: {event}",
        "Expires: 600",
        "Max-Forwards: 70",
    ]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


async def _send(engine: Engine, data: bytes) -> list[Request | Response]:
    """Deliver `data` from the phone; what the engine sent back, parsed, in order."""
    wire = _wire(engine)
    mark = len(wire.sent)
    wire.on_message(data, PHONE, "udp")
    for _ in range(20):
        await asyncio.sleep(0)
    return [parse_message(data) for data in wire.sent[mark:]]


async def _authorized(engine: Engine, target: str, event: str) -> list[Request | Response]:
    """SUBSCRIBE, be challenged, SUBSCRIBE again with credentials: what came back then."""
    [challenge] = await _send(engine, _subscribe(target, event))
    assert isinstance(challenge, Response) and challenge.status == 401
    value = DigestClient("201", SECRET).authorization(
        challenge.headers.get("WWW-Authenticate") or "",
        method="SUBSCRIBE",
        uri=f"sip:{target}@127.0.0.1",
    )
    return await _send(engine, _subscribe(target, event, cseq=2, authorization=value))


@pytest.mark.parametrize("event", ["dialog", "message-summary", "conference"])
async def test_a_subscribe_without_credentials_is_challenged_whatever_its_package(
    engine: Engine, event: str
) -> None:
    [answer] = await _send(engine, _subscribe("202", event))

    assert isinstance(answer, Response) and answer.status == 401
    assert (answer.headers.get("WWW-Authenticate") or "").startswith("Digest ")
    assert "Allow-Events" not in answer.headers  # nothing told before the phone is known


async def test_an_unknown_package_is_489_after_the_challenge(engine: Engine) -> None:
    [answer] = await _authorized(engine, "202", "conference")

    assert isinstance(answer, Response) and answer.status == 489
    assert answer.headers.get("Allow-Events") == "message-summary, dialog, presence"


async def test_an_authenticated_subscription_is_answered_and_notified(engine: Engine) -> None:
    ok, notify = await _authorized(engine, "202", "dialog")

    assert isinstance(ok, Response) and ok.status == 200
    assert ok.headers.get("Expires") == "600"
    assert isinstance(notify, Request) and notify.method == "NOTIFY"
    assert notify.uri == f"sip:201@{PHONE[0]}:{PHONE[1]}"
    assert notify.headers.get("Subscription-State") == "active;expires=600"
    assert engine.status()["subscriptions"] == 1


async def test_unknown_and_foreign_extensions_are_refused_after_the_challenge(
    engine: Engine,
) -> None:
    [unknown] = await _authorized(engine, "299", "dialog")
    [foreign] = await _authorized(engine, "acme-301", "dialog")

    assert isinstance(unknown, Response) and unknown.status == 404
    assert isinstance(foreign, Response) and foreign.status == 403


async def test_a_refresh_of_a_subscription_we_do_not_have_is_481(engine: Engine) -> None:
    [answer] = await _send(engine, _subscribe("202", "dialog", to_tag="not-ours"))

    assert isinstance(answer, Response) and answer.status == 481


async def test_options_names_subscribe_and_the_event_packages(engine: Engine) -> None:
    options = _subscribe("202", "dialog").replace(b"SUBSCRIBE", b"OPTIONS")

    [answer] = await _send(engine, options)

    assert isinstance(answer, Response) and answer.status == 200
    assert "SUBSCRIBE" in (answer.headers.get("Allow") or "")
    assert answer.headers.get("Allow-Events") == "message-summary, dialog, presence"


async def test_a_method_we_do_not_take_lists_subscribe_in_its_allow(engine: Engine) -> None:
    publish = _subscribe("202", "presence").replace(b"SUBSCRIBE", b"PUBLISH")

    [answer] = await _send(engine, publish)

    assert isinstance(answer, Response) and answer.status == 405
    assert (answer.headers.get("Allow") or "").endswith("REGISTER, SUBSCRIBE")


async def test_a_subscribe_that_requires_an_extension_we_lack_is_420(engine: Engine) -> None:
    """SUBSCRIBE is ours now: its Require is inspected (RFC 3261 8.2.2.3), unlike a 405's."""
    data = _subscribe("202", "dialog").replace(
        b"Expires: 600", b"Expires: 600\r\nRequire: eventlist"
    )

    [answer] = await _send(engine, data)

    assert isinstance(answer, Response) and answer.status == 420
    assert answer.headers.get("Unsupported") == "eventlist"
