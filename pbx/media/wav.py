"""WAV (RIFF) files in the formats a PBX plays: 16-bit PCM at 8/16 kHz and 8 kHz G.711.

Everything that enters the engine is converted once, at upload or load time, to 8 kHz int16
samples; anything else is refused with a message that says what the file is and what would be
accepted, so an administrator uploading a CD-quality stereo file knows what to export instead.
Sample-rate conversion is done by libsoxr (python-soxr), not by a filter of our own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr

from pbx.media import g711

__all__ = [
    "ACCEPTED",
    "WavAudio",
    "WavFormat",
    "WavFormatError",
    "encode_wav_pcm",
    "encode_wav_pcm8k",
    "load_as_pcm8k",
    "parse_wav",
    "resample",
    "resample_16k_to_8k",
    "write_pcm8k",
]

ACCEPTED = "mono 8/16 kHz 16-bit PCM or 8 kHz G.711"

FORMAT_PCM, FORMAT_FLOAT, FORMAT_ALAW, FORMAT_ULAW, FORMAT_EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_FORMAT_NAMES = {
    FORMAT_PCM: "PCM",
    FORMAT_FLOAT: "float",
    FORMAT_ALAW: "G.711 A-law",
    FORMAT_ULAW: "G.711 µ-law",
    2: "ADPCM",
    0x11: "IMA ADPCM",
    0x31: "GSM 6.10",
    0x55: "MP3",
}

_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")


class WavFormatError(ValueError):
    """The file is not a WAV in an accepted format; the message says what it is instead."""


@dataclass(frozen=True, slots=True)
class WavAudio:
    """Decoded audio: int16 samples at ``rate``, and the encoding found in the file."""

    samples: npt.NDArray[np.int16]
    rate: int
    encoding: str  # "PCM", "G.711 µ-law" or "G.711 A-law"


@dataclass(frozen=True, slots=True)
class WavFormat:
    """The fields of a 'fmt ' chunk that decide whether a file can be played."""

    tag: int  # FORMAT_PCM, FORMAT_ULAW, ...; WAVE_FORMAT_EXTENSIBLE is read through
    channels: int
    rate: int
    bits: int

    @classmethod
    def unpack(cls, fmt: bytes) -> WavFormat:
        """Read a 'fmt ' chunk body.

        Raises:
            WavFormatError: the chunk is too short.
        """
        if len(fmt) < _FMT.size:
            raise WavFormatError("WAV file has no valid 'fmt ' chunk")
        tag, channels, rate, _, _, bits = _FMT.unpack_from(fmt)
        if tag == FORMAT_EXTENSIBLE and len(fmt) >= 26:
            tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the sub-format GUID
        return cls(tag=tag, channels=channels, rate=rate, bits=bits)

    @property
    def name(self) -> str:
        """The encoding's name: "PCM", "G.711 µ-law", ..., or "format 0x1234"."""
        return _FORMAT_NAMES.get(self.tag, f"format {self.tag:#06x}")

    def describe(self) -> str:
        """What the file holds, e.g. "stereo 44.1 kHz 16-bit PCM"."""
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels}-channel")
        return f"{layout} {self.rate / 1000:g} kHz {self.bits}-bit {self.name}"


def _chunks(data: bytes) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavFormatError(f"not a WAV file (no RIFF/WAVE header): expected {ACCEPTED}")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = _CHUNK.unpack_from(data, offset)
        offset += 8
        # Streaming writers leave the size at 0 or 0xFFFFFFFF: take what the file holds.
        body = data[offset : offset + size] if size else data[offset:]
        chunks.setdefault(chunk_id, body)
        if chunk_id == b"data" and size in (0, 0xFFFFFFFF):
            break
        offset += size + (size & 1)  # chunks are padded to an even length
    return chunks


