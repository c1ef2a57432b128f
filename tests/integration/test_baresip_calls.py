"""A2/A3/A5 with baresip: real softphones registered to the engine, audio checked by frequency."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.tone import band_energy_ratio, dominant_frequency, rms
from tests.integration.engine_fixture import Pbx
from tests.integration.peers.audio import assert_tone
from tests.integration.peers.baresip import Baresip, baresip_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]


@pytest.fixture
def phones(make_phone: Callable[..., Baresip]) -> dict[str, Baresip]:
    """Phones 201 (440 Hz), 202 (1000 Hz) and 203 (700 Hz), registered, answering by themselves."""
    tones = {"201": 440.0, "202": 1000.0, "203": 700.0}
    return {number: make_phone(number, tone_hz=hz) for number, hz in tones.items()}


def _heard(phone: Baresip, seconds: float = 1.0) -> np.ndarray:
    """The last `seconds` of what a phone heard, after its call ended.

    The last half second is left out: wait for the tone over `seconds` + 0.5 s before hanging up.
    """
    audio = phone.received_audio()
    return audio[-int(seconds * 8000) - 4000 : -4000] if len(audio) > 16000 else audio


def _connect(pbx: Pbx, caller: Baresip, callee: Baresip) -> None:
    """`caller` dials `callee`'s extension through the PBX; both see the call established."""
    caller.dial(f"sip:{callee.user}@{pbx.address}")
    callee.wait_established()
    caller.wait_established()


def test_two_phones_talk_through_the_pbx_in_both_directions(
    pbx: Pbx, phones: dict[str, Baresip]
) -> None:
    caller, callee = phones["201"], phones["202"]
    _connect(pbx, caller, callee)
    callee.wait_event("CALL_RTPESTAB")  # the caller's audio comes through
    caller.send_dtmf("5#")  # RFC 4733 events, relayed with the callee's payload type
    callee.wait_event("CALL_DTMF_START")
    callee.wait_event("CALL_DTMF_START")
    callee.wait_hearing(440)
    caller.wait_hearing(1000)
    caller.hangup()
    callee.wait_closed()
    caller.wait_closed()
    digits = [e.get("param") for e in callee.events if e.get("type") == "CALL_DTMF_START"]
    assert digits[:2] == ["5", "#"], callee.events
    assert_tone(_heard(callee), 440, tolerance=5)
    assert_tone(_heard(caller), 1000, tolerance=5)
    pbx.wait_record(disposition="answered")


def test_the_held_party_hears_music_and_then_the_other_party_again(
    pbx: Pbx, phones: dict[str, Baresip]
) -> None:
    caller, callee = phones["201"], phones["202"]
    _connect(pbx, caller, callee)
    callee.wait_event("CALL_RTPESTAB")
    caller.hold()
    held_at = callee.received_audio().size
    # From 0.8 s after the hold on, the callee hears music (300-600 Hz, not 440) for 1.4 s.
    hold_window = slice(held_at + int(0.8 * 8000), held_at + int(2.2 * 8000))
    callee.wait_received(hold_window.stop)
    caller.resume()
    callee.wait_hearing(440, since=callee.received_audio().size)
    caller.hangup()
    callee.wait_closed()
    audio = callee.received_audio()
    on_hold = audio[hold_window]
    assert rms(on_hold) > 300, "the held party heard silence"
    assert band_energy_ratio(on_hold, 8000, 300, 600) > 0.8
    assert abs(dominant_frequency(on_hold, 8000) - 440) > 10, "still hearing the caller, not music"
    assert_tone(_heard(callee), 440, tolerance=5)


def test_the_phone_that_held_is_sent_nothing_then_the_other_party_again_after_resuming(
    pbx: Pbx, phones: dict[str, Baresip]
) -> None:
    """Checked as the PBX sends it to the holding phone's address: baresip 1.0 records nothing
    it hears after its own hold and resume (its decoder's recording is not restarted), though
    it reports receiving."""
    watch = pbx.watch_next_caller()
    caller, callee = phones["201"], phones["202"]
    _connect(pbx, caller, callee)
    caller.wait_hearing(1000)
    caller.hold()
    pbx.wait_until(lambda e: _held(e, "201"), what="201 holding")
    held_at = pbx.evaluate(lambda e: e.clock.now())
    time.sleep(1.0)
    caller.resume()
    pbx.wait_until(lambda e: not _held(e, "201"), what="201 resumed")
    resumed_at = pbx.evaluate(lambda e: e.clock.now())
    time.sleep(1.5)

    during_hold = [p for at, p in watch.packets_after(held_at) if at < resumed_at]
    assert during_hold == [], "a phone that holds (sendonly) was sent RTP"
    after = [p for at, p in watch.packets_after(resumed_at)]
    assert len(after) >= 50, f"{len(after)} packets in 1.5 s after resuming"
    heard = np.concatenate([g711.decode_ulaw(p[12:]) for p in after[10:]])
    assert abs(dominant_frequency(heard, 8000) - 1000) < 10
    caller.hangup()
    callee.wait_closed()


def _held(engine: object, device: str) -> bool:
    calls = engine.calls.calls.values()  # type: ignore[attr-defined]
    legs = [leg for call in calls for leg in (call.a, call.b) if leg is not None]
    return any(leg.remote_hold for leg in legs if (leg.device or leg.label) == device)


