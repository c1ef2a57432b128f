"""A2 against SIPp: calls between extensions through the B2BUA, and how they end."""

from __future__ import annotations

import time

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.sipp import run_sipp, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


def _wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _only_record(pbx: Pbx) -> dict[str, object]:
    _wait_for(
        lambda: (
            len(pbx.recorder.records) == 1
            and next(iter(pbx.recorder.records.values()))["disposition"] != "in_progress"
        )
    )
    return next(iter(pbx.recorder.records.values()))


def test_an_extension_calls_another_by_short_number(pbx: Pbx) -> None:
    with sipp_uas("uas_answer") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial(
            "202",
            duration_ms=500,
        )
        assert result.ok, result.explain()
        assert callee.wait(10).ok
    record = _only_record(pbx)
    assert record["disposition"] == "answered"
    assert (record["caller"], record["callee"]) == ("201", "202")


def test_a_caller_who_hangs_up_while_it_rings_cancels_the_callee(pbx: Pbx) -> None:
    with sipp_uas("uas_ring") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial(
            "202",
            "uac_cancel",
            duration_ms=500,
        )
        assert result.ok, result.explain()
        assert callee.wait(10).ok, "the callee's phone did not see the CANCEL"
    assert _only_record(pbx)["disposition"] == "cancelled"


def test_a_busy_callee_gives_the_caller_486(pbx: Pbx) -> None:
    with sipp_uas("uas_busy") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial("202", "uac_expect_486")
        assert result.ok, result.explain()
    assert _only_record(pbx)["disposition"] == "busy"


def test_an_unknown_number_gets_404(pbx: Pbx) -> None:
    result = pbx.dial("299", "uac_expect_404")
    assert result.ok, result.explain()


def test_an_extension_with_no_registered_phone_gets_480(pbx: Pbx) -> None:
    result = pbx.dial("203", "uac_expect_480")
    assert result.ok, result.explain()


def test_a_phone_on_tcp_registers_and_calls_a_phone_on_udp(pbx: Pbx) -> None:
    registered = run_sipp(
        "register_auth",
        pbx.address,
        keys={"user": "201"},
        auth=("201", pbx.secrets["201"]),
        extra_args=["-t", "t1"],
    )
    assert registered.ok, registered.explain()
    assert pbx.registered("201")
    with sipp_uas("uas_answer") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial(
            "202",
            duration_ms=300,
            extra_args=["-t", "t1"],
        )
        assert result.ok, result.explain()
        assert "SIP/2.0/TCP" in result.messages
        assert callee.wait(10).ok


def test_a_phone_that_answers_as_the_caller_gives_up_is_acked_and_hung_up(pbx: Pbx) -> None:
    with sipp_uas("uas_answer_crossing_cancel") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial(
            "202",
            "uac_cancel",
            duration_ms=500,
        )
        assert result.ok, result.explain()
        answered = callee.wait(10)
        assert answered.ok, (
            "no ACK and BYE for the 200 that crossed the CANCEL\n" + answered.explain()
        )
    assert _only_record(pbx)["disposition"] == "cancelled"
