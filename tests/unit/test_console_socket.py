"""The console's socket: who may open it, what it is sent first, and what it never sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from operator_panel.asgi import application
from pbx import worker
from pbx.events import SCHEMA_VERSION, ChannelPublisher, ConsoleFeed
from pbx.models import Company, Membership, Role
from tests.unit.fakes.events import call_created

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


@pytest.fixture
async def feed() -> AsyncIterator[ConsoleFeed]:
    """An engine of this process, on this loop, whose feed publishes to the channel layer."""
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro):  # type: ignore[no-untyped-def]
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    console = ConsoleFeed(ChannelPublisher(get_channel_layer(), spawn))
    worker.attach(SimpleNamespace(console=console), asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        yield console
    finally:
        worker.detach()
        await asyncio.gather(*tasks)


def _session_cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _socket(user: User | None, origin: tuple[bytes, bytes] = ORIGIN) -> WebsocketCommunicator:
    """A browser's socket to the console: logged in as `user` (None: not logged in)."""
    headers = [origin]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(_session_cookie)(user)))
    return WebsocketCommunicator(application, "/ws/console/", headers=headers)


async def test_an_operator_gets_the_snapshot_then_the_calls_of_her_company(
    alice: User, company: Company, feed: ConsoleFeed
) -> None:
    socket = await _socket(alice)
    connected, _ = await socket.connect()
    assert connected
    assert await socket.receive_json_from() == {
        "type": "snapshot",
        "v": SCHEMA_VERSION,
        "seq": 0,
        "calls": {},
        "extensions": {},
    }
    feed.on_event(call_created(company.id))
    message = await socket.receive_json_from()
    assert (message["type"], message["seq"], message["call"]["caller"]) == (
        "call.updated",
        1,
        "0612345678",
    )
    await socket.disconnect()


async def test_a_console_never_sees_another_companys_calls(
    alice: User, company: Company, feed: ConsoleFeed
) -> None:
    other = await Company.objects.acreate(name="Other S.r.l.")
    socket = await _socket(alice)
    assert (await socket.connect())[0]
    await socket.receive_json_from()  # the snapshot
    feed.on_event(call_created(other.id))
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


@pytest.mark.parametrize("who", ["nobody", "bob", "a user of no company"])
async def test_whoever_does_not_run_the_console_is_refused_and_sent_nothing(
    who: str, bob: User, company: Company, feed: ConsoleFeed
) -> None:
    user = {
        "nobody": None,
        "bob": bob,  # an end user
        "a user of no company": await User.objects.acreate(username="stranger"),
    }[who]
    socket = await _socket(user)
    connected, code = await socket.connect()
    assert not connected
    feed.on_event(call_created(company.id))
    assert await socket.receive_nothing(timeout=0.2)


async def test_a_socket_from_a_foreign_origin_is_refused(alice: User, feed: ConsoleFeed) -> None:
    socket = await _socket(alice, origin=(b"origin", b"http://evil.example"))
    connected, _ = await socket.connect()
    assert not connected


async def test_a_ping_gets_its_pong_for_the_latency_shown_on_hover(
    carol: User, feed: ConsoleFeed
) -> None:
    socket = await _socket(carol)  # an administrator may look at the console too
    assert (await socket.connect())[0]
    await socket.receive_json_from()
    await socket.send_json_to({"type": "ping", "id": 7})
    assert await socket.receive_json_from() == {"type": "pong", "id": 7}
    await socket.send_json_to({"type": "dance"})
    assert (await socket.receive_json_from())["code"] == "unknown_message"
    await socket.disconnect()


async def test_without_an_engine_the_console_is_told_so(alice: User) -> None:
    worker.detach()
    socket = await _socket(alice)
    assert (await socket.connect())[0]
    assert (await socket.receive_json_from())["code"] == "engine_unavailable"
    await socket.disconnect()


def test_membership_roles_that_run_the_console() -> None:
    assert {role for role in Role if Membership(role=role).runs_the_console} == {
        Role.OPERATOR,
        Role.ADMINISTRATOR,
    }
