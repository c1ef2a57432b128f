"""WAV reading, writing, format errors and 16 kHz -> 8 kHz resampling."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.tone import dominant_frequency, goertzel, rms, sine
from pbx.media.wav import (
    WavFormatError,
    encode_wav_pcm8k,
    load_as_pcm8k,
    parse_wav,
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


def test_resampling_removes_what_would_alias_and_keeps_the_voice_band() -> None:
    passband = resample_16k_to_8k(sine(3400, 1.0, rate=16000, amplitude=0.5))
    assert rms(passband[100:-100]) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.02)
    # 4.6 kHz would fold to 3.4 kHz: it must be at least 60 dB down.
    alias = resample_16k_to_8k(sine(4600, 1.0, rate=16000, amplitude=0.5))
    leaked = goertzel(alias[100:-100], 8000, 3400)
    assert 10 * np.log10(leaked / (0.5 * 32767) ** 2 * 2) < -60
