"""The console's REST API: what a CRM may ask, what reaches the engine, and how refusals read."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from pbx import worker
from pbx.engine.call import CallState
from pbx.engine.commands import Action, Console, Done
from pbx.engine.events import ExtensionState, ExtensionStateChanged, RegistrationChanged
from pbx.engine.operations import OperationError
from pbx.events import ConsoleFeed
from pbx.models import Company, Extension, Membership, Role
from tests.unit.fakes.events import call_created

# Every endpoint: (method, path, body).
ENDPOINTS = [
    ("get", "/api/v1/calls/", None),
    ("post", "/api/v1/calls/c1/answer/", None),
    ("post", "/api/v1/calls/c1/reject/", None),
    ("post", "/api/v1/calls/c1/hold/", None),
    ("post", "/api/v1/calls/c1/resume/", None),
    ("post", "/api/v1/calls/c1/hangup/", None),
    ("post", "/api/v1/calls/c1/park/", {"slot": 3}),
    ("post", "/api/v1/calls/c1/transfer/", {"number": "204"}),
    ("get", "/api/v1/parking/", None),
    ("post", "/api/v1/parking/3/retrieve/", None),
    ("post", "/api/v1/dial/", {"number": "201"}),
    ("get", "/api/v1/extensions/", None),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]


class FakeEngine:
    """The engine's command door and console feed, answering commands as told."""

    def __init__(self) -> None:
        self.console = ConsoleFeed(wall=lambda: 1000.0)
        self.received: list[Console] = []
        self.answer: Done | Exception = Done("c1")

    async def execute(self, command: Console) -> Done:
        self.received.append(command)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def alice_at_200(alice: User, company: Company) -> User:
    """Alice the operator, with her phone: extension 200."""
    extension = Extension.objects.create(company=company, number="200", display_name="Alice")
    Membership.objects.filter(user=alice).update(extension=extension)
    return alice


