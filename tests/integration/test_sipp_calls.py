"""A2 against SIPp: calls between extensions through the B2BUA, and how they end."""

from __future__ import annotations

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.sipp import run_sipp, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


def test_an_extension_calls_another_by_short_number(pbx: Pbx) -> None:
    with sipp_uas("uas_answer") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial(
            "202",
            duration_ms=500,
        )
        assert result.ok, result.explain()
        assert callee.wait(10).ok
    record = pbx.wait_record(disposition="answered")
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
    pbx.wait_record(disposition="cancelled")


def test_a_busy_callee_gives_the_caller_486(pbx: Pbx) -> None:
    with sipp_uas("uas_busy") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial("202", "uac_expect_486")
        assert result.ok, result.explain()
    pbx.wait_record(disposition="busy")


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
    pbx.wait_record(disposition="cancelled")
