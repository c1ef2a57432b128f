"""The security page: the SIP sources each engine blocked, and unblocking one (pbx/security.py)."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from pbx import tasks, worker
from pbx.engine.auth import FailureTracker

pytestmark = pytest.mark.django_db

NOW = 1000.0


class FakeEngine:
    """What the security page reaches of an engine: its tracker, its clock and its node."""

    def __init__(self, node: str = "node1") -> None:
        self.auth = SimpleNamespace(tracker=FailureTracker(limit=2, window=60, block_for=300))
        self.stack = SimpleNamespace(now=lambda: NOW)
        self.console = SimpleNamespace(node=node)

    def block(self, ip: str, at: float) -> None:
        for _ in range(2):
            self.auth.tracker.failed(ip, at)


@pytest.fixture
def client() -> Client:
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def engine() -> Iterator[FakeEngine]:
    """This process's engine, on its own loop in another thread (as with Daphne)."""
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


def text_of(page: Any) -> str:
    return re.sub(r"\s+", " ", page.content.decode())


def test_the_page_lists_the_blocked_sources_with_their_time_left(
    client: Client, carol: User, engine: FakeEngine
) -> None:
    engine.block("192.0.2.7", at=NOW - 55)  # 300 s block: 245 s left
    client.force_login(carol)

    page = client.get("/manage/security/")

    assert page.status_code == 200
    text = text_of(page)
    assert "<code>192.0.2.7</code>" in text
    assert "4 min 05 s" in text
    assert 'aria-label="Unblock 192.0.2.7"' in text
    assert "2 failed authentications within 60 s block the address for 300 s" in text


def test_the_page_says_when_nothing_is_blocked(
    client: Client, carol: User, engine: FakeEngine
) -> None:
    client.force_login(carol)
    assert "No address is blocked." in text_of(client.get("/manage/security/"))


def test_unblocking_lets_the_source_in_and_logs_who_did_it(
    client: Client, carol: User, engine: FakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine.block("192.0.2.7", at=NOW - 10)
    engine.block("192.0.2.8", at=NOW - 10)
    client.force_login(carol)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="pbx.security"):
        response = client.post(
            "/manage/security/unblock/", {"node": "node1", "ip": "192.0.2.7"}, follow=True
        )

    assert response.redirect_chain == [("/manage/security/", 302)]
    assert "192.0.2.7 may register and call again." in text_of(response)
    assert [ip for ip, _, _ in engine.auth.tracker.blocked(NOW)] == ["192.0.2.8"]
    assert [r.getMessage() for r in caplog.records if r.name == "pbx.security"] == [
        "unblocked SIP source 192.0.2.7 by administrator carol"
    ]


def test_unblocking_a_source_no_longer_blocked_says_so(
    client: Client, carol: User, engine: FakeEngine
) -> None:
    client.force_login(carol)
    response = client.post(
        "/manage/security/unblock/", {"node": "node1", "ip": "192.0.2.7"}, follow=True
    )
    assert "192.0.2.7 was not blocked any more." in text_of(response)


@pytest.mark.parametrize(
    "body",
    [
        {"node": "node1", "ip": "192.0.2.7; rm -rf /"},
        {"node": "node1", "ip": ""},
        {"node": "paris", "ip": "192.0.2.7"},
    ],
)
def test_an_address_or_node_that_is_not_one_is_refused(
    client: Client, carol: User, engine: FakeEngine, body: dict[str, str]
) -> None:
    engine.block("192.0.2.7", at=NOW)
    client.force_login(carol)

    assert client.post("/manage/security/unblock/", body).status_code == 400
    assert engine.auth.tracker.is_blocked("192.0.2.7", NOW)