@pytest.fixture
def engine(alice_at_200: User) -> Iterator[FakeEngine]:
    """An engine of this process running on its own loop in another thread, as with Daphne."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeEngine()
    worker.attach(fake, loop)  # type: ignore[arg-type]
    try:
        yield fake
    finally:
        worker.detach()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def client_of(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def send(client: APIClient, method: str, path: str, body: Any = None) -> Any:
    if method == "get":
        return client.get(path)
    return client.post(path, body, format="json")


def operator_of_another_company(username: str = "dave") -> User:
    other = Company.objects.create(name="Other S.r.l.")
    extension = Extension.objects.create(company=other, number="200", display_name="Dave")
    user = User.objects.create_user(username)
    Membership.objects.create(
        user=user,
        company=other,
        role=Role.OPERATOR,
        extension=extension,
        must_change_password=False,
    )
    return user


def parked(company_id: int, call_id: str, slot: int) -> Any:
    """The event of a call the operator at 200 parked in `slot`."""
    return dataclasses.replace(
        call_created(company_id, call_id),
        previous=CallState.ANSWERED,
        state=CallState.PARKED,
        operator="200",
        park_slot=slot,
    )


# --- commands --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "action", "fields"),
    [
        ("/api/v1/calls/c1/answer/", None, Action.ANSWER, {"call_id": "c1"}),
        ("/api/v1/calls/c1/reject/", None, Action.REJECT, {"call_id": "c1"}),
        ("/api/v1/calls/c1/hold/", None, Action.HOLD, {"call_id": "c1"}),
        ("/api/v1/calls/c1/resume/", None, Action.RESUME, {"call_id": "c1"}),
        ("/api/v1/calls/c1/hangup/", None, Action.HANGUP, {"call_id": "c1"}),
        ("/api/v1/calls/c1/park/", None, Action.PARK, {"call_id": "c1"}),
        ("/api/v1/calls/c1/park/", {"slot": 3}, Action.PARK, {"call_id": "c1", "slot": 3}),
        (
            "/api/v1/calls/c1/transfer/",
            {"number": "204"},
            Action.TRANSFER,
            {"call_id": "c1", "number": "204"},
        ),
        (
            "/api/v1/calls/c1/transfer/",
            {"consult_call_id": "c2"},
            Action.ATTENDED_TRANSFER,
            {"call_id": "c1", "consult_call_id": "c2"},
        ),
        ("/api/v1/parking/4/retrieve/", None, Action.RETRIEVE, {"slot": 4}),
        ("/api/v1/dial/", {"number": "0612345678"}, Action.DIAL, {"number": "0612345678"}),
    ],
)
def test_a_command_reaches_the_engine_for_the_operators_company_and_phone(
    alice_at_200: User,
    company: Company,
    engine: FakeEngine,
    path: str,
    body: dict[str, Any] | None,
    action: Action,
    fields: dict[str, Any],
) -> None:
    response = client_of(alice_at_200).post(path, body, format="json")

    assert (response.status_code, response.json()) == (200, {"call_id": "c1"})
    assert engine.received == [Console(action, company.id, "200", **fields)]


def test_parking_says_which_slot_the_call_went_to(alice_at_200: User, engine: FakeEngine) -> None:
    engine.answer = Done("c1", slot=7)
    response = client_of(alice_at_200).post("/api/v1/calls/c1/park/")

    assert (response.status_code, response.json()) == (200, {"call_id": "c1", "slot": 7})


def test_the_url_names_the_action_and_the_call_never_the_body(
    alice_at_200: User, company: Company, engine: FakeEngine
) -> None:
    body = {"action": "dial", "call_id": "ff", "number": "0612345678", "company_id": 99}
    response = client_of(alice_at_200).post("/api/v1/calls/c1/answer/", body, format="json")

    assert response.status_code == 200
    assert engine.received == [Console(Action.ANSWER, company.id, "200", call_id="c1")]


@pytest.mark.django_db(transaction=True)
async def test_it_works_when_the_engine_shares_the_web_servers_loop(
    alice_at_200: User, company: Company
) -> None:
    """The embedded default: Daphne's loop runs the engine, and the sync view waits on it."""
    fake = FakeEngine()
    fake.console.on_event(call_created(company.id))
    worker.attach(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
    try:
        client = AsyncClient()
        await client.aforce_login(alice_at_200)
        listed = await client.get("/api/v1/calls/")
        hung_up = await client.post("/api/v1/calls/c1/hangup/")
    finally:
        worker.detach()

    assert [call["id"] for call in listed.json()] == ["c1"]
    assert (hung_up.status_code, hung_up.json()) == (200, {"call_id": "c1"})
    assert fake.received == [Console(Action.HANGUP, company.id, "200", call_id="c1")]


def test_token_authentication_works_for_a_crm(alice_at_200: User, engine: FakeEngine) -> None:
    token = Token.objects.create(user=alice_at_200)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = client.post("/api/v1/dial/", {"number": "201"}, format="json")

    assert response.status_code == 200
    assert [command.number for command in engine.received] == ["201"]


def test_a_wrong_token_is_refused(engine: FakeEngine) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")

    response = client.post("/api/v1/dial/", {"number": "201"}, format="json")

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert engine.received == []


def test_a_session_command_without_its_csrf_token_is_refused(
    alice_at_200: User, engine: FakeEngine
) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice_at_200)

    response = client.post("/api/v1/calls/c1/hangup/")

    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert engine.received == []


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("no_such_call", 404),
        ("slot_empty", 404),
        ("no_such_number", 404),
        ("no_such_slot", 400),
        ("not_allowed", 403),
        ("taken", 409),
        ("slot_taken", 409),
        ("target_busy", 409),
        ("parking_full", 409),
        ("not_answered", 409),
        ("not_yours", 409),
        ("phone_unreachable", 409),
        ("target_unavailable", 409),
        ("a_code_of_tomorrow", 409),
        ("no_media_port", 503),
    ],
)
def test_the_engines_refusal_has_its_status_and_code(
    alice_at_200: User, engine: FakeEngine, code: str, status: int
) -> None:
    engine.answer = OperationError(code, "the reason, for people")
    response = client_of(alice_at_200).post("/api/v1/calls/c1/answer/")

    assert (response.status_code, response.json()) == (
        status,
        {"error": code, "detail": "the reason, for people"},
    )


