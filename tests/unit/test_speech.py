"""Text-to-speech with espeak-ng: a 16 kHz WAV that passes the announcement check."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pbx.media import speech
from pbx.media.announcement import check_announcement
from pbx.media.tone import rms
from pbx.media.wav import parse_wav

needs_espeak = pytest.mark.skipif(
    not speech.available(),
    reason="espeak-ng is not installed (apt-get install espeak-ng): text-to-speech not tested",
)


@needs_espeak
@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("it", "Benvenuti. Per l'ufficio vendite premete uno, per l'assistenza premete due."),
        ("en", "Welcome. For sales press one, for support press two."),
    ],
)
def test_speech_is_a_16_khz_wav_that_is_accepted_as_an_announcement(
    language: str, text: str
) -> None:
    data = speech.synthesise(text, language)
    riff_size, data_size = (
        struct.unpack_from("<I", data, 4)[0],
        struct.unpack_from("<I", data, 40)[0],
    )
    assert riff_size == len(data) - 8 and data_size == len(data) - 44  # real sizes, not espeak's
    assert struct.unpack_from("<HHIIHH", data, 20) == (1, 1, 16000, 32000, 2, 16)
    audio = parse_wav(data)
    assert audio.rate == 16000
    assert 2.0 < audio.samples.size / 16000 < 15.0
    assert rms(audio.samples) > 500  # speech, not silence
    checked = check_announcement(data)
    assert checked.encoding == "pcm16k"
    assert checked.duration == pytest.approx(audio.samples.size / 16000)
    assert rms(checked.samples_8k) > 500


@needs_espeak
def test_the_text_is_read_from_stdin_not_taken_as_options() -> None:
    data = speech.synthesise("--version -w /tmp/x.wav", "en")
    assert rms(parse_wav(data).samples) > 500


@pytest.mark.parametrize(
    ("text", "language", "message"),
    [
        ("Ciao", "de", "language must be one of it, en"),
        ("Ciao", "", "language must be one of it, en"),
        ("", "it", "empty"),
        ("  \n\t ", "en", "empty"),
        ("a" * 2001, "en", "too long: 2001 characters, at most 2000"),
    ],
)
def test_bad_requests_are_refused_before_running_anything(
    monkeypatch: pytest.MonkeyPatch, text: str, language: str, message: str
) -> None:
    monkeypatch.setattr(speech.subprocess, "run", pytest.fail)
    with pytest.raises(ValueError, match=message):
        speech.synthesise(text, language)


def test_a_missing_espeak_is_reported_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(speech, "ESPEAK", "espeak-ng-that-does-not-exist")
    assert not speech.available()
    with pytest.raises(speech.SpeechError, match="espeak-ng is not installed: apt-get install"):
        speech.synthesise("Ciao", "it")


def _fake_espeak(tmp_path: Path, script: str) -> str:
    program = tmp_path / "fake-espeak"
    program.write_text("#!/bin/sh\n" + script + "\n")
    program.chmod(0o755)
    return str(program)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("echo 'Error: voice' >&2; exit 1", r"failed \(exit status 1\): Error: voice"),
        ("cat >/dev/null; echo not a wav", "did not write a WAV file"),
        ("exec sleep 5", "timed out after 0.2 s"),
    ],
)
def test_espeak_failures_are_speech_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str, message: str
) -> None:
    monkeypatch.setattr(speech, "ESPEAK", _fake_espeak(tmp_path, script))
    monkeypatch.setattr(speech, "TIMEOUT", 0.2)
    with pytest.raises(speech.SpeechError, match=message):
        speech.synthesise("Ciao", "it")


def test_espeak_stdout_header_with_bogus_sizes_is_read_to_the_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """espeak-ng writes 0x7ffff000-ish sizes when streaming: everything after the header counts."""
    tone = (np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050) * 10000).astype("<i2")
    header = b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVEfmt " + struct.pack("<I", 16)
    header += struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16) + b"data"
    header += struct.pack("<I", 0x7FFFF000)
    (tmp_path / "out.wav").write_bytes(header + tone.tobytes())
    script = f"cat >/dev/null; cat '{tmp_path / 'out.wav'}'"
    monkeypatch.setattr(speech, "ESPEAK", _fake_espeak(tmp_path, script))
    audio = parse_wav(speech.synthesise("Ciao", "it"))
    assert audio.rate == 16000 and audio.samples.size == 16000
    assert rms(audio.samples[100:-100]) == pytest.approx(10000 / np.sqrt(2), rel=0.02)
