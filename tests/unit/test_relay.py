"""The RTP relay core: latching, forwarding, transcoding, fan-out, taps, events, continuity."""

from __future__ import annotations

import io
import random

import pytest

from pbx.media import g711
from pbx.media.dtmf import DigitReceived, DtmfSender, TelephoneEvent
from pbx.media.player import Player
from pbx.media.recorder import WavRecorder
from pbx.media.relay import Feed, MediaLeg, Output, RelayCore, Transmit
from pbx.media.rtp import RtpPacket
from pbx.media.tone import dominant_frequency, sine

ALICE = ("192.0.2.10", 4000)  # as in her SDP
ALICE_NAT = ("203.0.113.7", 61000)  # where her packets really come from
BOB = ("192.0.2.20", 5000)
CAROL = ("192.0.2.30", 7000)
DAVE = ("192.0.2.40", 8000)
MALLORY = ("198.51.100.66", 6666)


class Phone:
    """Sends a G.711 tone as a phone would: 20 ms packets, one SSRC, marker on the first."""

    def __init__(self, codec: str = "PCMU", ssrc: int = 0xA11CE, sequence: int = 100) -> None:
        self.player = Player(sine(440, 2.0), codec=codec, ssrc=ssrc, sequence=sequence)

    def packet(self) -> bytes:
        data = self.player.next_packet()
        assert data is not None
        return data


class Tap:
    """Remembers what a leg's taps are given."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, str, float]] = []

    def receive_audio(self, packet: bytes, codec: str, now: float) -> None:
        self.packets.append((packet, codec, now))


def packet(pt: int = 0, sequence: int = 1, timestamp: int = 160, ssrc: int = 1, **kw) -> bytes:
    return bytes(
        RtpPacket(payload_type=pt, sequence_number=sequence, timestamp=timestamp, ssrc=ssrc, **kw)
    )


def transmits(result: Transmit | list[Output] | None) -> list[Transmit]:
    """The datagrams in what ``process`` returned, whatever its shape."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return [result]
    return [output for output in result if isinstance(output, tuple)]


def digits(result: Transmit | list[Output] | None) -> list[DigitReceived]:
    """The key presses in what ``process`` returned."""
    if isinstance(result, list):
        return [output for output in result if isinstance(output, DigitReceived)]
    return []


@pytest.fixture
def relay() -> RelayCore:
    return RelayCore()


@pytest.fixture
def legs(relay: RelayCore) -> tuple[MediaLeg, MediaLeg]:
    alice = MediaLeg(ALICE, "PCMU", event_pt=101, name="alice")
    bob = MediaLeg(BOB, "PCMU", event_pt=101, name="bob")
    relay.bridge(alice, bob)
    return alice, bob


def test_bridged_legs_with_the_same_codec_forward_packets_untouched(relay, legs) -> None:
    alice, bob = legs
    phone = Phone()
    for index in range(3):
        data = phone.packet()
        assert relay.process(alice, data, ALICE, now=index * 0.02) == (data, BOB, bob)
    data = packet(sequence=9, ssrc=0xB0B)
    assert relay.process(bob, data, BOB, now=0.1) == (data, ALICE, alice)


def test_a_leg_latches_the_first_source_when_it_is_not_the_sdp_address(relay, legs) -> None:
    alice, bob = legs
    assert relay.process(alice, packet(), ALICE_NAT, now=0) is not None
    assert alice.latched == ALICE_NAT
    # Bob's audio now goes where Alice really is, not where her SDP says.
    assert relay.process(bob, packet(), BOB, now=0)[1] == ALICE_NAT


def test_other_sources_are_ignored_and_counted_once_latched(relay, legs) -> None:
    alice, _ = legs
    relay.process(alice, packet(), ALICE_NAT, now=0)
    assert relay.process(alice, packet(), MALLORY, now=0.02) is None
    assert relay.process(alice, packet(), MALLORY, now=0.04) is None
    assert alice.ignored == 2 and alice.latched == ALICE_NAT


