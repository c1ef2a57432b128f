"""/healthz and the home page read each node's heartbeat (issue 9): 503 with the reason when
the engine of the node is down or silent, and nothing is asked of Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from pbx.heartbeat import STALE_SECONDS
from pbx.models import NodeHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def web_only(settings: object) -> None:
    settings.CENTRALINO_ENGINE = "off"  # type: ignore[attr-defined]
    settings.CENTRALINO_NODE = "node7"  # type: ignore[attr-defined]


def beat(node: str = "node7", *, age: float = 0.5, stopped: bool = False) -> None:
    seen = timezone.now() - timedelta(seconds=age)
    NodeHeartbeat.objects.update_or_create(
        node=node,
        defaults={
            "started_at": seen - timedelta(minutes=5),
            "seen_at": seen,
            "stopped_at": seen if stopped else None,
            "sip_port": 5060,
            "calls": 3,
        },
    )


def test_a_fresh_heartbeat_is_healthy(client: Client) -> None:
    beat()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["engine"]["running"] is True


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda: None, "no telephony engine has run for node node7"),
        (lambda: beat(age=STALE_SECONDS + 4), "no sign of life from the engine of node node7"),
        (lambda: beat(stopped=True), "the engine of node node7 stopped"),
        (lambda: beat("node8"), "no telephony engine has run for node node7"),
    ],
    ids=["never-ran", "silent", "stopped", "another-node-only"],
)
def test_an_engine_down_answers_503_with_the_reason(client: Client, setup, reason: str) -> None:  # type: ignore[no-untyped-def]
    setup()

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["engine"]["running"] is False
    assert reason in body["engine"]["error"]


def test_the_home_page_lists_every_node(client: Client) -> None:
    beat("node7")
    beat("node8", age=STALE_SECONDS + 10)

    page = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    nodes = page[page.index("Telephony nodes") :]

    assert nodes.index("node7") < nodes.index("Running") < nodes.index("node8")
    assert "Not responding" in nodes[nodes.index("node8") :]
