"""Tones in, tones out: WAV files for peers to play and checks on what they recorded."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pbx.media.tone import dominant_frequency as _dominant_frequency
from pbx.media.tone import rms, sine

from .waiting import wait_for

__all__ = [
    "assert_tone",
    "dominant_frequency",
    "read_wav",
    "rms",
    "sine",
    "tone_problem",
    "trim_silence",
    "wait_tone",
    "write_tone_wav",
    "write_wav",
]

RATE = 8000


def dominant_frequency(samples: npt.ArrayLike, rate: int = RATE) -> float:
    """Dominant frequency in Hz (pbx.media.tone's), 0.0 when there is too little audio."""
    data = np.asarray(samples)
    return _dominant_frequency(data, rate) if data.size >= 4 else 0.0


def write_wav(path: str | Path, samples: npt.ArrayLike, rate: int = RATE) -> Path:
    """Write mono 16-bit samples to a WAV file."""
    path = Path(path)
    data = np.asarray(samples, dtype=np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def write_tone_wav(
    path: str | Path, freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.5
) -> Path:
    """Write a sine tone as an 8 kHz (by default) mono 16-bit WAV file."""
    return write_wav(path, sine(freq, seconds, rate, amplitude), rate)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit WAV file; returns (mono int16 samples, sample rate).

    A file still being written (libsndfile patches the chunk sizes on close) is read as far
    as it goes.
    """
    blob = Path(path).read_bytes()
    if blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a WAV file")
    channels, rate, bits = 1, RATE, 16
    pos, raw = 12, b""
    while pos + 8 <= len(blob):
        chunk, size = blob[pos : pos + 4], int.from_bytes(blob[pos + 4 : pos + 8], "little")
        body = blob[pos + 8 : pos + 8 + size] if size else blob[pos + 8 :]
        if chunk == b"fmt ":
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
        elif chunk == b"data":
            # size 0 or past the end: the writer has not closed the file yet.
            raw = blob[pos + 8 :] if size == 0 or pos + 8 + size > len(blob) else body
            break
        pos += 8 + size + (size % 2)
    if bits != 16:
        raise ValueError(f"{path}: only 16-bit WAV is supported")
    raw = raw[: len(raw) - len(raw) % (2 * channels)]
    samples = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels)[:, 0].copy()
    return samples, rate


def trim_silence(samples: npt.ArrayLike, threshold: float = 300.0) -> np.ndarray:
    """Drop leading and trailing samples quieter than threshold (absolute value)."""
    data = np.asarray(samples, dtype=np.int16)
    loud = np.flatnonzero(np.abs(data.astype(np.int32)) > threshold)
    if loud.size == 0:
        return data[:0]
    return data[loud[0] : loud[-1] + 1]


def tone_problem(
    samples: npt.ArrayLike,
    freq: float,
    *,
    rate: int = RATE,
    tolerance: float = 10.0,
    min_rms: float = 500.0,
    min_seconds: float = 0.5,
) -> str | None:
    """Why the samples do not carry a tone of freq Hz, loud and long enough; None if they do."""
    data = trim_silence(samples)
    seconds = data.size / rate
    if seconds < min_seconds:
        return f"only {seconds:.2f} s of audio (want {min_seconds} s)"
    level = rms(data)
    if level < min_rms:
        return f"audio too quiet: rms {level:.0f} < {min_rms}"
    got = dominant_frequency(data, rate)
    if abs(got - freq) > tolerance:
        return f"dominant frequency {got:.1f} Hz, want {freq} Hz"
    return None


def assert_tone(
    samples: npt.ArrayLike,
    freq: float,
    *,
    rate: int = RATE,
    tolerance: float = 10.0,
    min_rms: float = 500.0,
    min_seconds: float = 0.5,
) -> None:
    """Assert the samples carry a tone of freq Hz, loud enough and long enough."""
    problem = tone_problem(
        samples, freq, rate=rate, tolerance=tolerance, min_rms=min_rms, min_seconds=min_seconds
    )
    assert problem is None, problem


def wait_tone(
    received: Callable[[], np.ndarray],
    freq: float,
    *,
    seconds: float,
    who: str,
    since: int = 0,
    timeout: float = 10.0,
    tolerance: float = 5.0,
) -> None:
    """Wait until the last `seconds` of what received() returns carry a tone of freq Hz.

    `received` is a phone's recording so far, read again at each look; only what it heard
    from sample `since` on counts (what came before, music on hold say, may be anything).
    """
    window = int(seconds * RATE)

    def problem() -> str | None:
        audio = received()
        if audio.size - since < window:
            return f"only {max(0, audio.size - since) / RATE:.2f} s heard"
        return tone_problem(audio[-window:], freq, tolerance=tolerance, min_seconds=seconds * 0.9)

    wait_for(
        lambda: problem() is None,
        timeout,
        what=f"{who} to hear {freq:g} Hz for {seconds:g} s",
        seen=problem,
        interval=0.05,
    )