def test_the_sdp_address_takes_the_latch_back(relay, legs) -> None:
    alice, bob = legs
    relay.process(alice, packet(), MALLORY, now=0)  # got in first
    assert relay.process(alice, packet(), ALICE, now=0.02) is not None
    assert alice.latched == ALICE
    assert relay.process(alice, packet(), MALLORY, now=0.04) is None
    assert relay.process(bob, packet(), BOB, now=0.04)[1] == ALICE


def test_a_new_sdp_address_forgets_the_latch(relay, legs) -> None:
    alice, bob = legs
    relay.process(alice, packet(), ALICE_NAT, now=0)
    relay.reconfigure(alice, ("192.0.2.11", 4002), "PCMU", event_pt=101)
    assert alice.latched is None
    assert relay.process(bob, packet(), BOB, now=0.02)[1] == ("192.0.2.11", 4002)


def test_ulaw_is_transcoded_to_alaw_and_back_keeping_the_tone(relay) -> None:
    alice, bob = MediaLeg(ALICE, "PCMU"), MediaLeg(BOB, "PCMA")
    relay.bridge(alice, bob)
    phone = Phone("PCMU")
    received = [
        RtpPacket.parse(relay.process(alice, phone.packet(), ALICE, 0)[0]) for _ in range(50)
    ]
    assert {p.payload_type for p in received} == {8}
    assert received[0].marker and not received[1].marker
    audio = g711.decode_alaw(b"".join(p.payload for p in received))
    assert dominant_frequency(audio) == pytest.approx(440, abs=1)
    back = relay.process(bob, packet(pt=8, payload=b"\xd5" * 160), BOB, 0)[0]
    assert RtpPacket.parse(back).payload_type == 0
    assert RtpPacket.parse(back).payload == b"\xfe" * 160


def test_transcoding_keeps_csrcs_and_drops_padding(relay) -> None:
    alice, bob = MediaLeg(ALICE, "PCMA"), MediaLeg(BOB, "PCMU")
    relay.bridge(alice, bob)
    data = packet(pt=8, payload=b"\xd5\x55", csrcs=(7,), padding=2, marker=True)
    out = RtpPacket.parse(relay.process(alice, data, ALICE, 0)[0])
    assert out.payload_type == 0 and out.marker and out.csrcs == (7,) and out.padding == 0
    assert out.payload == g711.alaw_to_ulaw(b"\xd5\x55")


def test_transcoding_drops_packets_whose_header_lies(relay) -> None:
    alice, bob = MediaLeg(ALICE, "PCMA"), MediaLeg(BOB, "PCMU")
    relay.bridge(alice, bob)
    lying = bytearray(packet(pt=8, payload=b"\xd5" * 4))
    lying[0] |= 0x0F  # 15 CSRCs in a 16-byte packet
    assert relay.process(alice, bytes(lying), ALICE, 0) is None
    bad_padding = bytearray(packet(pt=8, payload=b"\xd5" * 4))
    bad_padding[0] |= 0x20
    bad_padding[-1] = 99
    assert relay.process(alice, bytes(bad_padding), ALICE, 0) is None
    assert alice.dropped == 2


def test_telephone_events_go_out_with_the_other_legs_payload_type(relay) -> None:
    alice = MediaLeg(ALICE, "PCMU", event_pt=101)
    bob = MediaLeg(BOB, "PCMU", event_pt=96)
    relay.bridge(alice, bob)
    results = [relay.process(alice, p, ALICE, 0) for p in DtmfSender(1, 101).packets("7", 800)]
    parsed = [RtpPacket.parse(data) for result in results for data, _, _ in transmits(result)]
    assert len(parsed) == len(results)  # every packet relayed, the three end packets too
    assert {p.payload_type for p in parsed} == {96}
    assert parsed[0].marker
    assert TelephoneEvent.parse(parsed[-1].payload) == TelephoneEvent(7, True, 10, 800)


def test_a_key_press_comes_out_once_with_how_long_it_was_held(relay, legs) -> None:
    alice, bob = legs
    packets = DtmfSender(1, 101).packets("7", timestamp=800, duration_ms=120)
    results = [relay.process(alice, p, ALICE, 0) for p in packets]
    # The first end packet reports it (alongside the relayed packet); the repeats do not.
    assert [digits(r) for r in results] == [[]] * 5 + [[DigitReceived("7", 120)]] + [[]] * 2
    assert transmits(results[5])[0][2] is bob


