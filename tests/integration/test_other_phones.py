"""A1/A2/A5 with independent SIP stacks: linphonec and pyVoIP through the engine."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from pbx.media.tone import sine
from tests.integration.engine_fixture import Pbx
from tests.integration.peers.audio import assert_tone
from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.linphone import Linphone, linphone_binaries
from tests.integration.peers.pyvoip_phone import PyVoIPPhone, pyvoip_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]
needs_linphone = pytest.mark.skipif(
    not linphone_binaries(), reason="linphonec (linphone-cli) is not installed"
)


@pytest.fixture
def baresip_203(pbx: Pbx) -> Iterator[Baresip]:
    with Baresip("203", password=pbx.secrets["203"], registrar=pbx.address, tone_hz=1000) as phone:
        phone.wait_registered()
        yield phone


@needs_linphone
def test_linphone_registers_and_calls_a_baresip_through_the_pbx(
    pbx: Pbx, baresip_203: Baresip
) -> None:
    with Linphone("201", password=pbx.secrets["201"], registrar=pbx.address, tone_hz=700) as lin:
        lin.wait_registered()
        assert pbx.registered("201")
        lin.dial(f"sip:203@{pbx.address}")
        baresip_203.wait_established()
        lin.wait_in_call()
        time.sleep(2.0)
        lin.terminate()
        baresip_203.wait_closed()
        time.sleep(0.3)
        assert_tone(baresip_203.received_audio(), 700)
        assert_tone(lin.received_audio(), 1000)


@needs_linphone
def test_an_attended_transfer_from_linphone_joins_the_two_other_parties(pbx: Pbx) -> None:
    with (
        Baresip("201", password=pbx.secrets["201"], registrar=pbx.address, tone_hz=440) as caller,
        Baresip("203", password=pbx.secrets["203"], registrar=pbx.address, tone_hz=1000) as target,
        Linphone(
            "202", password=pbx.secrets["202"], registrar=pbx.address, tone_hz=700
        ) as operator,
    ):
        caller.wait_registered()
        target.wait_registered()
        operator.wait_registered()
        caller.dial(f"sip:202@{pbx.address}")
        operator.wait_in_call()
        caller.wait_established()
        time.sleep(0.5)
        operator.generic("pause")  # hold the caller: linphonec dials only with no active call
        time.sleep(1.0)
        operator.dial(f"sip:203@{pbx.address}")
        target.wait_established()
        time.sleep(1.0)
        ids = re.findall(r"^\s*(\d+)\s*\|", operator.calls(), re.MULTILINE)
        assert len(ids) >= 2, operator.calls()
        operator.generic(f"transfer {ids[0]} --to-call {ids[1]}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and operator.in_call():
            time.sleep(0.2)
        caller.drain()
        time.sleep(2.5)
        caller.hangup()
        target.wait_closed()
        assert_tone(caller.received_audio()[-12000:-4000], 1000)
        assert_tone(target.received_audio()[-12000:-4000], 440)


@pytest.mark.skipif(not pyvoip_available(), reason="pyVoIP 1.6.8 is not installed")
def test_a_pyvoip_phone_makes_a_short_call(pbx: Pbx, baresip_203: Baresip) -> None:
    with PyVoIPPhone(pbx.address, "201", pbx.secrets["201"]) as phone:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not pbx.registered("201"):
            time.sleep(0.1)
        assert pbx.registered("201")
        phone.set_tone(sine(600, 1.0))
        phone.dial("203")
        baresip_203.wait_event("CALL_RTPESTAB")
        time.sleep(1.5)
        phone.hangup()
        baresip_203.wait_closed()
        assert_tone(baresip_203.received_audio(), 600)
        assert_tone(phone.received_audio(), 1000)


@needs_linphone
def test_linphone_registers_with_a_sha256_challenge_offered_first() -> None:
    from tests.integration.engine_fixture import start_pbx, stop_pbx

    server = start_pbx(digest_algorithms=("SHA-256", "MD5"))
    try:
        server.add_extension("201")
        with Linphone("201", password=server.secrets["201"], registrar=server.address) as lin:
            lin.wait_registered()
            assert server.registered("201")
            assert server.engine.auth.accepted["SHA-256"] >= 1, dict(server.engine.auth.accepted)
    finally:
        stop_pbx(server)


@needs_linphone
def test_a_transfer_to_a_consultation_call_that_still_rings_hands_the_ringing_over(
    pbx: Pbx,
) -> None:
    """Semi-attended: the operator transfers before the target answers; the target keeps
    ringing, now for the caller, and they talk when it answers."""
    with (
        Baresip("201", password=pbx.secrets["201"], registrar=pbx.address, tone_hz=440) as caller,
        Baresip(
            "203",
            password=pbx.secrets["203"],
            registrar=pbx.address,
            tone_hz=1000,
            answermode="manual",
        ) as target,
        Linphone("202", password=pbx.secrets["202"], registrar=pbx.address) as operator,
    ):
        for phone in (caller, target, operator):
            phone.wait_registered()
        caller.dial(f"sip:202@{pbx.address}")
        operator.wait_in_call()
        caller.wait_established()
        operator.generic("pause")
        time.sleep(1.0)
        operator.dial(f"sip:203@{pbx.address}")
        target.wait_incoming()
        time.sleep(0.5)
        ids = re.findall(r"^\s*(\d+)\s*\|", operator.calls(), re.MULTILINE)
        operator.generic(f"transfer {ids[0]} --to-call {ids[1]}")
        time.sleep(1.0)
        target.answer()
        target.wait_established()
        time.sleep(2.5)
        caller.hangup()
        target.wait_closed()
        assert_tone(caller.received_audio()[-12000:-4000], 1000)
        assert_tone(target.received_audio()[-12000:-4000], 440)
