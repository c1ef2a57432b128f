"""G.711 against a reference built from the Recommendation's interval tables."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pytest

from pbx.media import g711


def _ulaw_intervals() -> tuple[list[int], list[float]]:
    """Decision thresholds and decoder outputs of G.711 Table 2a, in 14-bit magnitude units.

    Segment s starts at 2**(s+5) - 33 with steps of 2**(s+1); code 0 is the interval [0, 1).
    """
    thresholds, outputs = [], [0.0]
    for segment in range(8):
        start, step = 2 ** (segment + 5) - 33, 2 ** (segment + 1)
        for interval in range(16):
            if segment == 0 and interval == 0:
                continue
            thresholds.append(start + interval * step)
            outputs.append(start + (interval + 0.5) * step)
    return thresholds, outputs


def _alaw_intervals() -> tuple[list[int], list[float]]:
    """Decision thresholds and decoder outputs of G.711 Table 1a, in 12-bit magnitude units.

    Segments 0 and 1 both step by 1 (0..16, 16..32); segment s >= 1 starts at 16 * 2**(s-1).
    """
    thresholds, outputs = [], []
    for segment in range(8):
        start = 0 if segment == 0 else 16 * 2 ** (segment - 1)
        step = 1 if segment == 0 else 2 ** (segment - 1)
        for interval in range(16):
            if segment or interval:
                thresholds.append(start + interval * step)
            outputs.append(start + (interval + 0.5) * step)
    return thresholds, outputs


def _reference_encode(x: int, shift: int, law: str) -> int:
    thresholds, _ = _ulaw_intervals() if law == "u" else _alaw_intervals()
    # G.191 keeps the most significant bits and folds negatives by one's complement.
    magnitude = x >> shift if x >= 0 else (-x - 1) >> shift
    number = bisect_right(thresholds, magnitude)
    sign = 0x80 if x >= 0 else 0
    return (sign | number) ^ (0x7F if law == "u" else 0x55)


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32)


def test_ulaw_encoding_matches_the_g711_tables_for_every_16_bit_sample() -> None:
    thresholds, _ = _ulaw_intervals()
    expected = bytes(_reference_encode(int(x), 2, "u") for x in ALL_SAMPLES)
    assert len(thresholds) == 127
    assert g711.encode_ulaw(ALL_SAMPLES.astype(np.int16)) == expected


def test_alaw_encoding_matches_the_g711_tables_for_every_16_bit_sample() -> None:
    thresholds, _ = _alaw_intervals()
    expected = bytes(_reference_encode(int(x), 4, "a") for x in ALL_SAMPLES)
    assert len(thresholds) == 127
    assert g711.encode_alaw(ALL_SAMPLES.astype(np.int16)) == expected


def test_ulaw_decoding_gives_the_interval_midpoints_for_every_code() -> None:
    _, outputs = _ulaw_intervals()
    for code in range(256):
        number = (code ^ 0x7F) & 0x7F
        sign = 1 if code & 0x80 else -1
        assert g711.decode_ulaw(bytes([code]))[0] == sign * outputs[number] * 4, hex(code)


def test_alaw_decoding_gives_the_interval_midpoints_for_every_code() -> None:
    _, outputs = _alaw_intervals()
    for code in range(256):
        number = (code ^ 0x55) & 0x7F
        sign = 1 if (code ^ 0x55) & 0x80 else -1
        assert g711.decode_alaw(bytes([code]))[0] == sign * outputs[number] * 16, hex(code)


def test_silence_and_full_scale_have_their_well_known_codes() -> None:
    samples = np.array([0, -1, 32767, -32768], dtype=np.int16)
    assert g711.encode_ulaw(samples) == bytes([0xFF, 0x7F, 0x80, 0x00])
    assert g711.encode_alaw(samples) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert g711.ULAW_SILENCE == 0xFF and g711.ALAW_SILENCE == 0xD5
    assert list(g711.decode_ulaw(bytes([0xFF, 0x7F, 0x80, 0x00]))) == [0, 0, 32124, -32124]
    assert list(g711.decode_alaw(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]


def test_decoding_then_encoding_gives_back_every_code() -> None:
    codes = bytes(range(256))
    # µ-law 0x7F (negative zero) decodes to 0, which encodes as positive zero.
    assert g711.encode_ulaw(g711.decode_ulaw(codes)) == codes.replace(b"\x7f", b"\xff")
    assert g711.encode_alaw(g711.decode_alaw(codes)) == codes


def test_encoding_accepts_little_endian_bytes_like_an_array() -> None:
    samples = np.array([0, 1000, -1000, 12345], dtype=np.int16)
    assert g711.encode_ulaw(samples.astype("<i2").tobytes()) == g711.encode_ulaw(samples)
    assert g711.encode_alaw(samples.astype("<i2").tobytes()) == g711.encode_alaw(samples)


def test_encoding_rejects_samples_that_are_not_16_bit() -> None:
    with pytest.raises(TypeError):
        g711.encode_ulaw(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError):
        g711.encode_alaw(b"\x00\x00\x00")


def test_transcoding_tables_agree_with_decoding_then_re_encoding() -> None:
    codes = bytes(range(256))
    assert g711.ulaw_to_alaw(codes) == g711.encode_alaw(g711.decode_ulaw(codes))
    assert g711.alaw_to_ulaw(codes) == g711.encode_ulaw(g711.decode_alaw(codes))
    assert g711.ulaw_to_alaw(bytes([0xFF])) == bytes([0xD5])
    # A-law has no zero: its silence code is +8, which µ-law can carry exactly.
    assert g711.alaw_to_ulaw(bytes([0xD5])) == bytes([0xFE])
    assert g711.decode_ulaw(bytes([0xFE]))[0] == 8


def test_transcoding_keeps_a_tone_within_a_quantisation_step() -> None:
    t = np.arange(800) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    via_alaw = g711.decode_ulaw(g711.alaw_to_ulaw(g711.encode_alaw(tone))).astype(np.int32)
    error = np.abs(via_alaw - tone)
    assert error.max() <= 512  # two 256-wide steps at the 8000 level: one per law
    assert np.sqrt(np.mean(error.astype(float) ** 2)) < 150


def test_codec_names_select_the_law() -> None:
    samples = np.array([100, -100], dtype=np.int16)
    assert g711.encode("PCMU", samples) == g711.encode_ulaw(samples)
    assert g711.encode("PCMA", samples) == g711.encode_alaw(samples)
    assert list(g711.decode("PCMA", g711.encode_alaw(samples))) == list(
        g711.decode_alaw(g711.encode_alaw(samples))
    )
    with pytest.raises(ValueError, match="G729"):
        g711.encode("G729", samples)
