"""The console's socket: who may open it, what it is sent first, and what it never sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from operator_panel.asgi import application
from pbx import worker
from pbx.engine.call import CallState, Disposition
from pbx.engine.commands import Action, Console, Done
from pbx.engine.operations import OperationError
from pbx.events import SCHEMA_VERSION, ChannelPublisher, ConsoleFeed, apply_to_view, view_of
from pbx.models import Company, Extension, Membership, Role
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
        "nodes": {  # one node: the engine of this process
            "": {
                "v": SCHEMA_VERSION,
                "node": "",
                "seq": 0,
                "calls": {},
                "extensions": {},
                "registered": [],
            }
        },
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


# --- commands --------------------------------------------------------------------------------


class FakeEngine(SimpleNamespace):
    """The engine's command door, answering as told: a Done, or an OperationError."""

    async def execute(self, command: Console) -> Done:
        self.received.append(command)
        if isinstance(self.answer, OperationError):
            raise self.answer
        return self.answer


@pytest.fixture
async def engine(alice: User, company: Company) -> AsyncIterator[FakeEngine]:
    """Alice at extension 200, and an engine in this process that answers her commands."""

    def give_alice_her_phone() -> None:
        extension = Extension.objects.create(company=company, number="200", display_name="Op")
        Membership.objects.filter(user=alice).update(extension=extension)

    await sync_to_async(give_alice_her_phone)()
    fake = FakeEngine(console=ConsoleFeed(), received=[], answer=Done("c1"))
    worker.attach(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        yield fake
    finally:
        worker.detach()


async def _connected(user: User) -> WebsocketCommunicator:
    socket = await _socket(user)
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["type"] == "snapshot"
    return socket


async def test_a_command_is_acknowledged_to_its_sender_with_its_id(
    alice: User, engine: FakeEngine
) -> None:
    socket = await _connected(alice)
    await socket.send_json_to({"type": "command", "id": 7, "action": "answer", "call_id": "c1"})
    assert await socket.receive_json_from() == {
        "type": "ack",
        "id": 7,
        "result": {"call_id": "c1"},
    }
    [command] = engine.received
    assert (command.action, command.extension, command.call_id) == (Action.ANSWER, "200", "c1")
    await socket.disconnect()


async def test_the_engines_refusal_reaches_the_sender_with_its_code(
    alice: User, engine: FakeEngine
) -> None:
    engine.answer = OperationError("slot_taken", "parking slot 3 is taken")
    socket = await _connected(alice)
    await socket.send_json_to(
        {"type": "command", "id": "p", "action": "park", "call_id": "c1", "slot": 3}
    )
    assert await socket.receive_json_from() == {
        "type": "error",
        "id": "p",
        "code": "slot_taken",
        "detail": "parking slot 3 is taken",
    }
    await socket.disconnect()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action": "launch"}, "bad_request"),
        ({"action": "answer"}, "bad_request"),  # which call?
        ({"action": "answer", "call_id": "'; drop"}, "bad_request"),
        ({"action": "dial", "number": "2O1"}, "bad_request"),
        ({"action": "retrieve", "slot": 11}, "no_such_slot"),
        ({"action": "park", "call_id": "c1", "slot": "x"}, "bad_request"),
    ],
)
async def test_a_malformed_command_is_refused_and_never_reaches_the_engine(
    alice: User, engine: FakeEngine, body: dict[str, object], code: str
) -> None:
    socket = await _connected(alice)
    await socket.send_json_to({"type": "command", "id": 1, **body})
    reply = await socket.receive_json_from()
    assert (reply["type"], reply["id"], reply["code"]) == ("error", 1, code)
    assert reply["detail"]
    assert engine.received == []
    await socket.disconnect()


async def test_an_operator_without_a_phone_may_watch_but_not_command(
    carol: User, engine: FakeEngine
) -> None:
    socket = await _connected(carol)  # the administrator: no extension
    await socket.send_json_to({"type": "command", "id": 2, "action": "hangup", "call_id": "c1"})
    reply = await socket.receive_json_from()
    assert (reply["type"], reply["code"]) == ("error", "not_allowed")
    assert engine.received == []
    await socket.disconnect()


async def test_a_console_that_saw_a_gap_gets_a_new_snapshot(
    alice: User, engine: FakeEngine
) -> None:
    socket = await _connected(alice)
    await socket.send_json_to({"type": "resync"})
    assert (await socket.receive_json_from())["type"] == "snapshot"
    await socket.disconnect()


async def test_snapshot_plus_a_burst_of_messages_equals_a_fresh_snapshot(
    alice: User, company: Company, feed: ConsoleFeed
) -> None:
    """Forty calls of two companies come, move and end while the console listens."""
    other = await Company.objects.acreate(name="Other S.r.l.")
    socket = await _socket(alice)
    assert (await socket.connect())[0]
    built = await socket.receive_json_from()
    built.pop("type")
    for n in range(40):
        company_id = company.id if n % 3 else other.id
        created = call_created(company_id, call_id=f"{n:02x}")
        feed.on_event(created)
        if n % 2:
            feed.on_event(replace(created, previous=CallState.ROUTING, state=CallState.QUEUED))
        if n % 5 == 0:
            feed.on_event(
                replace(
                    created,
                    previous=CallState.ROUTING,
                    state=CallState.ENDED,
                    disposition=Disposition.CANCELLED,
                )
            )
    expected = view_of([feed.snapshot(company.id)])
    while built["nodes"][""]["seq"] < expected["nodes"][""]["seq"]:
        built = apply_to_view(built, await socket.receive_json_from())
    assert built == expected
    assert len(built["nodes"][""]["calls"]) == len([n for n in range(40) if n % 3 and n % 5])
    assert await socket.receive_nothing(timeout=0.2)  # nothing of the other company
    await socket.disconnect()
