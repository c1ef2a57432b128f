"""Text-to-speech for announcements, with espeak-ng (Debian package ``espeak-ng``).

``synthesise`` returns a complete WAV in 16-bit PCM mono 16 kHz, one of the formats that
``announcement.check_announcement`` accepts, so a generated announcement is stored exactly like
an uploaded one. The text goes to espeak-ng on stdin, never on its command line, and no shell
is involved.
"""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import numpy.typing as npt

from pbx.media.wav import FORMAT_PCM, WavFormat, WavFormatError, encode_wav_pcm, resample

__all__ = ["LANGUAGES", "MAX_CHARS", "SpeechError", "available", "synthesise"]

ESPEAK = "espeak-ng"
LANGUAGES = ("it", "en")
MAX_CHARS = 2000
TIMEOUT = 10.0  # seconds
RATE = 16000
_WORDS_PER_MINUTE = "150"
_HEADER = 44  # espeak-ng always writes the canonical RIFF + 'fmt ' (16 bytes) + 'data' header


class SpeechError(RuntimeError):
    """espeak-ng is missing, failed, timed out or produced no usable audio."""


def available() -> bool:
    """Whether espeak-ng can be found on the PATH."""
    return shutil.which(ESPEAK) is not None


def _validate(text: str, language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if not text.strip():
        raise ValueError("the text to speak is empty")
    if len(text) > MAX_CHARS:
        raise ValueError(f"the text is too long: {len(text)} characters, at most {MAX_CHARS}")


def _samples(wav: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """Samples and rate of espeak-ng's stdout WAV, whose RIFF and data sizes are bogus.

    When writing to a pipe espeak-ng cannot go back to fill in the sizes, so the header is
    read at its fixed offsets and everything after it is taken as audio.
    """
    if len(wav) < _HEADER or wav[:4] != b"RIFF" or wav[8:16] != b"WAVEfmt ":
        raise SpeechError("espeak-ng did not write a WAV file")
    if wav[36:40] != b"data":
        raise SpeechError("espeak-ng wrote an unexpected WAV header")
    (fmt_size,) = struct.unpack_from("<I", wav, 16)
    try:
        fmt = WavFormat.unpack(wav[20 : 20 + fmt_size])
    except WavFormatError as exc:
        raise SpeechError(f"espeak-ng wrote a broken WAV header: {exc}") from None
    if (fmt.tag, fmt.channels, fmt.bits) != (FORMAT_PCM, 1, 16) or fmt.rate <= 0:
        raise SpeechError(f"espeak-ng wrote {fmt.describe()}, expected mono 16-bit PCM")
    body = wav[_HEADER:]
    samples = np.frombuffer(body[: len(body) - len(body) % 2], dtype="<i2").astype(np.int16)
    return samples, fmt.rate


def synthesise(text: str, language: str) -> bytes:
    """Speak ``text`` in ``language`` ("it" or "en"); a WAV file, 16 kHz mono 16-bit PCM.

    Raises:
        ValueError: empty text, text over ``MAX_CHARS`` characters, or an unknown language.
        SpeechError: espeak-ng is not installed, fails, times out or produces no audio.
    """
    _validate(text, language)
    program = shutil.which(ESPEAK)
    if program is None:
        raise SpeechError("espeak-ng is not installed: apt-get install espeak-ng")
    command = [program, "-v", language, "-s", _WORDS_PER_MINUTE, "-b", "1", "--stdout"]
    try:
        done = subprocess.run(
            command, input=text.encode(), capture_output=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise SpeechError(f"espeak-ng timed out after {TIMEOUT:g} s") from None
    except OSError as exc:
        raise SpeechError(f"espeak-ng could not be run: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip() or "no message"
        raise SpeechError(f"espeak-ng failed (exit status {done.returncode}): {detail}")
    samples, rate = _samples(done.stdout)
    if not samples.size:
        raise SpeechError("espeak-ng produced no audio")
    return encode_wav_pcm(resample(samples, rate, RATE), RATE)