def test_an_engine_that_fails_is_unavailable(alice_at_200: User, engine: FakeEngine) -> None:
    engine.answer = RuntimeError("the loop is gone")
    response = client_of(alice_at_200).post("/api/v1/calls/c1/hangup/")

    assert (response.status_code, response.json()["error"]) == (503, "engine_unavailable")


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/api/v1/dial/", {"number": "2O1"}, "bad_request"),
        ("/api/v1/dial/", {"number": 201}, "bad_request"),  # numbers are strings: 0 first
        ("/api/v1/dial/", {}, "bad_request"),
        ("/api/v1/dial/", [{"number": "201"}], "bad_request"),
        ("/api/v1/calls/c1/park/", {"slot": "x"}, "bad_request"),
        ("/api/v1/calls/c1/park/", {"slot": 11}, "no_such_slot"),
        ("/api/v1/parking/11/retrieve/", None, "no_such_slot"),
        ("/api/v1/calls/not-an-id/hangup/", None, "bad_request"),
        ("/api/v1/calls/c1/transfer/", {}, "bad_request"),
        ("/api/v1/calls/c1/transfer/", {"number": "204", "consult_call_id": "c2"}, "bad_request"),
        ("/api/v1/calls/c1/transfer/", {"consult_call_id": "'; drop"}, "bad_request"),
    ],
)
def test_a_malformed_command_is_400_and_reaches_nothing(
    alice_at_200: User, engine: FakeEngine, path: str, body: Any, code: str
) -> None:
    response = client_of(alice_at_200).post(path, body, format="json")

    assert (response.status_code, response.json()["error"]) == (400, code)
    assert response.json()["detail"]
    assert engine.received == []


def test_a_body_that_is_not_json_is_400(alice_at_200: User, engine: FakeEngine) -> None:
    response = client_of(alice_at_200).post(
        "/api/v1/dial/", "{number: 201", content_type="application/json"
    )

    assert (response.status_code, response.json()["error"]) == (400, "bad_request")
    assert engine.received == []


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_an_end_user_is_refused_everything(
    bob: User, engine: FakeEngine, method: str, path: str, body: Any
) -> None:
    response = send(client_of(bob), method, path, body)

    assert (response.status_code, response.json()["error"]) == (403, "not_allowed")
    assert engine.received == []


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_an_anonymous_request_is_refused(
    engine: FakeEngine, method: str, path: str, body: Any
) -> None:
    response = send(client_of(None), method, path, body)

    assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert engine.received == []


def test_an_operator_without_a_phone_may_look_but_not_command(
    carol: User, engine: FakeEngine
) -> None:
    client = client_of(carol)  # the administrator: no extension

    assert client.get("/api/v1/calls/").status_code == 200
    response = client.post("/api/v1/calls/c1/hangup/")
    assert (response.status_code, response.json()["error"]) == (403, "not_allowed")
    assert engine.received == []


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_without_an_engine_every_endpoint_is_unavailable(
    alice_at_200: User, settings: Any, method: str, path: str, body: Any
) -> None:
    settings.REDIS_URL = ""
    worker.detach()

    response = send(client_of(alice_at_200), method, path, body)

    assert (response.status_code, response.json()["error"]) == (503, "engine_unavailable")


# --- what the company's operators see --------------------------------------------------------


