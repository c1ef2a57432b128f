"""The engine over the database: provisioning takes effect at once, call records persist."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command

from pbx.models import Mailbox
from pbx.runtime import build_engine
from stats.models import CallRecord
from tests.integration.engine_fixture import RunningEngine, start_engine
from tests.integration.peers.ports import free_port_range
from tests.integration.peers.sipp import run_sipp, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


@pytest.fixture
def make_orm_engine() -> Iterator[Callable[..., RunningEngine]]:
    """Start engines on the database (build_engine's overrides); all stopped at the end."""
    started: list[RunningEngine] = []

    def make(**overrides: Any) -> RunningEngine:
        if "rtp_ports" not in overrides:
            rtp = random.randrange(40000, 48000, 200)
            overrides["rtp_ports"] = (rtp, rtp + 199)
        if "sip_port" not in overrides:
            overrides["sip_port"] = free_port_range(1)
        running = start_engine(lambda: build_engine(**overrides))
        started.append(running)
        return running

    try:
        yield make
    finally:
        for running in reversed(started):
            running.stop()


@pytest.fixture
def orm_engine(make_orm_engine: Callable[..., RunningEngine]) -> RunningEngine:
    """An engine on this test's database, node "test-node"."""
    return make_orm_engine(node="test-node")


def _register(
    engine: RunningEngine, user: str, secret: str, scenario: str = "register_auth"
) -> bool:
    return run_sipp(scenario, engine.address, keys={"user": user}, auth=(user, secret)).ok


def test_an_extension_added_or_removed_by_the_cli_counts_from_the_next_request(
    orm_engine: RunningEngine,
) -> None:
    engine = orm_engine
    secret = "a-secret-for-201-xyz"
    assert _register(engine, "201", secret, "register_wrong_password")  # not provisioned yet
    call_command("extension", "add", "201", "--name", "Mario Rossi", "--secret", secret)
    assert _register(engine, "201", secret)
    call_command("extension", "remove", "201")
    assert _register(engine, "201", secret, "register_wrong_password")


def test_a_call_leaves_a_complete_record_in_the_database(orm_engine: RunningEngine) -> None:
    engine = orm_engine
    call_command(
        "extension", "add", "201", "--name", "Mario Rossi", "--secret", "secret-201-abcdefgh"
    )
    call_command(
        "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "secret-202-abcdefgh"
    )
    with sipp_uas("uas_answer") as callee:
        engine.bind("202", callee.address)
        result = run_sipp(
            "uac_call",
            engine.address,
            keys={"service": "202", "user": "201"},
            auth=("201", "secret-201-abcdefgh"),
            duration_ms=300,
        )
        assert result.ok, result.explain()
    engine.wait_no_calls()  # the call is over: its record is closed
    engine.flush_records()
    record = CallRecord.objects.get()
    assert (record.caller, record.callee, record.disposition) == ("201", "202", "answered")
    assert record.answered_at and record.ended_at and record.ended_at >= record.answered_at
    assert record.caller_name == "Mario Rossi"


def test_records_left_open_by_a_crash_are_closed_as_interrupted_on_the_next_start(
    make_orm_engine: Callable[..., RunningEngine],
) -> None:
    CallRecord.objects.create(
        call_id="left-open", node="crashed-node", direction="internal", caller="201", callee="202"
    )
    make_orm_engine(rtp_ports=(49000, 49099), node="crashed-node").stop()
    record = CallRecord.objects.get(call_id="left-open")
    assert record.disposition == "interrupted" and record.ended_at is not None


def test_phones_stay_reachable_across_an_engine_restart(
    make_orm_engine: Callable[..., RunningEngine],
) -> None:
    call_command(
        "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "secret-202-abcdefgh"
    )
    port, phone_port = free_port_range(1), free_port_range(1)
    first = make_orm_engine(sip_port=port, rtp_ports=(47000, 47199), node="restart-node")
    registered = run_sipp(
        "register_auth",
        first.address,
        keys={"user": "202"},
        auth=("202", "secret-202-abcdefgh"),
        local_port=phone_port,
    )
    assert registered.ok, registered.explain()
    first.stop()  # its bindings written to the database

    second = make_orm_engine(sip_port=port, rtp_ports=(47200, 47399), node="restart-node")
    assert second.contacts("202") == [
        (f"sip:202@127.0.0.1:{phone_port}", ("127.0.0.1", phone_port))
    ]


def test_do_not_disturb_set_by_the_cli_counts_from_the_next_call(
    orm_engine: RunningEngine,
) -> None:
    engine = orm_engine
    call_command(
        "extension", "add", "201", "--name", "Mario Rossi", "--secret", "secret-201-abcdefgh"
    )
    call_command(
        "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "secret-202-abcdefgh"
    )
    # Without voicemail, do-not-disturb refuses with 480 (with it, the mailbox answers).
    Mailbox.objects.filter(extension__number="202").update(enabled=False)
    target = engine.address
    caller = {"keys": {"service": "202", "user": "201"}, "auth": ("201", "secret-201-abcdefgh")}
    with sipp_uas("uas_answer", calls=2) as phone:
        engine.bind("202", phone.address)
        assert run_sipp("uac_call", target, duration_ms=200, **caller).ok
        call_command("extension", "set", "202", "--dnd", "on")
        refused = run_sipp("uac_expect_480", target, **caller)
        assert refused.ok, refused.explain()
        call_command("extension", "set", "202", "--dnd", "off")
        assert run_sipp("uac_call", target, duration_ms=200, **caller).ok
