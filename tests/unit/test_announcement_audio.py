"""Announcement uploads: exactly the two spec formats accepted, everything else refused clearly."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.announcement import (
    AnnouncementError,
    check_announcement,
    encode_pcm16k_wav,
    load_for_playback,
)
from pbx.media.tone import dominant_frequency, rms, sine

ACCEPTED = "expected a WAV file in 16-bit PCM mono 16 kHz, or G.711 8-bit µ-law / A-law mono 8 kHz"


def make_wav(
    body: bytes,
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 16000,
    bits: int = 16,
    data_size: int | None = None,
    extra_chunks: bytes = b"",
) -> bytes:
    """A WAV file built by hand, so the checker is not only tested against its own writer."""
    block = max(channels * bits // 8, 1)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(body) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    chunks += b"data" + struct.pack("<I", size) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


TONE_16K = sine(1000, 1.5, rate=16000, amplitude=0.5)
TONE_8K = sine(1000, 2.0, rate=8000, amplitude=0.5)
PCM_16K = make_wav(TONE_16K.astype("<i2").tobytes())


@pytest.mark.parametrize(
    ("data", "encoding", "duration"),
    [
        (PCM_16K, "pcm16k", 1.5),
        (encode_pcm16k_wav(TONE_16K), "pcm16k", 1.5),
        (make_wav(g711.encode_ulaw(TONE_8K), tag=7, rate=8000, bits=8), "ulaw8k", 2.0),
        (make_wav(g711.encode_alaw(TONE_8K), tag=6, rate=8000, bits=8), "alaw8k", 2.0),
        (
            make_wav(TONE_16K.astype("<i2").tobytes(), extra_chunks=b"LIST\x03\x00\x00\x00abc\x00"),
            "pcm16k",
            1.5,
        ),
    ],
    ids=["pcm16k", "own-writer", "ulaw", "alaw", "extra-chunk"],
)
def test_the_spec_formats_are_accepted(data: bytes, encoding: str, duration: float) -> None:
    checked = check_announcement(data)
    assert checked.encoding == encoding
    assert checked.duration == pytest.approx(duration)
    assert checked.samples_8k.dtype == np.int16
    assert checked.samples_8k.size == round(duration * 8000)
    assert dominant_frequency(checked.samples_8k, 8000) == pytest.approx(1000, abs=1)
    assert rms(checked.samples_8k) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=0.02)


SECOND = bytes(range(256)) * 125  # 32000 bytes of non-silent "audio"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (make_wav(SECOND * 2, channels=2, rate=44100), ["WAV file in stereo 44.1 kHz 16-bit PCM"]),
        (make_wav(SECOND, rate=8000), ["WAV file in mono 8 kHz 16-bit PCM"]),
        (make_wav(SECOND, rate=16000, bits=8), ["WAV file in mono 16 kHz 8-bit PCM"]),
        (make_wav(SECOND, tag=3, bits=32), ["WAV file in mono 16 kHz 32-bit float"]),
        (make_wav(SECOND, tag=7, bits=8, rate=16000), ["mono 16 kHz 8-bit G.711 µ-law"]),
        (make_wav(SECOND, tag=6, bits=8, rate=8000, channels=2), ["stereo 8 kHz 8-bit G.711"]),
        (make_wav(SECOND, tag=0x55, bits=0, rate=44100), ["44.1 kHz 0-bit MP3"]),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(200), ["an MP3 file"]),
        (b"\xff\xfb\x90\x64" + bytes(400), ["an MP3 file"]),
        (b"OggS\x00\x02" + bytes(100), ["an Ogg file"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(50), ["a PNG image"]),
        (b"fLaC\x00\x00\x00\x22" + bytes(50), ["a FLAC file"]),
        (b"\x00\x00\x00\x20ftypM4A " + bytes(50), ["an MP4/M4A file"]),
        (b"RIFF\x10\x00\x00\x00AVI LIST" + bytes(8), ["RIFF file of type 'AVI', not WAVE"]),
        ("Benvenuti, è il centralino.\nPremete 1.\n".encode(), ["a text file", "not a WAV"]),
        (bytes([0, 1, 2, 3, 200, 201, 202, 7]) * 10, ["not a WAV file"]),
        (PCM_16K[:-1000], ["truncated WAV file", "only 47000 of the 48000 bytes"]),
        (PCM_16K[:40], ["truncated WAV file", "no 'data' chunk"]),
        (PCM_16K[:30], ["broken 'fmt ' chunk"]),
        (make_wav(SECOND + b"\x01"), ["truncated WAV file", "mid-sample"]),
        (b"RIFF\x04\x00\x00\x00WAVE", ["no 'fmt ' chunk"]),
        (make_wav(b""), ["no audio", "empty"]),
        (make_wav(bytes(32000)), ["no audio", "1 s of silence"]),
        (make_wav(b"\xff" * 8000, tag=7, bits=8, rate=8000), ["no audio", "silence"]),
        (make_wav(SECOND * 601), ["too long: 10 min 1 s, at most 10 min"]),
        (b"", ["empty file"]),
    ],
    ids=[
        "stereo-44k",
        "pcm-8k",
        "pcm-16k-8bit",
        "float",
        "ulaw-16k",
        "alaw-stereo",
        "mp3-in-wav",
        "mp3-id3",
        "mp3-frame",
        "ogg",
        "png",
        "flac",
        "m4a",
        "avi",
        "text",
        "binary",
        "truncated-data",
        "truncated-header",
        "truncated-fmt",
        "odd-length",
        "no-fmt",
        "zero-length",
        "silence",
        "ulaw-silence",
        "too-long",
        "empty",
    ],
)
def test_everything_else_is_refused_saying_what_it_is(data: bytes, words: list[str]) -> None:
    with pytest.raises(AnnouncementError) as caught:
        check_announcement(data, max_bytes=50 * 1024 * 1024)
    message = str(caught.value)
    for word in words:
        assert word in message
    if "no audio" not in message and "too long" not in message:
        assert ACCEPTED in message


def test_a_huge_file_is_refused_before_it_is_parsed() -> None:
    huge = make_wav(bytes(11 * 1024 * 1024))
    with pytest.raises(AnnouncementError, match=r"^too large: 11\.0 MB, at most 10 MB$"):
        check_announcement(huge)
    with pytest.raises(AnnouncementError, match=r"^too large: 1\.5 MB, at most 1 MB$"):
        check_announcement(make_wav(bytes(1536 * 1024 - 44)), max_bytes=1024 * 1024)


def test_the_limits_can_be_set_by_the_caller() -> None:
    with pytest.raises(AnnouncementError, match="too long: 1.5 s, at most 1 s"):
        check_announcement(PCM_16K, max_seconds=1)
    assert check_announcement(PCM_16K, max_bytes=len(PCM_16K)).duration == 1.5


def test_the_error_is_a_value_error() -> None:
    assert issubclass(AnnouncementError, ValueError)


def test_generated_audio_is_stored_as_16_khz_wav_and_loaded_at_8_khz(tmp_path: Path) -> None:
    data = encode_pcm16k_wav(TONE_16K)
    assert data[:4] == b"RIFF" and len(data) == 44 + TONE_16K.size * 2
    assert struct.unpack_from("<HHIIHH", data, 20) == (1, 1, 16000, 32000, 2, 16)
    (tmp_path / "a.wav").write_bytes(data)
    samples = load_for_playback(tmp_path / "a.wav")
    assert samples.size == 12000
    assert np.array_equal(samples, check_announcement(data).samples_8k)
    ulaw = g711.encode_ulaw(TONE_8K)
    (tmp_path / "u.wav").write_bytes(make_wav(ulaw, tag=7, rate=8000, bits=8))
    assert np.array_equal(load_for_playback(str(tmp_path / "u.wav")), g711.decode_ulaw(ulaw))
    with pytest.raises(TypeError):
        encode_pcm16k_wav(np.zeros(4))


def test_playback_refuses_a_stored_file_in_another_format(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(make_wav(SECOND, rate=8000))
    with pytest.raises(AnnouncementError, match="mono 8 kHz 16-bit PCM"):
        load_for_playback(tmp_path / "bad.wav")
