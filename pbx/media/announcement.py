"""Checking uploaded auto-attendant announcements, and loading them for playback.

The spec accepts exactly two formats: 16-bit PCM mono 16 kHz, or G.711 8-bit µ-law / A-law
mono 8 kHz, in a RIFF/WAVE file. Anything else is refused with an ``AnnouncementError`` whose
message says what the file is (an MP3, a stereo 44.1 kHz WAV, a truncated WAV, ...) and what
is accepted. 16 kHz audio is resampled to 8 kHz for playback by libsoxr (``wav.resample``).
"""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pbx.media import g711
from pbx.media.wav import (
    FORMAT_ALAW,
    FORMAT_PCM,
    FORMAT_ULAW,
    WavFormat,
    WavFormatError,
    encode_wav_pcm,
    resample,
)

__all__ = [
    "ACCEPTED",
    "AnnouncementError",
    "CheckedAudio",
    "check_announcement",
    "encode_pcm16k_wav",
    "load_for_playback",
]

ACCEPTED = "a WAV file in 16-bit PCM mono 16 kHz, or G.711 8-bit µ-law / A-law mono 8 kHz"

# (format tag, bits, rate) of mono files -> encoding name; nothing else is accepted.
_ENCODINGS = {
    (FORMAT_PCM, 16, 16000): "pcm16k",
    (FORMAT_ULAW, 8, 8000): "ulaw8k",
    (FORMAT_ALAW, 8, 8000): "alaw8k",
}
_SILENCE_PEAK = 32  # about -60 dBFS: a file whose loudest sample is below this holds no audio
_STREAMING_SIZE = 0xFFFFFFFF  # a streaming writer's "until the end of the file"
_MB = 1024 * 1024

# Leading bytes of files people upload by mistake, and what to call them.
_MAGIC = [
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "a FLAC file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an office document)"),
    (b"RIFX", "a big-endian WAV (RIFX) file"),
    (b"\x1a\x45\xdf\xa3", "a WebM/Matroska file"),
    (b"#!AMR", "an AMR file"),
]


class AnnouncementError(ValueError):
    """The upload is not an acceptable announcement; the message says what it is instead."""


@dataclass(frozen=True, slots=True)
class CheckedAudio:
    """An accepted announcement: 8 kHz samples for playback, and what was uploaded."""

    samples_8k: npt.NDArray[np.int16]
    encoding: str  # "pcm16k", "ulaw8k" or "alaw8k"
    duration: float  # seconds


def _refuse(what: str) -> AnnouncementError:
    return AnnouncementError(f"{what}: expected {ACCEPTED}")


def _is_text(head: bytes) -> bool:
    """Whether ``head`` (the start of a file) reads as UTF-8 text without control characters."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\n\r\f\ufeff" for ch in text)


def _what_is_it(data: bytes) -> str:
    """Name a file that is not RIFF/WAVE, from its leading bytes."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "an MP3 file" if data[1] & 0x06 else "an AAC file"  # MPEG audio frame sync
    if data[4:8] == b"ftyp":
        return "an MP4/M4A file"
    if data.startswith(b"FORM") and data[8:12] in (b"AIFF", b"AIFC"):
        return "an AIFF file"
    if data.startswith(b"RIFF"):
        kind = data[8:12].decode("latin-1").strip()
        return f"a RIFF file of type '{kind}', not WAVE"
    if _is_text(data[:4096]):
        return "a text file, not a WAV file"
    return "not a WAV file"


def _minutes(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.3g} s"
    return f"{whole // 60} min {whole % 60} s" if whole % 60 else f"{whole // 60} min"


