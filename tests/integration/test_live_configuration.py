"""The engine over the database: provisioning takes effect at once, call records persist."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from pbx.engine.runtime import Engine
from pbx.runtime import build_engine
from stats.models import CallRecord
from tests.integration.engine_fixture import EngineThread
from tests.integration.peers.ports import free_port_range
from tests.integration.peers.sipp import run_sipp, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


@pytest.fixture
def orm_engine() -> Iterator[tuple[Engine, EngineThread]]:
    rtp = random.randrange(40000, 48000, 200)
    engine = build_engine(sip_port=free_port_range(1), rtp_ports=(rtp, rtp + 199), node="test-node")
    thread = EngineThread()
    thread.run(engine.start())
    try:
        yield engine, thread
    finally:
        thread.run(engine.stop())
        engine.recorder.flush()  # type: ignore[attr-defined]
        thread.close()


def _register(engine: Engine, user: str, secret: str, scenario: str = "register_auth") -> bool:
    return run_sipp(
        scenario, f"127.0.0.1:{engine.sip_port}", keys={"user": user}, auth=(user, secret)
    ).ok


def test_an_extension_added_or_removed_by_the_cli_counts_from_the_next_request(
    orm_engine: tuple[Engine, EngineThread],
) -> None:
    engine, _ = orm_engine
    secret = "a-secret-for-201-xyz"
    assert _register(engine, "201", secret, "register_wrong_password")  # not provisioned yet
    call_command("extension", "add", "201", "--name", "Mario Rossi", "--secret", secret)
    assert _register(engine, "201", secret)
    call_command("extension", "remove", "201")
    assert _register(engine, "201", secret, "register_wrong_password")


def test_a_call_leaves_a_complete_record_in_the_database(
    orm_engine: tuple[Engine, EngineThread],
) -> None:
    engine, thread = orm_engine
    call_command(
        "extension", "add", "201", "--name", "Mario Rossi", "--secret", "secret-201-abcdefgh"
    )
    call_command(
        "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "secret-202-abcdefgh"
    )
    with sipp_uas("uas_answer") as callee:

        async def bind() -> None:
            from pbx.sip.uri import SipUri

            engine.registrar.bind(
                "202",
                SipUri.parse(f"sip:202@{callee.address}"),
                ("127.0.0.1", callee.port),
                "udp",
                engine.stack.now(),
            )

        thread.run(bind())
        result = run_sipp(
            "uac_call",
            f"127.0.0.1:{engine.sip_port}",
            keys={"service": "202", "user": "201"},
            auth=("201", "secret-201-abcdefgh"),
            duration_ms=300,
        )
        assert result.ok, result.explain()
    engine.recorder.flush()  # type: ignore[attr-defined]
    time.sleep(0.2)
    engine.recorder.flush()  # type: ignore[attr-defined]
    record = CallRecord.objects.get()
    assert (record.caller, record.callee, record.disposition) == ("201", "202", "answered")
    assert record.answered_at and record.ended_at and record.ended_at >= record.answered_at
    assert record.caller_name == "Mario Rossi"


def test_records_left_open_by_a_crash_are_closed_as_interrupted_on_the_next_start() -> None:
    CallRecord.objects.create(
        call_id="left-open", node="crashed-node", direction="internal", caller="201", callee="202"
    )
    engine = build_engine(
        sip_port=free_port_range(1), rtp_ports=(49000, 49099), node="crashed-node"
    )
    thread = EngineThread()
    try:
        thread.run(engine.start())
        thread.run(engine.stop())
    finally:
        thread.close()
    record = CallRecord.objects.get(call_id="left-open")
    assert record.disposition == "interrupted" and record.ended_at is not None


def test_phones_stay_reachable_across_an_engine_restart() -> None:
    call_command(
        "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "secret-202-abcdefgh"
    )
    port, phone_port = free_port_range(1), free_port_range(1)
    first = build_engine(sip_port=port, rtp_ports=(47000, 47199), node="restart-node")
    thread = EngineThread()
    try:
        thread.run(first.start())
        registered = run_sipp(
            "register_auth",
            f"127.0.0.1:{port}",
            keys={"user": "202"},
            auth=("202", "secret-202-abcdefgh"),
            local_port=phone_port,
        )
        assert registered.ok, registered.explain()
        thread.run(first.stop())
        first.registrar.store.flush()  # type: ignore[union-attr]
    finally:
        thread.close()

    second = build_engine(sip_port=port, rtp_ports=(47200, 47399), node="restart-node")
    thread = EngineThread()
    try:
        thread.run(second.start())

        async def contacts() -> list[tuple[str, tuple[str, int]]]:
            now = second.stack.now()
            return [(str(b.contact), b.source) for b in second.registrar.contacts("202", now)]

        assert thread.run(contacts()) == [
            (f"sip:202@127.0.0.1:{phone_port}", ("127.0.0.1", phone_port))
        ]
    finally:
        thread.run(second.stop())
        thread.close()


def test_do_not_disturb_set_by_the_cli_counts_from_the_next_call(
    orm_engine: tuple[Engine, EngineThread],
) -> None:
    engine, thread = orm_engine
    call_command(
        "extension", "add", "201", "--name", "Mario Rossi", "--secret", "secret-201-abcdefgh"
    )
    call_command(
        "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "secret-202-abcdefgh"
    )
    target = f"127.0.0.1:{engine.sip_port}"
    caller = {"keys": {"service": "202", "user": "201"}, "auth": ("201", "secret-201-abcdefgh")}
    with sipp_uas("uas_answer", calls=2) as phone:

        async def bind() -> None:
            from pbx.sip.uri import SipUri

            engine.registrar.bind(
                "202",
                SipUri.parse(f"sip:202@{phone.address}"),
                ("127.0.0.1", phone.port),
                "udp",
                engine.stack.now(),
            )

        thread.run(bind())
        assert run_sipp("uac_call", target, duration_ms=200, **caller).ok
        call_command("extension", "set", "202", "--dnd", "on")
        refused = run_sipp("uac_expect_480", target, **caller)
        assert refused.ok, refused.explain()
        call_command("extension", "set", "202", "--dnd", "off")
        assert run_sipp("uac_call", target, duration_ms=200, **caller).ok
