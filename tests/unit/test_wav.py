"""WAV reading, writing, format errors and resampling (libsoxr)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.tone import dominant_frequency, goertzel, rms, sine
from pbx.media.wav import (
    WavFormatError,
    encode_wav_pcm,
    encode_wav_pcm8k,
    load_as_pcm8k,
    parse_wav,
    resample,
    resample_16k_to_8k,
    write_pcm8k,
)


def make_wav(
    body: bytes,
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 8000,
    bits: int = 16,
    extra_chunks: bytes = b"",
    data_size: int | None = None,
) -> bytes:
    """A WAV file built by hand, so the reader is not only tested against its own writer."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(body) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    chunks += b"data" + struct.pack("<I", size) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_written_files_read_back_identically(tmp_path: Path) -> None:
    samples = sine(440, 0.25)
    write_pcm8k(tmp_path / "tone.wav", samples)
    assert np.array_equal(load_as_pcm8k(tmp_path / "tone.wav"), samples)
    assert np.array_equal(load_as_pcm8k(str(tmp_path / "tone.wav")), samples)


def test_the_written_header_is_standard_8_khz_mono_16_bit_pcm() -> None:
    data = encode_wav_pcm8k(np.array([1, -2, 3], dtype=np.int16))
    assert data == make_wav(struct.pack("<3h", 1, -2, 3))
    assert len(data) == 44 + 6


def test_writing_refuses_samples_that_are_not_int16() -> None:
    with pytest.raises(TypeError):
        encode_wav_pcm8k(np.zeros(3))


def test_g711_files_decode_to_linear_samples() -> None:
    tone = sine(700, 0.1, amplitude=0.3)
    for tag, encode, decode in [
        (7, g711.encode_ulaw, g711.decode_ulaw),
        (6, g711.encode_alaw, g711.decode_alaw),
    ]:
        audio = parse_wav(make_wav(encode(tone), tag=tag, bits=8))
        assert audio.rate == 8000
        assert np.array_equal(audio.samples, decode(encode(tone)))
    assert parse_wav(make_wav(g711.encode_ulaw(tone), tag=7, bits=8)).encoding == "G.711 µ-law"


def test_unknown_chunks_and_odd_padding_are_skipped() -> None:
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"
    body = struct.pack("<2h", 100, -100)
    assert list(load_as_pcm8k(make_wav(body, extra_chunks=odd_chunk))) == [100, -100]


def test_a_streaming_data_size_takes_the_rest_of_the_file() -> None:
    body = struct.pack("<3h", 5, 6, 7)
    assert list(load_as_pcm8k(make_wav(body, data_size=0xFFFFFFFF))) == [5, 6, 7]
    assert list(load_as_pcm8k(make_wav(body + b"\x01", data_size=0))) == [5, 6, 7]


def test_a_wave_extensible_header_is_read_through_its_sub_format() -> None:
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16)
    fmt += struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + bytes(14)
    body = struct.pack("<2h", 9, -9)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 4) + body
    data = b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
    assert list(load_as_pcm8k(data)) == [9, -9]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"channels": 2, "rate": 44100},
            "stereo 44.1 kHz 16-bit PCM: expected mono 8/16 kHz 16-bit PCM or 8 kHz G.711",
        ),
        ({"rate": 48000, "bits": 24}, "mono 48 kHz 24-bit PCM: expected"),
        ({"rate": 8000, "bits": 8}, "mono 8 kHz 8-bit PCM: expected"),
        ({"tag": 3, "bits": 32}, "mono 8 kHz 32-bit float: expected"),
        ({"tag": 7, "bits": 8, "rate": 16000}, "mono 16 kHz 8-bit G.711 µ-law: expected"),
        ({"tag": 0x55, "bits": 0}, "mono 8 kHz 0-bit MP3: expected"),
        ({"tag": 0x1234}, "format 0x1234"),
    ],
)
def test_other_formats_are_refused_with_what_was_found(kwargs: dict, message: str) -> None:
    with pytest.raises(WavFormatError, match=message):
        load_as_pcm8k(make_wav(b"\x00" * 64, **kwargs))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV file"),
        (b"ID3\x03" + bytes(100), "not a WAV file"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no valid 'fmt ' chunk"),
        (make_wav(b"")[:-8], "no 'data' chunk"),
    ],
)
def test_broken_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(WavFormatError, match=message):
        parse_wav(data)