def test_telephone_events_are_dropped_for_a_leg_without_them_but_still_reported(relay) -> None:
    alice, bob = MediaLeg(ALICE, "PCMU", event_pt=101), MediaLeg(BOB, "PCMU")
    relay.bridge(alice, bob)
    results = [relay.process(alice, p, ALICE, 0) for p in DtmfSender(1, 101).packets("#", 0)]
    assert [transmits(r) for r in results] == [[]] * len(results)
    assert [d.digit for r in results for d in digits(r)] == ["#"]


def test_digits_are_reported_from_a_leg_that_feeds_nobody(relay) -> None:
    caller = MediaLeg(ALICE, "PCMA", event_pt=101)
    relay.play(caller, Player(sine(440, 1), codec="PCMA"))
    reported = []
    for digit, start in (("1", 0), ("2", 1600)):
        for data in DtmfSender(5, 101).packets(digit, start, duration_ms=60):
            reported += digits(relay.process(caller, data, ALICE, 0))
    assert reported == [DigitReceived("1", 60), DigitReceived("2", 60)]


def test_a_key_press_whose_end_was_lost_is_reported_when_the_next_one_starts(relay, legs) -> None:
    alice, _ = legs
    sender = DtmfSender(1, 101)
    first = sender.packets("3", timestamp=0, duration_ms=100)[:-3]  # 80 ms seen, no end
    second = sender.packets("4", timestamp=1600)
    reported = [d for p in first + second for d in digits(relay.process(alice, p, ALICE, 0))]
    assert reported == [DigitReceived("3", 80, ended=False), DigitReceived("4", 100)]


def test_telephone_events_go_to_each_listener_with_its_payload_type(relay) -> None:
    alice = MediaLeg(ALICE, "PCMU", event_pt=101)
    bob = MediaLeg(BOB, "PCMU", event_pt=96)
    carol = MediaLeg(CAROL, "PCMU")  # negotiated no telephone-event
    dave = MediaLeg(DAVE, "PCMA", event_pt=101)
    for listener in (bob, carol, dave):
        relay.connect(alice, listener)
    start = DtmfSender(1, 101).packets("1", 0)[0]
    sent = transmits(relay.process(alice, start, ALICE, 0))
    assert [(leg, RtpPacket.parse(data).payload_type) for data, _, leg in sent] == [
        (bob, 96),
        (dave, 101),
    ]


def test_rtcp_junk_and_unnegotiated_payload_types_are_dropped_and_counted(relay, legs) -> None:
    alice, _ = legs
    receiver_report = bytes.fromhex("81c9 0007 000a11ce") + bytes(24)
    assert relay.process(alice, receiver_report, ALICE, 0) is None
    assert relay.process(alice, b"\x80\x00\x00", ALICE, 0) is None
    assert relay.process(alice, b"\x00" * 20, ALICE, 0) is None
    assert relay.process(alice, packet(pt=13, payload=b"\x40"), ALICE, 0) is None
    assert (alice.rtcp, alice.dropped) == (1, 3)


def test_nothing_is_sent_to_a_leg_whose_address_is_unknown(relay) -> None:
    alice, bob = MediaLeg(ALICE), MediaLeg(None)
    relay.bridge(alice, bob)
    assert relay.process(alice, packet(), ALICE, 0) is None
    assert relay.process(bob, packet(), ("192.0.2.99", 9), 0) is not None  # bob latches
    assert relay.process(alice, packet(), ALICE, 0)[1] == ("192.0.2.99", 9)


def check_one_continuous_stream(packets: list[RtpPacket]) -> None:
    assert len({p.ssrc for p in packets}) == 1
    for before, after in zip(packets, packets[1:], strict=False):
        assert after.sequence_number == (before.sequence_number + 1) & 0xFFFF
        assert after.timestamp - before.timestamp >= 160


