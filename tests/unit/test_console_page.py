"""The console's page: who reaches it, what it carries, and today's counters."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from pbx.models import Company, Extension, Membership
from stats.models import CallRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(alice: User, company: Company) -> Extension:
    """Alice at extension 200, with two colleagues."""
    company.operator_number = "9"
    company.save()
    operator = Extension.objects.create(company=company, number="200", display_name="Centralino")
    Extension.objects.create(company=company, number="201", display_name="Mario Rossi")
    Extension.objects.create(
        company=company, number="202", display_name="Giulia Bianchi", do_not_disturb=True
    )
    Membership.objects.filter(user=alice).update(extension=operator)
    return operator


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_config(response) -> dict:  # type: ignore[no-untyped-def]
    html = response.content.decode()
    start = html.index('<script id="console-config" type="application/json">') + 52
    return json.loads(html[start : html.index("</script>", start)])


def test_the_operator_gets_the_board_with_her_extension_and_the_monitored_ones(
    alice: User, desk: Extension
) -> None:
    response = logged_in(alice).get("/console/")
    assert response.status_code == 200
    config = page_config(response)
    assert config["extension"] == "200" and config["can_command"]
    assert [(e["number"], e["dnd"]) for e in config["extensions"]] == [
        ("200", False),
        ("201", False),
        ("202", True),
    ]
    assert config["hold_alert_seconds"] == 120
    html = response.content.decode()
    assert "js/console.js" in html and "vendor/htmx/htmx.min.js" in html
    assert "https://" not in html.split("<body")[0]  # every asset is served by the project


def test_the_monitored_extensions_stop_at_the_setting(
    alice: User, desk: Extension, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.CENTRALINO_CONSOLE_MONITORED = 2
    assert len(page_config(logged_in(alice).get("/console/"))["extensions"]) == 2


def test_the_board_speaks_italian(alice: User, desk: Extension) -> None:
    client = logged_in(alice)
    response = client.get("/console/", HTTP_ACCEPT_LANGUAGE="it")
    html = response.content.decode()
    assert "In ingresso" in html and "Parcheggio" in html and "Cornetta" in html
    assert page_config(response)["labels"]["actions"]["answer"] == "Rispondi"


def test_an_end_user_may_not_open_the_console(bob: User, desk: Extension) -> None:
    assert logged_in(bob).get("/console/").status_code == 403
    assert logged_in(bob).get("/console/counters/").status_code == 403


def test_without_a_login_the_console_sends_to_the_login_page(desk: Extension) -> None:
    response = Client().get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_counters_count_todays_queue_calls_and_the_operators_own(
    alice: User, company: Company, desk: Extension
) -> None:
    now = timezone.now()

    def record(call_id: str, caller: str, callee: str, disposition: str, days: int = 0) -> None:
        CallRecord.objects.create(
            call_id=call_id,
            company=company,
            direction="internal",
            caller=caller,
            callee=callee,
            disposition=disposition,
            started_at=now - timezone.timedelta(days=days),
        )

    record("a", "201", "9", "answered")
    record("b", "202", "9", "cancelled")
    record("c", "203", "9", "no_answer", days=2)  # not today
    record("d", "200", "201", "answered")
    record("e", "201", "9", "in_progress")
    html = logged_in(alice).get("/console/counters/").content.decode()
    numbers = [part.split("</strong>")[0] for part in html.split("<strong>")[1:]]
    assert numbers == ["1", "2", "1"]  # missed, incoming (ended), outgoing


def test_an_operator_switches_monitoring_off_for_herself_only(
    alice: User, carol: User, desk: Extension
) -> None:
    client = logged_in(alice)
    assert client.post("/console/monitoring/201/", {"monitored": "off"}).status_code == 204
    monitored = {
        e["number"]: e["monitored"] for e in page_config(client.get("/console/"))["extensions"]
    }
    assert monitored == {"200": True, "201": False, "202": True}
    others = page_config(logged_in(carol).get("/console/"))["extensions"]
    assert all(e["monitored"] for e in others)  # carol's own view is unchanged
    assert client.post("/console/monitoring/201/", {"monitored": "on"}).status_code == 204
    assert all(e["monitored"] for e in page_config(client.get("/console/"))["extensions"])


def test_monitoring_refuses_bad_requests_and_other_roles(
    alice: User, bob: User, company: Company, desk: Extension
) -> None:
    client = logged_in(alice)
    assert client.post("/console/monitoring/201/", {"monitored": "maybe"}).status_code == 400
    assert client.post("/console/monitoring/299/", {"monitored": "off"}).status_code == 404
    assert client.get("/console/monitoring/201/").status_code == 405
    other = Company.objects.create(name="Other S.r.l.")
    Extension.objects.create(company=other, number="301", display_name="Elsewhere")
    assert client.post("/console/monitoring/301/", {"monitored": "off"}).status_code == 404
    assert logged_in(bob).post("/console/monitoring/201/", {"monitored": "off"}).status_code == 403