def test_a_blind_transfer_from_the_phone_connects_the_other_party(
    pbx: Pbx, phones: dict[str, Baresip]
) -> None:
    caller, operator, target = phones["201"], phones["202"], phones["203"]
    _connect(pbx, caller, operator)
    operator.wait_event("CALL_RTPESTAB")
    transferred_at = caller.received_audio().size  # then music, then the target
    operator.transfer(f"sip:203@{pbx.address}")
    target.wait_established()
    operator.wait_closed()
    target.wait_hearing(440)
    caller.wait_hearing(700, since=transferred_at)
    target.hangup()  # the callee side ends this one: the caller gets the BYE
    caller.wait_closed()
    assert_tone(_heard(target), 440, tolerance=5)
    assert_tone(_heard(caller, 1.0), 700, tolerance=5)


def test_a_caller_without_an_offer_gets_ours_in_the_200_and_answers_in_the_ack(
    pbx: Pbx, phones: dict[str, Baresip]
) -> None:
    from tests.integration.peers.sipp import sipp_binary

    if sipp_binary() is None:
        pytest.skip("SIPp (sip-tester) is not installed")
    callee = phones["202"]
    result = pbx.dial(
        "202",
        "uac_late_offer",
        duration_ms=3000,
        play_audio=True,
    )
    assert result.ok, result.explain()
    callee.wait_closed()
    heard = callee.received_audio()
    assert rms(heard[4000:20000]) > 300, "the late-offer caller's audio did not arrive"


def test_rtp_from_a_stranger_is_ignored_and_the_call_keeps_its_audio(
    pbx: Pbx, phones: dict[str, Baresip]
) -> None:
    from pbx.media.g711 import encode_ulaw
    from pbx.media.rtp import RtpPacket
    from pbx.media.tone import sine

    caller, callee = phones["201"], phones["202"]
    _connect(pbx, caller, callee)
    callee.wait_event("CALL_RTPESTAB")  # the caller's own RTP got there first

    port = pbx.caller_media().port
    payload = encode_ulaw(sine(2000, 0.02, amplitude=0.8))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.1", 0))
        for n in range(100):
            packet = RtpPacket(
                payload_type=0, sequence_number=n, timestamp=160 * n, ssrc=0x5EED, payload=payload
            )
            stranger.sendto(bytes(packet), ("127.0.0.1", port))
            time.sleep(0.02)  # a stream, 50 packets a second, while the call goes on

    pbx.wait_caller_ignored(100)
    callee.wait_hearing(440, seconds=2.0)
    caller.hangup()
    callee.wait_closed()
    assert_tone(_heard(callee, 1.5), 440, tolerance=5)


def test_a_blind_transfer_to_nobody_fails_cleanly(pbx: Pbx, phones: dict[str, Baresip]) -> None:
    """The transferring phone hears why (NOTIFY 404); nobody is left in a silent call."""
    caller, operator = phones["201"], phones["202"]
    _connect(pbx, caller, operator)
    operator.wait_event("CALL_RTPESTAB")
    operator.transfer(f"sip:299@{pbx.address}")  # no such extension
    failed = operator.wait_event("TRANSFER_FAILED")
    assert "404" in str(failed.get("param"))
    # baresip 1.0 hangs up after a failed transfer; the caller then gets a BYE, not silence.
    caller.wait_closed()
    pbx.wait_no_calls(timeout=3)
    assert {r["disposition"] for r in pbx.wait_records(count=2)} == {"answered", "failed"}


def test_a_phone_that_vanishes_mid_call_is_hung_up_after_the_media_timeout(
    make_pbx: Callable[..., Pbx], make_baresip: Callable[..., Baresip]
) -> None:
    server = make_pbx(media_timeout=2, extensions=("201", "202"))
    caller = make_baresip("201", password=server.secrets["201"], registrar=server.address)
    callee = make_baresip("202", password=server.secrets["202"], registrar=server.address)
    caller.wait_registered()
    callee.wait_registered()
    _connect(server, caller, callee)
    callee.wait_event("CALL_RTPESTAB")  # the caller's RTP flowed before it stopped
    with caller.suspended():  # power cut: no RTP, no BYE
        callee.wait_closed(timeout=8)
    record = server.wait_record()
    assert (record["disposition"], record["reason"]) == ("answered", "media timeout")


def test_a_caller_who_hangs_up_while_its_transfer_rings_leaves_nothing_behind(
    pbx: Pbx, phones: dict[str, Baresip], make_phone: Callable[..., Baresip]
) -> None:
    caller, operator = phones["201"], phones["202"]
    target = make_phone("204", answermode="manual")
    _connect(pbx, caller, operator)
    operator.transfer(f"sip:204@{pbx.address}")
    target.wait_incoming()
    caller.hangup()  # bored of the music while the target rings
    target.wait_closed()  # its ringing is cancelled
    failed = operator.wait_event("TRANSFER_FAILED")  # the final NOTIFY says why
    assert "487" in str(failed.get("param"))
    target.close()

    # The transferring phone is not left alone in the call (it hangs up, or we do after 2 s).
    pbx.wait_no_calls(timeout=5)