def test_hold_music_and_back_looks_like_one_stream_to_the_far_end(relay, legs) -> None:
    alice, bob = legs
    phone = Phone(ssrc=0xA11CE, sequence=65530)
    moh = Player(sine(500, 1.0), ssrc=0x0404, sequence=7, timestamp=123456)
    heard: list[tuple[float, RtpPacket]] = []
    now = 0.0

    def tick(result) -> None:
        assert result is not None
        heard.append((now, RtpPacket.parse(result[0])))

    for _ in range(5):
        tick(relay.process(alice, phone.packet(), ALICE, now))
        now += 0.02
    relay.play(bob, moh)
    assert bob.feed is Feed.PLAYER
    assert relay.process(alice, phone.packet(), ALICE, now) is None  # Alice is not heard
    for _ in range(5):
        tick(relay.player_packet(bob, now))
        now += 0.02
    relay.bridge(alice, bob)
    assert relay.player_packet(bob, now) is None
    for _ in range(5):
        tick(relay.process(alice, phone.packet(), ALICE, now))
        now += 0.02
    packets = [p for _, p in heard]
    check_one_continuous_stream(packets)
    assert packets[0].ssrc == 0xA11CE
    assert [p.marker for p in packets] == [True] + [False] * 4 + ([True] + [False] * 4) * 2
    # Timestamps advance with the clock, 160 per 20 ms, across both switches.
    for (t0, p0), (t1, p1) in zip(heard, heard[1:], strict=False):
        assert p1.timestamp - p0.timestamp == round((t1 - t0) * 8000)


def test_after_a_silence_the_timestamp_jumps_by_the_time_that_passed(relay, legs) -> None:
    alice, bob = legs
    phone = Phone()
    before = RtpPacket.parse(relay.process(alice, phone.packet(), ALICE, 10.0)[0])
    relay.silence(bob)
    assert bob.feed is Feed.SILENT and alice.listeners == ()
    assert relay.process(alice, phone.packet(), ALICE, 10.02) is None
    relay.connect(alice, bob)
    after = RtpPacket.parse(relay.process(alice, phone.packet(), ALICE, 13.0)[0])
    assert after.ssrc == before.ssrc and after.marker
    assert after.sequence_number == before.sequence_number + 1
    assert after.timestamp - before.timestamp == 3 * 8000


def test_a_source_that_restarts_its_stream_is_re_anchored(relay, legs) -> None:
    alice, bob = legs
    relay.play(bob, Player(sine(500, 1.0), ssrc=0x0404))
    first = RtpPacket.parse(relay.player_packet(bob, 0.0)[0])
    relay.bridge(alice, bob)
    heard = [first]
    phone = Phone(ssrc=1, sequence=10)
    for index in range(2):
        heard.append(
            RtpPacket.parse(relay.process(alice, phone.packet(), ALICE, 0.02 * (index + 1))[0])
        )
    phone = Phone(ssrc=2, sequence=50000)  # e.g. Alice's phone re-INVITEd and started afresh
    for index in range(2):
        heard.append(
            RtpPacket.parse(relay.process(alice, phone.packet(), ALICE, 0.06 + 0.02 * index)[0])
        )
    check_one_continuous_stream(heard)
    assert [p.marker for p in heard] == [True, True, False, True, False]


def test_a_player_must_speak_the_legs_codec(relay) -> None:
    leg = MediaLeg(ALICE, "PCMA")
    with pytest.raises(ValueError, match="PCMU"):
        relay.play(leg, Player(sine(440, 1), codec="PCMU"))


def test_a_second_listener_hears_the_leg_too_each_in_its_own_codec(relay, legs) -> None:
    alice, bob = legs
    carol = MediaLeg(CAROL, "PCMA", name="carol")
    relay.connect(alice, carol)  # e.g. a supervisor listens in
    assert bob.source is alice and carol.source is alice
    result = relay.process(alice, packet(payload=b"\xff" * 160), ALICE, 0)
    assert isinstance(result, list)
    sent = {leg.name: RtpPacket.parse(data) for data, _, leg in transmits(result)}
    assert sent["bob"].payload_type == 0 and sent["bob"].payload == b"\xff" * 160
    assert sent["carol"].payload_type == 8 and sent["carol"].payload == b"\xd5" * 160
    assert [addr for _, addr, _ in result] == [BOB, CAROL]
    with pytest.raises(ValueError):
        relay.connect(alice, alice)