def test_an_operator_lists_the_live_calls_of_her_company(
    alice_at_200: User, company: Company, engine: FakeEngine
) -> None:
    engine.console.on_event(call_created(company.id))

    response = client_of(alice_at_200).get("/api/v1/calls/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": "c1",
            "state": "routing",
            "direction": "inbound",
            "caller": "0612345678",
            "caller_name": "Rossi",
            "dialled": "0212345678",
            "answered_by": "",
            "operator": "",
            "park_slot": None,
            "outgoing": False,
            "held": False,
            "held_since": None,
            "started_at": 1000.0,
            "state_since": 1000.0,
            "node": "",
        }
    ]


def test_a_user_of_another_company_never_sees_this_companys_calls(
    company: Company, engine: FakeEngine
) -> None:
    engine.console.on_event(call_created(company.id, "c1"))
    engine.console.on_event(parked(company.id, "c2", slot=2))
    dave = operator_of_another_company()
    client = client_of(dave)

    assert client.get("/api/v1/calls/").json() == []
    assert all(slot["call"] is None for slot in client.get("/api/v1/parking/").json())
    # Her commands are for her own company's calls, whatever id she names.
    client.post("/api/v1/calls/c1/hangup/")
    [command] = engine.received
    assert (command.company_id, command.extension) == (dave.membership.company_id, "200")
    assert command.company_id != company.id


def test_parking_lists_the_ten_slots_with_their_calls(
    alice_at_200: User, company: Company, engine: FakeEngine
) -> None:
    engine.console.on_event(call_created(company.id, "c1"))
    engine.console.on_event(parked(company.id, "c2", slot=3))

    response = client_of(alice_at_200).get("/api/v1/parking/")

    assert response.status_code == 200
    slots = response.json()
    assert [slot["slot"] for slot in slots] == list(range(1, 11))
    assert {slot["slot"]: slot["call"]["id"] for slot in slots if slot["call"]} == {3: "c2"}
    assert slots[2]["call"]["park_slot"] == 3


def test_extensions_come_from_the_database_with_their_state(
    alice_at_200: User, company: Company, engine: FakeEngine
) -> None:
    Extension.objects.create(company=company, number="210", display_name="Sales")
    Extension.objects.create(company=company, number="201", display_name="Bob", do_not_disturb=True)
    operator_of_another_company()  # their extension 200 is not ours
    engine.console.on_event(
        ExtensionStateChanged(company.id, "201", ExtensionState.IDLE, ExtensionState.TALKING, 0.0)
    )
    engine.console.on_event(RegistrationChanged("bob-desk", 1, 0.0, company.id, "201"))

    response = client_of(alice_at_200).get("/api/v1/extensions/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "number": "200",
            "name": "Alice",
            "do_not_disturb": False,
            "state": "idle",
            "registered": False,
        },
        {
            "number": "201",
            "name": "Bob",
            "do_not_disturb": True,
            "state": "talking",
            "registered": True,
        },
        {
            "number": "210",
            "name": "Sales",
            "do_not_disturb": False,
            "state": "idle",
            "registered": False,
        },
    ]


# --- schema and docs -------------------------------------------------------------------------


def test_the_schema_documents_every_endpoint(alice: User) -> None:
    response = client_of(alice).get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Centralino API"
    assert {
        f"/api/v1/{path}"
        for path in [
            "calls/",
            "calls/{call_id}/answer/",
            "calls/{call_id}/reject/",
            "calls/{call_id}/hold/",
            "calls/{call_id}/resume/",
            "calls/{call_id}/hangup/",
            "calls/{call_id}/park/",
            "calls/{call_id}/transfer/",
            "parking/",
            "parking/{slot}/retrieve/",
            "dial/",
            "extensions/",
        ]
    } == set(schema["paths"])
    dial = schema["paths"]["/api/v1/dial/"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "503"} <= set(dial["responses"])
    assert "requestBody" in dial


def test_the_docs_load_nothing_from_outside(alice: User) -> None:
    client = client_of(alice)
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn" not in html.lower()
    assert "https://" not in html and "http://" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(asset.startswith("/static/") for asset in assets)
    bundle = next(asset for asset in assets if asset.endswith("swagger-ui-bundle.js"))
    assert client.get(bundle).status_code == 200  # served by the project itself
