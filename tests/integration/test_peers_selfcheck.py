"""The peer harness checked against itself, without our engine: peers call each other."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.peers import (
    Baresip,
    Linphone,
    PyVoIPPhone,
    SippBackground,
    assert_tone,
    baresip_binary,
    linphone_binaries,
    pyvoip_available,
    run_sipp,
    sipp_binary,
)
from tests.integration.peers.audio import sine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

needs_sipp = pytest.mark.skipif(
    sipp_binary() is None, reason="SIPP MISSING: apt-get install sip-tester"
)
needs_baresip = pytest.mark.skipif(
    baresip_binary() is None, reason="BARESIP MISSING: apt-get install baresip-core"
)
needs_linphone = pytest.mark.skipif(
    not linphone_binaries(), reason="LINPHONEC MISSING: apt-get install linphone-cli"
)


@needs_baresip
def test_two_baresips_hear_each_others_tone(make_baresip: Callable[..., Baresip]) -> None:
    alice = make_baresip("alice", tone_hz=440)
    bob = make_baresip("bob", tone_hz=1000)

    alice.dial(bob.uri)
    alice.wait_established()
    bob.wait_established()
    alice.wait_hearing(1000, seconds=1.0)
    bob.wait_hearing(440, seconds=1.0)
    alice.hangup()
    bob.wait_closed()

    assert_tone(alice.received_audio(), 1000)
    assert_tone(bob.received_audio(), 440)


@needs_baresip
def test_baresip_sends_dtmf_and_holds(make_baresip: Callable[..., Baresip]) -> None:
    alice = make_baresip("alice")
    bob = make_baresip("bob")

    alice.dial(bob.uri)
    bob.wait_established()
    alice.send_dtmf("5#")
    assert bob.wait_event("CALL_DTMF_START")["param"] == "5"
    assert bob.wait_event("CALL_DTMF_START")["param"] == "#"
    alice.hold()
    bob.wait_event("CALL_REMOTE_SDP")
    alice.resume()
    alice.hangup()
    bob.wait_closed()


@needs_baresip
@needs_sipp
def test_baresip_manual_answer_and_sipp_cancel(make_baresip: Callable[..., Baresip]) -> None:
    carol = make_baresip("carol", answermode="manual")

    # baresip answers 404 unless the Request-URI user is its own.
    to_carol = {"service": "carol"}
    cancelled = run_sipp(
        "uac_cancel", f"127.0.0.1:{carol.sip_port}", keys=to_carol, duration_ms=300
    )
    assert cancelled.ok, cancelled.explain()
    carol.wait_event("CALL_INCOMING")
    carol.wait_closed()

    with SippBackground(
        "uac_noauth_call",
        f"127.0.0.1:{carol.sip_port}",
        keys=to_carol,
        duration_ms=1500,
        play_audio=True,
    ) as caller:
        carol.wait_event("CALL_INCOMING")
        carol.answer()
        carol.wait_established()
        result = caller.wait()
    assert result.ok, result.explain()
    heard = carol.received_audio()
    assert len(heard) > 8000, "baresip heard nothing from SIPp's g711a.pcap"


@needs_sipp
@pytest.mark.parametrize(
    ("uas", "uac", "auth"),
    [
        ("uas_answer", "uac_noauth_call", None),
        ("uas_answer", "uac_call", None),
        ("uas_auth_answer", "uac_call", ("alice", "secret")),
        ("uas_busy", "uac_expect_486", ("alice", "secret")),
        ("uas_registrar", "register_auth", ("alice", "secret")),
        ("uas_registrar", "register_wrong_password", ("alice", "wrong")),
        ("uas_registrar", "register_unknown_user", ("mallory", "secret")),
    ],
)
def test_sipp_scenarios_pass_against_sipp(uas: str, uac: str, auth: tuple[str, str] | None) -> None:
    with SippBackground(uas, timeout=15) as server:
        client = run_sipp(uac, server.address, auth=auth, duration_ms=300, timeout=10)
        served = server.wait(10)
    assert client.ok, client.explain()
    assert served.ok, served.explain()


@needs_sipp
def test_sipp_call_with_wrong_password_fails() -> None:
    with SippBackground("uas_auth_answer", timeout=10) as server:
        client = run_sipp("uac_call", server.address, auth=("alice", "wrong"), timeout=5)
        server.stop()
    assert not client.ok
    assert client.failed == 1


@needs_sipp
def test_sipp_fails_fast_when_nobody_answers() -> None:
    started = time.monotonic()
    result = run_sipp("uac_noauth_call", "127.0.0.1:9", timeout=10, recv_timeout_ms=1000)
    assert not result.ok
    assert time.monotonic() - started < 10


@needs_baresip
@needs_linphone
def test_linphone_calls_baresip(
    make_baresip: Callable[..., Baresip], make_linphone: Callable[..., Linphone]
) -> None:
    bob = make_baresip("bob", tone_hz=1000)
    lin = make_linphone("lin", tone_hz=700)
    lin.dial(bob.uri)
    bob.wait_established()
    lin.wait_in_call()
    bob.wait_hearing(700, seconds=1.0)
    lin.wait_hearing(1000, seconds=1.0)
    lin.terminate()
    bob.wait_closed()
    lin.wait_no_call()  # linphone closes its recording after the BYE
    assert_tone(bob.received_audio(), 700)
    assert_tone(lin.received_audio(), 1000)


@needs_baresip
@pytest.mark.skipif(not pyvoip_available(), reason="PYVOIP MISSING: pip install pyVoIP==1.6.8")
def test_pyvoip_calls_baresip(make_baresip: Callable[..., Baresip]) -> None:
    bob = make_baresip("bob", tone_hz=1000)
    with PyVoIPPhone(f"127.0.0.1:{bob.sip_port}", "py", register=False) as phone:
        phone.set_tone(sine(600, 1.0))
        phone.dial("bob")
        # pyVoIP 1.6.8 puts a fresh To-tag on its ACK, so baresip never sees the call
        # "established"; media flows anyway.
        bob.wait_event("CALL_RTPESTAB")
        bob.wait_hearing(600, seconds=1.0)
        phone.wait_hearing(1000, seconds=1.0)
        phone.hangup()
        bob.wait_closed()
        assert_tone(bob.received_audio(), 600)
        assert_tone(phone.received_audio(), 1000)