def test_each_listener_gets_its_own_continuous_stream(relay, legs) -> None:
    alice, bob = legs
    carol = MediaLeg(CAROL, "PCMU", name="carol")
    relay.play(carol, Player(sine(500, 1.0), ssrc=0xCA201, sequence=40000))
    before = RtpPacket.parse(relay.player_packet(carol, 0.0)[0])
    relay.connect(alice, carol)
    phone = Phone(ssrc=0xA11CE, sequence=7)
    heard: dict[str, list[RtpPacket]] = {"bob": [], "carol": [before]}
    for index in range(3):
        for data, _, leg in transmits(relay.process(alice, phone.packet(), ALICE, 0.02 * index)):
            heard[leg.name].append(RtpPacket.parse(data))
    assert {p.ssrc for p in heard["bob"]} == {0xA11CE}  # bob's stream was never switched
    check_one_continuous_stream(heard["carol"])
    assert heard["carol"][0].ssrc == 0xCA201 and heard["carol"][1].marker


def test_a_destination_hears_one_source_so_connecting_it_elsewhere_leaves_the_first(
    relay, legs
) -> None:
    alice, bob = legs
    carol = MediaLeg(CAROL, "PCMU", name="carol")
    relay.connect(alice, carol)
    relay.connect(bob, carol)  # carol now hears bob instead of alice
    assert alice.listeners == (bob,) and set(bob.listeners) == {alice, carol}
    assert relay.process(alice, packet(), ALICE, 0) == (packet(), BOB, bob)


def test_bridging_two_legs_silences_whoever_else_heard_them_but_keeps_taps(relay, legs) -> None:
    alice, bob = legs
    carol, dave = MediaLeg(CAROL, name="carol"), MediaLeg(DAVE, name="dave")
    tap = Tap()
    relay.add_tap(alice, tap)
    relay.connect(alice, dave)
    relay.bridge(alice, carol)  # a transfer: bob and dave must not go on hearing alice
    assert alice.listeners == (carol,) and carol.listeners == (alice,)
    assert bob.feed is Feed.SILENT and dave.feed is Feed.SILENT
    assert transmits(relay.process(alice, packet(), ALICE, 0))[0][2] is carol
    assert len(tap.packets) == 1


def test_a_tap_sees_the_audio_a_leg_receives_whatever_the_leg_is_connected_to(relay) -> None:
    caller = MediaLeg(ALICE, "PCMA", event_pt=101)
    relay.play(caller, Player(sine(440, 1), codec="PCMA"))  # e.g. voicemail: the greeting
    tap = Tap()
    relay.add_tap(caller, tap)
    audio = packet(pt=8, payload=b"\xd5" * 160)
    assert relay.process(caller, audio, ALICE, 1.5) is None
    assert tap.packets == [(audio, "PCMA", 1.5)]


def test_a_tap_sees_neither_events_nor_rtcp_nor_other_sources(relay, legs) -> None:
    alice, _ = legs
    tap = Tap()
    relay.add_tap(alice, tap)
    relay.process(alice, packet(), ALICE, 0)
    relay.process(alice, DtmfSender(1, 101).packets("1", 0)[0], ALICE, 0)
    relay.process(alice, bytes.fromhex("81c9 0007 000a11ce") + bytes(24), ALICE, 0)
    relay.process(alice, packet(pt=13, payload=b"\x40"), ALICE, 0)
    relay.process(alice, packet(), MALLORY, 0)
    assert [p for p, _, _ in tap.packets] == [packet()]