@pytest.mark.parametrize("who", ["alice", "bob"])
@pytest.mark.parametrize(
    ("method", "url"), [("get", "/manage/security/"), ("post", "/manage/security/unblock/")]
)
def test_only_administrators_see_or_unblock(
    client: Client,
    engine: FakeEngine,
    who: str,
    method: str,
    url: str,
    request: pytest.FixtureRequest,
) -> None:
    engine.block("192.0.2.7", at=NOW)
    client.force_login(request.getfixturevalue(who))

    response = getattr(client, method)(url, {"node": "node1", "ip": "192.0.2.7"})

    assert response.status_code == 403
    assert "<code>192.0.2.7</code>" not in text_of(response)
    assert engine.auth.tracker.is_blocked("192.0.2.7", NOW)


def test_without_an_engine_the_page_says_the_node_did_not_answer(
    client: Client, carol: User, settings: Any
) -> None:
    worker.detach()
    settings.REDIS_URL = ""
    client.force_login(carol)

    page = client.get("/manage/security/")

    assert page.status_code == 200
    assert "did not answer" in text_of(page)
    response = client.post("/manage/security/unblock/", {"node": "node1", "ip": "192.0.2.7"})
    assert response.status_code == 302


# --- several nodes: a task on each node's queue ---------------------------------------------


class Result:
    made: list[Result] = []

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.forgotten = False
        Result.made.append(self)

    def forget(self) -> None:
        self.forgotten = True

    def get(self, timeout: float) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def distributed(settings: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """No engine here; the nodes rome (which blocks 192.0.2.7) and milan (which is down)."""
    worker.detach()
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    settings.CENTRALINO_NODES = ["rome", "milan"]
    rome = FakeEngine("rome")
    rome.block("192.0.2.7", at=NOW - 100)
    sent: dict[str, Any] = {"unblocks": [], "results": Result.made}
    Result.made.clear()

    def blocked_sources(queue: str) -> Result:
        if queue == "telephony.milan":
            return Result(TimeoutError("milan did not answer"))

        async def ask() -> dict[str, Any]:
            from pbx.security import listing

            return await listing(rome)

        return Result(asyncio.run(ask()))

    def unblock_source(args: tuple[str, str], queue: str) -> Result:
        sent["unblocks"].append((queue, args))
        return Result(queue == "telephony.rome" and rome.auth.tracker.unblock(*args))

    monkeypatch.setattr(tasks.blocked_sources, "apply_async", blocked_sources)
    monkeypatch.setattr(tasks.unblock_source, "apply_async", unblock_source)
    return sent


def test_the_page_shows_every_node_and_the_one_that_did_not_answer(
    client: Client, carol: User, distributed: dict[str, Any]
) -> None:
    client.force_login(carol)

    page = client.get("/manage/security/")

    assert page.status_code == 200
    text = text_of(page)
    assert "Node rome" in text and "<code>192.0.2.7</code>" in text and "3 min 20 s" in text
    assert "Node milan did not answer" in text
    # Each answer is read once and not left in Redis until it expires, the silent node's too.
    assert len(distributed["results"]) == 2
    assert all(result.forgotten for result in distributed["results"])


def test_an_unblock_goes_to_the_queue_of_its_node(
    client: Client, carol: User, distributed: dict[str, Any]
) -> None:
    client.force_login(carol)

    client.post("/manage/security/unblock/", {"node": "rome", "ip": "192.0.2.7"})

    assert distributed["unblocks"] == [("telephony.rome", ("192.0.2.7", "carol"))]
    assert distributed["results"][0].forgotten
    assert "No address is blocked." in text_of(client.get("/manage/security/"))


def test_the_node_tasks_list_and_unblock_on_the_engine_of_their_worker(
    engine: FakeEngine,
) -> None:
    engine.block("192.0.2.7", at=NOW - 100)

    listed = tasks.blocked_sources.run()
    assert listed["sources"] == [{"ip": "192.0.2.7", "seconds_left": 200.0, "failures": 2}]
    with pytest.raises(ValueError):
        tasks.unblock_source.run("192.0.2.7\nblocked SIP source 10.0.0.1", "carol")
    assert tasks.unblock_source.run("192.0.2.7", "carol")
    assert not engine.auth.tracker.is_blocked("192.0.2.7", NOW)