def parse_wav(data: bytes) -> WavAudio:
    """Decode a WAV file held in memory.

    Raises:
        WavFormatError: not RIFF/WAVE, no fmt or data chunk, or not an accepted format.
    """
    chunks = _chunks(bytes(data))
    fmt = WavFormat.unpack(chunks.get(b"fmt ", b""))
    tag, channels, rate, bits, name = fmt.tag, fmt.channels, fmt.rate, fmt.bits, fmt.name
    found = fmt.describe()
    accepted = channels == 1 and (
        (tag == FORMAT_PCM and bits == 16 and rate in (8000, 16000))
        or (tag in (FORMAT_ULAW, FORMAT_ALAW) and bits == 8 and rate == 8000)
    )
    if not accepted:
        raise WavFormatError(f"{found}: expected {ACCEPTED}")
    body = chunks.get(b"data")
    if body is None:
        raise WavFormatError(f"{found} WAV file has no 'data' chunk")
    if tag == FORMAT_PCM:
        body = body[: len(body) - len(body) % 2]  # a truncated file may end mid-sample
        samples = np.frombuffer(body, dtype="<i2").astype(np.int16)
    elif tag == FORMAT_ULAW:
        samples = g711.decode_ulaw(body)
    else:
        samples = g711.decode_alaw(body)
    return WavAudio(samples=samples, rate=rate, encoding=name)


def resample(samples: npt.ArrayLike, rate_in: int, rate_out: int) -> npt.NDArray[np.int16]:
    """Convert mono samples from ``rate_in`` to ``rate_out`` Hz with libsoxr ("HQ" quality).

    libsoxr's HQ filter is flat to about 91% of the lower Nyquist frequency (3.7 kHz when going
    to 8 kHz) and attenuates what would alias by more than 90 dB; its delay is compensated, so
    the output lines up with the input and holds ``round(len(samples) * rate_out / rate_in)``
    samples. Results are rounded and clipped to int16.

    Raises:
        ValueError: a rate is not positive, or the samples are not one-dimensional.
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"expected mono (one-dimensional) samples, got shape {values.shape}")
    if rate_in != rate_out and values.size:
        values = soxr.resample(values, rate_in, rate_out, quality="HQ")
    return np.clip(np.round(values), -32768, 32767).astype(np.int16)


def resample_16k_to_8k(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Halve the sample rate, filtering out what would alias into the telephone band."""
    return resample(samples, 16000, 8000)


def load_as_pcm8k(source: str | Path | bytes) -> npt.NDArray[np.int16]:
    """Read a WAV (a path, or the file's bytes) as 8 kHz int16 samples.

    Raises:
        WavFormatError: the format is not accepted (see ``ACCEPTED``).
        OSError: the path cannot be read.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    audio = parse_wav(data)
    if audio.rate == 16000:
        return resample_16k_to_8k(audio.samples)
    return audio.samples


def encode_wav_pcm(samples: npt.ArrayLike, rate: int) -> bytes:
    """A complete WAV file (mono 16-bit PCM at ``rate`` Hz) holding ``samples``.

    Raises:
        TypeError: the samples are not int16.
    """
    values = np.asarray(samples)
    if values.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {values.dtype}")
    body = values.astype("<i2").tobytes()
    fmt = _FMT.pack(FORMAT_PCM, 1, rate, rate * 2, 2, 16)
    return b"".join(
        [
            _CHUNK.pack(b"RIFF", 4 + 8 + len(fmt) + 8 + len(body)),
            b"WAVE",
            _CHUNK.pack(b"fmt ", len(fmt)),
            fmt,
            _CHUNK.pack(b"data", len(body)),
            body,
        ]
    )


def encode_wav_pcm8k(samples: npt.ArrayLike) -> bytes:
    """A complete WAV file (8 kHz mono 16-bit PCM) holding ``samples``."""
    return encode_wav_pcm(samples, 8000)


def write_pcm8k(path: str | Path, samples: npt.ArrayLike) -> None:
    """Write ``samples`` as an 8 kHz mono 16-bit PCM WAV file."""
    Path(path).write_bytes(encode_wav_pcm8k(samples))
