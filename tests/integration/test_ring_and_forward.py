"""A4 with SIPp phones: ring modes, do-not-disturb and the three kinds of forwarding."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.sipp import SippResult, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


@pytest.fixture
def server(make_pbx: Callable[..., Pbx]) -> Pbx:
    """An engine with only the caller's extension, 201: each test provisions the rest."""
    return make_pbx(extensions=("201",))


def _call(pbx: Pbx, number: str, scenario: str = "uac_call", **options: Any) -> SippResult:
    return pbx.dial(number, scenario, duration_ms=300, **options)


def test_ring_all_answers_on_one_device_and_cancels_the_other(server: Pbx) -> None:
    server.add_extension("202", devices=("202-desk", "202-app"))
    with sipp_uas("uas_ring") as desk, sipp_uas("uas_answer") as app:
        server.bind("202-desk", desk.address)
        server.bind("202-app", app.address)
        result = _call(server, "202")
        assert result.ok, result.explain()
        assert app.wait(10).ok
        assert desk.wait(10).ok, "the desk phone that kept ringing got no CANCEL"
    assert server.wait_record()["answered_by"] == "202-app"
    left = server.leftovers()
    assert (left["legs"], left["rtp_ports"]) == (0, 0), left  # the cancelled device: nothing


def test_ring_in_order_moves_to_the_next_device_when_the_first_does_not_answer(server: Pbx) -> None:
    server.add_extension(
        "202", devices=("202-desk", "202-app"), ring_mode="in_order", no_answer_timeout=10
    )
    with sipp_uas("uas_ring") as desk, sipp_uas("uas_answer") as app:
        server.bind("202-desk", desk.address)
        server.bind("202-app", app.address)
        started = time.monotonic()
        result = _call(server, "202", timeout=20, recv_timeout_ms=12000)
        assert result.ok, result.explain()
        assert desk.wait(10).ok
        assert app.wait(10).ok
        assert time.monotonic() - started >= 4.5  # the desk phone had its 5 s first
    assert server.wait_record()["answered_by"] == "202-app"


def test_do_not_disturb_sends_the_caller_to_the_voicemail_hook(server: Pbx) -> None:
    server.add_extension("202", do_not_disturb=True)
    with sipp_uas("uas_answer") as phone:
        server.bind("202", phone.address)
        result = _call(server, "202", scenario="uac_expect_480")
        assert result.ok, result.explain()
    server.wait_record(disposition="no_answer")


def test_forward_always_rings_the_target_instead(server: Pbx) -> None:
    server.add_extension("202", forward_always="203")
    server.add_extension("203")
    with sipp_uas("uas_answer") as target:
        server.bind("203", target.address)
        result = _call(server, "202")
        assert result.ok, result.explain()
        assert target.wait(10).ok


def test_forward_on_busy_rings_the_target(server: Pbx) -> None:
    server.add_extension("202", forward_busy="203")
    server.add_extension("203")
    with sipp_uas("uas_busy") as busy, sipp_uas("uas_answer") as target:
        server.bind("202", busy.address)
        server.bind("203", target.address)
        result = _call(server, "202")
        assert result.ok, result.explain()
        assert target.wait(10).ok


def test_forward_on_no_answer_cancels_the_phone_and_rings_the_target(server: Pbx) -> None:
    server.add_extension("202", forward_no_answer="203", no_answer_timeout=2)
    server.add_extension("203")
    with sipp_uas("uas_ring") as ringing, sipp_uas("uas_answer") as target:
        server.bind("202", ringing.address)
        server.bind("203", target.address)
        result = _call(server, "202", timeout=15)
        assert result.ok, result.explain()
        assert ringing.wait(10).ok
        assert target.wait(10).ok


def test_forwarding_to_an_outside_number_leaves_through_the_trunk(server: Pbx) -> None:
    server.add_extension("202", forward_always="0612345678")
    with sipp_uas("uas_answer") as carrier:
        server.add_trunk(carrier.port)
        result = _call(server, "202")
        assert result.ok, result.explain()
        received = carrier.wait(10)
    assert "INVITE sip:612345678@" in received.messages


def test_ring_in_order_moves_on_at_once_when_a_device_refuses(server: Pbx) -> None:
    server.add_extension(
        "202", devices=("202-desk", "202-app"), ring_mode="in_order", no_answer_timeout=30
    )
    with sipp_uas("uas_busy") as desk, sipp_uas("uas_answer") as app:
        server.bind("202-desk", desk.address)
        server.bind("202-app", app.address)
        started = time.monotonic()
        result = _call(server, "202")
        assert result.ok, result.explain()
        assert app.wait(10).ok
        assert time.monotonic() - started < 5  # not the desk phone's 15 s share
