"""Session timers (RFC 4028) and UPDATE with an offer (RFC 3311) against SIPp phones.

The SIP checks are in the scenarios (SIPp `ereg check_it`: a missing or different header
fails the call); what the engine does with the media is checked here, from its side.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from pbx.engine.call import CallState
from tests.integration.engine_fixture import Pbx
from tests.integration.peers.sipp import SippBackground, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


def _callee_hears_music(pbx: Pbx) -> bool | None:
    """Whether the callee of the answered call hears music on hold; None without one."""

    async def check() -> bool | None:
        answered = [
            call
            for call in pbx.engine.calls.calls.values()
            if call.state is CallState.ANSWERED and call.b is not None
        ]
        if not answered:
            return None
        return any(call.b.media.playing for call in answered if call.b is not None)

    return pbx.run(check())


@pytest.mark.parametrize(
    "scenario",
    [
        "uac_session_timer",  # it supports timers: it refreshes, by UPDATE
        "uac_session_timer_unsupported",  # it does not: the PBX is named the refresher
    ],
)
def test_a_phone_asking_for_session_timers_gets_them_with_the_right_refresher(
    pbx: Pbx, scenario: str
) -> None:
    with sipp_uas("uas_answer") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial("202", scenario, duration_ms=100)
        assert result.ok, result.explain()
        assert callee.wait(10).ok


def test_a_session_interval_under_90_seconds_is_refused_with_422_and_min_se(pbx: Pbx) -> None:
    result = pbx.dial("202", "uac_expect_422")
    assert result.ok, result.explain()
    assert "SIP/2.0 422 Session Interval Too Small" in result.messages


def test_an_update_offering_sendonly_holds_the_other_party_until_sendrecv_resumes(
    pbx: Pbx,
) -> None:
    with sipp_uas("uas_answer") as callee:
        pbx.bind("202", callee.address)
        with SippBackground(
            "uac_update_hold",
            pbx.address,
            keys={"service": "202", "user": "201"},
            auth=("201", pbx.secrets["201"]),
            duration_ms=1000,  # each of: on hold, talking again
            timeout=15,
            recv_timeout_ms=5000,
        ) as caller:
            try:
                _wait_for(lambda: _callee_hears_music(pbx) is True, "music on hold for 202")
                _wait_for(lambda: _callee_hears_music(pbx) is False, "202 hearing 201 again")
            except AssertionError as error:
                raise AssertionError(f"{error}\n{caller.stop().explain()}") from None
            result = caller.wait()
        assert result.ok, result.explain()
        assert callee.wait(10).ok
