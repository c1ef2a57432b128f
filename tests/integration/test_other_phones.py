"""A1/A2/A5 with independent SIP stacks: linphonec and pyVoIP through the engine."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from pbx.media.tone import sine
from tests.integration.engine_fixture import Pbx
from tests.integration.peers.audio import assert_tone
from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.linphone import Linphone, linphone_binaries
from tests.integration.peers.pyvoip_phone import PyVoIPPhone, pyvoip_available
from tests.integration.peers.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]
needs_linphone = pytest.mark.skipif(
    not linphone_binaries(), reason="linphonec (linphone-cli) is not installed"
)


@pytest.fixture
def baresip_203(make_phone: Callable[..., Baresip]) -> Baresip:
    """Baresip on extension 203, registered, sending 1000 Hz and answering by itself."""
    return make_phone("203", tone_hz=1000)


def _consultation(operator: Linphone, *, calls: int, state: str) -> tuple[int, int]:
    """Wait until the operator has `calls` calls, the last one in `state`; (first, last) ids."""
    states = operator.wait_call_states(
        lambda states: len(states) == calls and states[max(states)] == state,
        f"with {calls} calls, the last one {state}",
    )
    return min(states), max(states)


@needs_linphone
def test_linphone_registers_and_calls_a_baresip_through_the_pbx(
    pbx: Pbx, baresip_203: Baresip, make_linphone: Callable[..., Linphone]
) -> None:
    lin = make_linphone("201", password=pbx.secrets["201"], registrar=pbx.address, tone_hz=700)
    lin.wait_registered()
    assert pbx.registered("201")
    lin.dial(f"sip:203@{pbx.address}")
    baresip_203.wait_established()
    lin.wait_in_call()
    baresip_203.wait_hearing(700, seconds=1.0)
    lin.wait_hearing(1000, seconds=1.0)
    lin.terminate()
    baresip_203.wait_closed()
    lin.wait_no_call()  # linphone closes its recording after the BYE
    assert_tone(baresip_203.received_audio(), 700)
    assert_tone(lin.received_audio(), 1000)


@needs_linphone
def test_an_attended_transfer_from_linphone_joins_the_two_other_parties(
    pbx: Pbx, make_phone: Callable[..., Baresip], make_linphone: Callable[..., Linphone]
) -> None:
    caller = make_phone("201", tone_hz=440)
    target = make_phone("203", tone_hz=1000)
    operator = make_linphone("202", password=pbx.secrets["202"], registrar=pbx.address, tone_hz=700)
    operator.wait_registered()
    caller.dial(f"sip:202@{pbx.address}")
    operator.wait_in_call()
    caller.wait_established()
    operator.wait_hearing(440, seconds=0.5)
    operator.generic("pause")  # hold the caller: linphonec dials only with no active call
    operator.wait_call_states(lambda states: list(states.values()) == ["Paused"], "holding")
    operator.dial(f"sip:203@{pbx.address}")
    target.wait_established()
    ids = _consultation(operator, calls=2, state="StreamsRunning")
    caller_at, target_at = caller.received_audio().size, target.received_audio().size
    operator.generic(f"transfer {ids[0]} --to-call {ids[1]}")
    caller.wait_hearing(1000, since=caller_at)
    target.wait_hearing(440, since=target_at)
    caller.hangup()
    target.wait_closed()
    assert_tone(caller.received_audio()[-12000:-4000], 1000)
    assert_tone(target.received_audio()[-12000:-4000], 440)


@pytest.mark.skipif(not pyvoip_available(), reason="pyVoIP 1.6.8 is not installed")
def test_a_pyvoip_phone_makes_a_short_call(pbx: Pbx, baresip_203: Baresip) -> None:
    with PyVoIPPhone(pbx.address, "201", pbx.secrets["201"]) as phone:
        pbx.wait_registered("201")
        phone.set_tone(sine(600, 1.0))
        phone.dial("203")
        baresip_203.wait_event("CALL_RTPESTAB")
        baresip_203.wait_hearing(600, seconds=1.0)
        phone.wait_hearing(1000, seconds=1.0)
        phone.hangup()
        baresip_203.wait_closed()
        assert_tone(baresip_203.received_audio(), 600)
        assert_tone(phone.received_audio(), 1000)


@needs_linphone
def test_linphone_registers_with_a_sha256_challenge_offered_first(
    make_pbx: Callable[..., Pbx], make_linphone: Callable[..., Linphone]
) -> None:
    server = make_pbx(digest_algorithms=("SHA-256", "MD5"), extensions=("201",))
    lin = make_linphone("201", password=server.secrets["201"], registrar=server.address)
    lin.wait_registered()
    assert server.registered("201")
    accepted = server.accepted_digests()
    assert accepted.get("SHA-256", 0) >= 1, accepted


@needs_linphone
def test_a_transfer_to_a_consultation_call_that_still_rings_hands_the_ringing_over(
    pbx: Pbx, make_phone: Callable[..., Baresip], make_linphone: Callable[..., Linphone]
) -> None:
    """Semi-attended: the operator transfers before the target answers; the target keeps
    ringing, now for the caller, and they talk when it answers."""
    caller = make_phone("201", tone_hz=440)
    target = make_phone("203", tone_hz=1000, answermode="manual")
    operator = make_linphone("202", password=pbx.secrets["202"], registrar=pbx.address)
    operator.wait_registered()
    caller.dial(f"sip:202@{pbx.address}")
    operator.wait_in_call()
    caller.wait_established()
    operator.generic("pause")
    operator.wait_call_states(lambda states: list(states.values()) == ["Paused"], "holding")
    operator.dial(f"sip:203@{pbx.address}")
    target.wait_incoming()
    ids = _consultation(operator, calls=2, state="OutgoingRinging")
    operator.generic(f"transfer {ids[0]} --to-call {ids[1]}")
    # The engine takes the ringing over: the operator's own INVITE ends with 487.
    operator.wait_call_states(lambda states: ids[1] not in states, "without its consultation")
    caller_at = caller.received_audio().size  # music so far
    target.answer()
    target.wait_established()
    caller.wait_hearing(1000, since=caller_at)
    target.wait_hearing(440)
    caller.hangup()
    target.wait_closed()
    assert_tone(caller.received_audio()[-12000:-4000], 1000)
    assert_tone(target.received_audio()[-12000:-4000], 440)


@needs_linphone
def test_linphones_buddy_list_shows_an_extension_on_the_phone_and_back(
    pbx: Pbx, make_phone: Callable[..., Baresip]
) -> None:
    """Presence (RFC 3856) read by a real softphone: Linphone on 203 has 202 as a friend."""
    caller, watched = make_phone("201"), make_phone("202")
    with Linphone("203", password=pbx.secrets["203"], registrar=pbx.address) as lin:
        lin.wait_registered()
        lin.generic(f'friend add "Bob" sip:202@{pbx.address}')

        def shown() -> list[str]:
            return re.findall(r"\] has presence \[([^\]]*)\]", lin.log())

        wait_for(lambda: shown() == ["open"], 10, what="Bob open in the buddy list", seen=shown)
        caller.dial(f"sip:202@{pbx.address}")
        watched.wait_established()
        wait_for(lambda: "on-the-phone" in shown(), 10, what="Bob on the phone", seen=shown)
        caller.hangup()
        watched.wait_closed()
        wait_for(lambda: shown()[-1:] == ["open"], 10, what="Bob open again", seen=shown)
        seen = shown()
    assert [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]] == [
        "open",
        "on-the-phone",
        "open",
    ]