def _read(data: bytes) -> tuple[WavFormat, bytes]:
    """The format and audio bytes of a RIFF/WAVE file, refusing truncated files."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _refuse(_what_is_it(data))
    fmt: WavFormat | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        offset += 8
        held = len(data) - offset
        if chunk_id == b"fmt ":
            try:
                fmt = WavFormat.unpack(data[offset : offset + size])
            except WavFormatError as exc:
                raise _refuse(f"a WAV file with a broken 'fmt ' chunk ({exc})") from None
        elif chunk_id == b"data":
            if fmt is None:
                raise _refuse("a WAV file whose 'data' chunk comes before its 'fmt ' chunk")
            if size == _STREAMING_SIZE:
                size = held
            if size > held:
                raise _refuse(
                    f"a truncated WAV file ({fmt.describe()}, only {held} of the {size} bytes "
                    "of audio its header announces)"
                )
            return fmt, data[offset : offset + size]
        if size > held:
            break  # a chunk running past the end of the file: the file is cut short
        offset += size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise _refuse("a WAV file with no 'fmt ' chunk (truncated or damaged)")
    raise _refuse(f"a truncated WAV file ({fmt.describe()}) with no 'data' chunk")


def _decode(data: bytes) -> tuple[npt.NDArray[np.int16], int, str]:
    """Samples, rate and encoding name of a WAV in one of the accepted formats."""
    fmt, body = _read(data)
    encoding = _ENCODINGS.get((fmt.tag, fmt.bits, fmt.rate)) if fmt.channels == 1 else None
    if encoding is None:
        raise _refuse(f"a WAV file in {fmt.describe()}")
    if fmt.tag == FORMAT_PCM:
        if len(body) % 2:
            raise _refuse(f"a truncated WAV file ({fmt.describe()}): it ends mid-sample")
        samples = np.frombuffer(body, dtype="<i2").astype(np.int16)
    elif fmt.tag == FORMAT_ULAW:
        samples = g711.decode_ulaw(body)
    else:
        samples = g711.decode_alaw(body)
    return samples, fmt.rate, encoding


def check_announcement(
    data: bytes, *, max_bytes: int = 10 * _MB, max_seconds: float = 600
) -> CheckedAudio:
    """Check an uploaded announcement and convert it to 8 kHz samples for playback.

    Raises:
        AnnouncementError: empty, too large, not a WAV, a WAV in another format, truncated,
            no audio (zero-length or only silence), or longer than ``max_seconds``.
    """
    if not data:
        raise _refuse("empty file")
    if len(data) > max_bytes:
        raise AnnouncementError(
            f"too large: {len(data) / _MB:.1f} MB, at most {max_bytes / _MB:g} MB"
        )
    samples, rate, encoding = _decode(bytes(data))
    duration = samples.size / rate
    if not samples.size:
        raise AnnouncementError("no audio: the WAV file's 'data' chunk is empty")
    if duration > max_seconds:
        raise AnnouncementError(f"too long: {_minutes(duration)}, at most {_minutes(max_seconds)}")
    if int(np.max(np.abs(samples.astype(np.int32)))) < _SILENCE_PEAK:
        raise AnnouncementError(f"no audio: the file holds {_minutes(duration)} of silence")
    samples_8k = resample(samples, rate, 8000) if rate != 8000 else samples
    return CheckedAudio(samples_8k=samples_8k, encoding=encoding, duration=duration)


def encode_pcm16k_wav(samples_16k: npt.ArrayLike) -> bytes:
    """A complete WAV file (16 kHz mono 16-bit PCM) holding generated or recorded audio.

    Raises:
        TypeError: the samples are not int16.
    """
    return encode_wav_pcm(samples_16k, 16000)


def load_for_playback(path: str | Path) -> npt.NDArray[np.int16]:
    """Read a stored announcement as 8 kHz int16 samples (resampled when it is 16 kHz).

    Unlike ``check_announcement`` this applies no size, length or silence limits: the file was
    checked when it was stored.

    Raises:
        AnnouncementError: the file is not in an accepted format or is truncated.
        OSError: the path cannot be read.
    """
    samples, rate, _ = _decode(Path(path).read_bytes())
    return resample(samples, rate, 8000) if rate != 8000 else samples
