"""The RTP player, and the music-on-hold asset it usually plays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.player import Player
from pbx.media.rtp import RtpPacket
from pbx.media.tone import band_energy_ratio, dominant_frequency, rms, sine
from pbx.media.wav import load_as_pcm8k

MOH = Path(__file__).resolve().parents[2] / "pbx" / "media" / "assets" / "moh.wav"


def drain(player: Player, limit: int = 10_000) -> list[RtpPacket]:
    packets = []
    while (data := player.next_packet()) is not None and len(packets) < limit:
        packets.append(RtpPacket.parse(data))
    return packets


def test_packets_carry_consecutive_sequence_numbers_and_timestamps() -> None:
    player = Player(sine(440, 1.0), ssrc=77, sequence=65534, timestamp=2**32 - 160)
    packets = [RtpPacket.parse(player.next_packet()) for _ in range(4)]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets] == [2**32 - 160, 0, 160, 320]
    assert [p.marker for p in packets] == [True, False, False, False]
    assert {p.ssrc for p in packets} == {77}
    assert {p.payload_type for p in packets} == {0}
    assert {len(p.payload) for p in packets} == {160}


def test_a_non_looping_recording_ends_with_a_silence_padded_packet() -> None:
    samples = sine(440, 0.05)  # 400 samples: two full frames and half of a third
    packets = drain(Player(samples, codec="PCMA", loop=False))
    assert len(packets) == 3
    assert {p.payload_type for p in packets} == {8}
    audio = b"".join(p.payload for p in packets)
    assert audio[:400] == g711.encode_alaw(samples)
    assert audio[400:] == bytes([0xD5]) * 80


def test_a_finished_player_stays_finished_until_rewound() -> None:
    player = Player(sine(440, 0.02), loop=False)
    assert player.next_packet() is not None
    assert player.next_packet() is None and player.finished
    player.rewind()
    packet = RtpPacket.parse(player.next_packet())
    assert packet.marker and packet.sequence_number == 1 and packet.timestamp == 160


def test_a_looping_recording_wraps_round_seamlessly() -> None:
    samples = sine(500, 0.03)  # 240 samples: not a whole number of 20 ms frames
    player = Player(samples)
    audio = b"".join(RtpPacket.parse(player.next_packet()).payload for _ in range(6))
    assert audio == (g711.encode_ulaw(samples) * 4)[:960]


def test_a_recording_shorter_than_one_packet_still_loops() -> None:
    samples = sine(500, 0.005)  # 40 samples
    player = Player(samples, ptime=30)
    payloads = [RtpPacket.parse(player.next_packet()).payload for _ in range(3)]
    assert b"".join(payloads) == g711.encode_ulaw(samples) * 18
    assert {len(p) for p in payloads} == {240}


def test_decoded_packets_give_back_the_tone() -> None:
    player = Player(sine(523.25, 2.0, amplitude=0.3), codec="PCMA")
    payload = b"".join(RtpPacket.parse(player.next_packet()).payload for _ in range(50))
    assert dominant_frequency(g711.decode_alaw(payload)) == pytest.approx(523.25, abs=1)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="G722"):
        Player(sine(440, 0.1), codec="G722")
    with pytest.raises(ValueError, match="ptime"):
        Player(sine(440, 0.1), ptime=25)


def test_an_empty_recording_plays_silence() -> None:
    player = Player(np.zeros(0, dtype=np.int16))
    assert RtpPacket.parse(player.next_packet()).payload == b"\xff" * 160


def test_the_music_on_hold_asset_is_30_seconds_of_tune_between_300_and_600_hz() -> None:
    samples = load_as_pcm8k(MOH)
    assert MOH.stat().st_size < 600_000
    assert 29.0 <= samples.size / 8000 <= 31.0
    assert band_energy_ratio(samples, 8000, 300, 600) > 0.95
    assert 2000 < rms(samples) < 12000
    for second in range(0, 30, 3):
        window = samples[second * 8000 : (second + 1) * 8000]
        assert 300 <= dominant_frequency(window) <= 600, second