def test_a_16_khz_file_is_resampled_to_8_khz_keeping_its_tone() -> None:
    tone = sine(1000, 1.0, rate=16000, amplitude=0.5)
    samples = load_as_pcm8k(make_wav(tone.astype("<i2").tobytes(), rate=16000))
    assert samples.size == 8000
    assert dominant_frequency(samples, 8000) == pytest.approx(1000, abs=0.5)
    assert rms(samples) == pytest.approx(rms(tone), rel=0.01)


def _level_db(samples: np.ndarray, rate: int, freq: float, amplitude: float) -> float:
    """Level of ``freq`` in ``samples`` relative to a sine of ``amplitude`` (full scale = 1)."""
    power = goertzel(samples[100:-100], rate, freq)
    return float(10 * np.log10(max(power, 1e-12) / ((amplitude * 32767) ** 2 / 2)))


def test_resampling_keeps_a_1_khz_tone_and_the_voice_band() -> None:
    for freq in (1000, 3400):
        out = resample_16k_to_8k(sine(freq, 1.0, rate=16000, amplitude=0.5))
        assert out.dtype == np.int16
        assert out.size == 8000
        assert dominant_frequency(out, 8000) == pytest.approx(freq, abs=0.5)
        assert _level_db(out, 8000, freq, 0.5) == pytest.approx(0, abs=0.2)


@pytest.mark.parametrize(("freq", "folds_to"), [(5000, 3000), (4600, 3400)])
def test_resampling_removes_what_would_alias(freq: int, folds_to: int) -> None:
    out = resample_16k_to_8k(sine(freq, 1.0, rate=16000, amplitude=0.5))
    assert out.size == 8000
    assert _level_db(out, 8000, folds_to, 0.5) < -60
    assert rms(out[100:-100]) < 0.5 * 32767 * 10 ** (-60 / 20)


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "count", "expected"),
    [(16000, 8000, 16000, 8000), (22050, 16000, 22050, 16000), (8000, 16000, 801, 1602)],
)
def test_general_resampling_gives_the_right_length_and_keeps_the_tone(
    rate_in: int, rate_out: int, count: int, expected: int
) -> None:
    tone = sine(1000, count / rate_in, rate=rate_in, amplitude=0.5)[:count]
    out = resample(tone, rate_in, rate_out)
    assert out.dtype == np.int16
    assert out.size == expected
    assert dominant_frequency(out, rate_out) == pytest.approx(1000, abs=2)
    assert rms(out[100:-100]) == pytest.approx(rms(tone[100:-100]), rel=0.02)


def test_resampling_edge_cases() -> None:
    assert resample(np.zeros(0, dtype=np.int16), 16000, 8000).size == 0
    same = np.array([1, -2, 3], dtype=np.int16)
    assert np.array_equal(resample(same, 8000, 8000), same)
    # A full-scale 500 Hz square wave overshoots when filtered: clipped, not wrapped around.
    square = np.where(np.arange(16000) // 16 % 2, -32768, 32767).astype(np.int16)
    clipped = resample(square, 16000, 8000)
    assert (clipped.max(), clipped.min()) == (32767, -32768)
    inside = np.arange(96, 7900)
    inside = inside[inside % 8 != 0]  # away from the edges of each half period
    assert np.array_equal(np.sign(clipped[inside]), np.sign(square[2 * inside]))
    with pytest.raises(ValueError, match="positive"):
        resample(same, 0, 8000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((4, 2), dtype=np.int16), 16000, 8000)


def test_a_16_khz_pcm_file_can_be_written() -> None:
    data = encode_wav_pcm(np.array([4, -4], dtype=np.int16), 16000)
    assert data == make_wav(struct.pack("<2h", 4, -4), rate=16000)
    assert parse_wav(data).rate == 16000
