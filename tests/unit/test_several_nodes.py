"""Several telephony nodes behind one web: each node's stream, the consoles' merged view, and
commands that follow the node that has the call (pbx/events.py, pbx/control.py, the API)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from pbx import control, worker
from pbx.engine.call import CallState
from pbx.engine.commands import Action, Console
from pbx.engine.events import ExtensionState, ExtensionStateChanged, RegistrationChanged
from pbx.events import ConsoleFeed, Gap, apply_to_view, merged, view_of
from pbx.models import Company, Extension, Membership
from tests.unit.fakes.events import call_created

COMPANY = 1


def two_nodes() -> tuple[ConsoleFeed, ConsoleFeed, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    feeds = tuple(
        ConsoleFeed(lambda company, message: sent.append(message), wall=lambda: 5.0, node=node)
        for node in ("rome", "milan")
    )
    return feeds[0], feeds[1], sent


def test_each_nodes_messages_apply_to_its_own_snapshot_in_the_view() -> None:
    rome, milan, sent = two_nodes()
    view = view_of([rome.snapshot(COMPANY), milan.snapshot(COMPANY)])
    rome.on_event(call_created(COMPANY, "a1"))
    milan.on_event(call_created(COMPANY, "b1"))
    milan.on_event(call_created(COMPANY, "b2"))
    rome.on_event(
        replace(call_created(COMPANY, "a1"), previous=CallState.ROUTING, state=CallState.QUEUED)
    )
    for message in sent:  # interleaved: each node's sequence is its own
        view = apply_to_view(view, message)
    assert view == view_of([rome.snapshot(COMPANY), milan.snapshot(COMPANY)])
    calls = merged(view)["calls"]
    assert {call_id: call["node"] for call_id, call in calls.items()} == {
        "a1": "rome",
        "b1": "milan",
        "b2": "milan",
    }


def test_a_message_of_a_node_the_view_does_not_hold_asks_for_a_new_snapshot() -> None:
    rome, milan, sent = two_nodes()
    view = view_of([rome.snapshot(COMPANY)])  # milan started after the console's snapshot
    milan.on_event(call_created(COMPANY))
    with pytest.raises(Gap):
        apply_to_view(view, sent[0])


def test_an_extension_shows_what_its_busiest_node_says_and_is_registered_on_any() -> None:
    rome, milan, _ = two_nodes()
    idle = ExtensionState.IDLE
    rome.on_event(ExtensionStateChanged(COMPANY, "201", idle, ExtensionState.RINGING, 0.0))
    milan.on_event(ExtensionStateChanged(COMPANY, "201", idle, ExtensionState.HELD, 0.0))
    milan.on_event(ExtensionStateChanged(COMPANY, "202", idle, ExtensionState.DIALLING, 0.0))
    rome.on_event(ExtensionStateChanged(COMPANY, "202", idle, ExtensionState.RINGING, 0.0))
    milan.on_event(RegistrationChanged("203", 1, 0.0, COMPANY, "203"))
    shown = merged(view_of([rome.snapshot(COMPANY), milan.snapshot(COMPANY)]))
    assert shown["extensions"] == {"201": "held", "202": "ringing"}
    assert shown["registered"] == ["203"]


# --- the web asks every node, and sends each command to the node that has the call ----------


@pytest.fixture
def distributed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The web without an engine, knowing the nodes rome and milan (milan does not answer)."""
    worker.detach()
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    settings.CENTRALINO_NODES = ["rome", "milan"]
    rome, _, _ = two_nodes()
    sent: dict[str, Any] = {"commands": [], "forgotten": 0}

    async def node_snapshot(node: str, company_id: int) -> dict[str, Any]:
        """Rome has one call, a1, of whichever company asks."""
        if node == "milan":
            raise TimeoutError("milan did not answer")
        if not rome.snapshot(company_id)["calls"]:
            rome.on_event(call_created(company_id, "a1"))
        return rome.snapshot(company_id)

    class Result:
        def __init__(self, answer: dict[str, Any]) -> None:
            self.answer = answer

        def get(self, timeout: float) -> dict[str, Any]:
            return self.answer

        def forget(self) -> None:
            sent["forgotten"] += 1

    def apply_async(args: tuple[dict[str, Any]], queue: str) -> Result:
        sent["commands"].append((queue, Console.from_dict(args[0])))
        return Result({"call_id": args[0]["call_id"] or "new"})

    from pbx import tasks

    monkeypatch.setattr(control, "_node_snapshot", node_snapshot)
    monkeypatch.setattr(tasks.console_command, "apply_async", apply_async)
    return sent


async def test_the_view_holds_the_nodes_that_answered_and_names_the_others(
    distributed: dict[str, Any],
) -> None:
    view = await control.console_snapshot(COMPANY)
    assert list(view["nodes"]) == ["rome"] and view["unreachable"] == ["milan"]
    assert "a1" in view["nodes"]["rome"]["calls"]


async def test_a_command_goes_to_the_queue_of_the_node_it_names(
    distributed: dict[str, Any],
) -> None:
    actor = control.Actor(COMPANY, "200", True)
    await control.command(
        control.parse(actor, {"action": "hangup", "call_id": "a1", "node": "milan"})
    )
    await control.command(control.parse(actor, {"action": "hangup", "call_id": "a1"}))
    assert [queue for queue, _ in distributed["commands"]] == ["telephony.milan", "telephony.rome"]
    assert distributed["forgotten"] == 2  # each answer read once, nothing left in Redis
    with pytest.raises(control.Refused) as refused:
        control.parse(actor, {"action": "hangup", "call_id": "a1", "node": "paris"})
    assert refused.value.code == "bad_request"


@pytest.mark.django_db
def test_the_api_sends_a_call_command_to_the_node_that_has_the_call(
    distributed: dict[str, Any], alice: User, company: Company
) -> None:
    operator = Extension.objects.create(company=company, number="200", display_name="Op")
    Membership.objects.filter(user=alice).update(extension=operator)
    client = APIClient()
    client.force_authenticate(alice)
    response = client.post("/api/v1/calls/a1/hold/")
    assert response.status_code == 200, response.json()
    [(queue, command)] = distributed["commands"]
    assert (queue, command.action, command.node) == ("telephony.rome", Action.HOLD, "rome")
    gone = client.post("/api/v1/calls/abc/hold/")  # on no node that answered
    assert (gone.status_code, gone.json()["error"]) == (404, "no_such_call")
    assert len(distributed["commands"]) == 1