def test_one_listener_and_a_tap_still_give_a_lone_transmit(relay, legs) -> None:
    alice, bob = legs
    tap = Tap()
    relay.add_tap(alice, tap)
    relay.add_tap(alice, tap)  # added once only
    assert relay.process(alice, packet(), ALICE, 0) == (packet(), BOB, bob)
    relay.remove_tap(alice, tap)
    relay.remove_tap(alice, tap)
    assert relay.process(alice, packet(), ALICE, 0.02) == (packet(), BOB, bob)
    assert len(tap.packets) == 1


def test_a_packet_that_cannot_be_transcoded_is_dropped_for_those_listeners_once(relay) -> None:
    alice = MediaLeg(ALICE, "PCMU")
    bob, carol, dave = MediaLeg(BOB, "PCMU"), MediaLeg(CAROL, "PCMA"), MediaLeg(DAVE, "PCMA")
    for listener in (bob, carol, dave):
        relay.connect(alice, listener)
    lying = bytearray(packet(payload=b"\xff" * 4))
    lying[0] |= 0x20
    lying[-1] = 99  # 99 bytes of padding in a 16-byte packet
    sent = relay.process(alice, bytes(lying), ALICE, 0)
    assert sent == (bytes(lying), BOB, bob)  # forwarded untouched, as a lone listener would be
    assert alice.dropped == 1


def test_changing_a_listeners_codec_switches_transcoding_on(relay, legs) -> None:
    alice, bob = legs
    relay.reconfigure(bob, BOB, "PCMA")
    out = relay.process(alice, packet(payload=b"\xff" * 160), ALICE, 0)
    assert RtpPacket.parse(out[0]).payload == b"\xd5" * 160


def test_changing_a_sources_codec_switches_transcoding_for_every_listener(relay, legs) -> None:
    alice, bob = legs
    carol = MediaLeg(CAROL, "PCMU", name="carol")
    relay.connect(alice, carol)
    relay.reconfigure(alice, ALICE, "PCMA")
    result = relay.process(alice, packet(pt=8, payload=b"\xd5" * 160), ALICE, 0)
    assert [RtpPacket.parse(data).payload for data, _, _ in transmits(result)] == [
        b"\xfe" * 160
    ] * 2


def test_removing_a_leg_silences_whoever_heard_it(relay, legs) -> None:
    alice, bob = legs
    carol = MediaLeg(CAROL, name="carol")
    relay.connect(alice, carol)
    tap = Tap()
    relay.add_tap(alice, tap)
    relay.remove(alice)
    assert bob.feed is Feed.SILENT and carol.feed is Feed.SILENT and alice.feed is Feed.SILENT
    assert alice.listeners == () and alice.taps == ()
    assert relay.process(alice, packet(), ALICE, 0) is None
    assert relay.process(bob, packet(), BOB, 0) is None
    assert tap.packets == []


def test_a_finished_announcement_sends_nothing_more(relay) -> None:
    leg = MediaLeg(ALICE)
    relay.play(leg, Player(sine(440, 0.02), loop=False))
    assert relay.player_packet(leg, 0) is not None
    assert relay.player_packet(leg, 0.02) is None
    assert relay.player_packet(MediaLeg(BOB), 0) is None


def test_random_datagrams_never_crash_the_relay(relay) -> None:
    rng = random.Random(3550)
    alice = MediaLeg(ALICE, "PCMU", event_pt=101)
    bob = MediaLeg(BOB, "PCMA", event_pt=96)
    relay.bridge(alice, bob)
    relay.play(bob, Player(sine(440, 1), codec="PCMA"))
    relay.connect(alice, bob)  # re-anchored: the rewriting path runs too
    relay.player_packet(bob, 0)
    relay.connect(alice, MediaLeg(CAROL, "PCMU", event_pt=101))  # the fan-out path too
    recorder = WavRecorder(io.BytesIO(), max_seconds=10)
    relay.add_tap(alice, recorder)
    for index in range(5000):
        first = rng.choice([0x80, 0x90, 0xA0, 0xB3, 0x8F, rng.randrange(256)])
        second = rng.choice([0, 101, 200, rng.randrange(256)])
        data = bytes([first, second]) + rng.randbytes(rng.randrange(30))
        relay.process(alice, data, ALICE, index * 0.02)
    assert alice.dropped > 0
