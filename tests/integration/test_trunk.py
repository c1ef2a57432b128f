"""A2 through a SIP trunk: SIPp plays the carrier on both sides."""

from __future__ import annotations

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.ports import free_port_range
from tests.integration.peers.sipp import run_sipp, sipp_binary, sipp_uas

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


def test_a_zero_prefixed_call_leaves_through_the_trunk_with_the_zero_stripped(pbx: Pbx) -> None:
    # The carrier challenges the INVITE (user alice, password secret), as real ones do.
    with sipp_uas("uas_auth_answer") as carrier:
        pbx.add_trunk(carrier.port, username="alice", password="secret", caller_id="0212345678")
        result = pbx.dial(
            "0612345678",
            duration_ms=300,
        )
        assert result.ok, result.explain()
        received = carrier.wait(10)
    assert received.ok, received.explain()
    assert "INVITE sip:612345678@127.0.0.1" in received.messages
    assert "INVITE sip:0612345678" not in received.messages
    assert "Authorization: Digest" in received.messages
    assert "<sip:0212345678@" in received.messages  # the company's number is presented


def test_a_call_from_the_trunk_to_a_company_number_reaches_its_extension(pbx: Pbx) -> None:
    carrier_port = free_port_range(1)
    pbx.add_trunk(carrier_port, dids={"0298765432": "202"})
    with sipp_uas("uas_answer") as phone:
        pbx.bind("202", phone.address)
        result = run_sipp(
            "uac_noauth_call",
            pbx.address,
            local_port=carrier_port,
            keys={"service": "0298765432", "user": "3471234567"},
            duration_ms=300,
        )
        assert result.ok, result.explain()
        answered = phone.wait(10)
    assert answered.ok, answered.explain()
    assert "From: <sip:3471234567@" in answered.messages
    record = pbx.wait_record()
    assert (record["direction"], record["caller"], record["callee"]) == (
        "inbound",
        "3471234567",
        "0298765432",
    )


def test_a_stranger_on_another_port_is_not_taken_for_the_carrier(pbx: Pbx) -> None:
    pbx.add_trunk(free_port_range(1), dids={"0298765432": "202"})
    result = run_sipp(
        "uac_noauth_call",
        pbx.address,
        keys={"service": "0298765432", "user": "3471234567"},
        recv_timeout_ms=2000,
    )
    assert not result.ok  # challenged with 401, which a carrier scenario does not expect
    assert "401" in result.messages or "401" in result.error_log


def test_the_trunk_registers_to_the_carrier_answering_its_challenge(pbx: Pbx) -> None:
    with sipp_uas("uas_registrar") as carrier:
        pbx.add_trunk(carrier.port, username="alice", password="secret", register=True)
        registered = carrier.wait(10)
    assert registered.ok, registered.explain()
    assert 'Authorization: Digest username="alice"' in registered.messages
    assert pbx.wait_trunk_states() == {"carrier": "registered"}


def test_a_trunk_with_the_wrong_password_is_reported_failed(pbx: Pbx) -> None:
    with sipp_uas("uas_registrar") as carrier:
        pbx.add_trunk(carrier.port, username="alice", password="wrong", register=True)
        carrier.wait(10)
    assert pbx.wait_trunk_states() == {"carrier": "failed"}


def test_an_offer_without_a_connection_line_is_refused_and_holds_nothing(pbx: Pbx) -> None:
    import socket

    carrier_port = free_port_range(1)
    pbx.add_trunk(carrier_port, dids={"0298765432": "202"})
    invite = (
        f"INVITE sip:0298765432@127.0.0.1:{pbx.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{carrier_port};branch=z9hG4bKnoc1\r\n"
        "From: <sip:3471234567@carrier>;tag=c1\r\nTo: <sip:0298765432@127.0.0.1>\r\n"
        "Call-ID: no-c-line\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:3471234567@127.0.0.1:{carrier_port}>\r\n"
        "Content-Type: application/sdp\r\nContent-Length: 65\r\n\r\n"
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as carrier:
        carrier.bind(("127.0.0.1", carrier_port))
        carrier.settimeout(3)
        carrier.sendto(invite.encode(), ("127.0.0.1", pbx.port))
        statuses = []
        while not statuses or statuses[-1] < 200:
            data, _ = carrier.recvfrom(65535)
            statuses.append(int(data[8:11]))
    assert statuses[-1] == 488
    left = pbx.leftovers()
    assert (left["rtp_ports"], left["calls"]) == (0, 0), left
