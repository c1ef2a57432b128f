"""Regenerate pbx/media/assets/moh.wav: a 30-second tune whose energy stays in 300-600 Hz.

The tune is synthesised, not recorded, so that it is ours to ship and a test can recognise it:
pure sine voices (no harmonics to leak above 600 Hz) on notes from E4 to D5, a bell-like
melody over a soft sustained pad, D major, 96 beats a minute, twelve bars. It runs the same
way every time (no randomness), and starts and ends at silence so that it loops without a click.

    .venv/bin/python scripts/make_moh.py [output.wav]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a plain script from anywhere

from pbx.media.wav import write_pcm8k  # noqa: E402

RATE = 8000
BEAT = 60 / 96  # seconds
NOTES = {
    "E4": 329.63,
    "F#4": 369.99,
    "G4": 392.00,
    "A4": 440.00,
    "B4": 493.88,
    "C#5": 554.37,
    "D5": 587.33,
}

# One chord per bar (the pad) and the melody as (note, beats); each bar adds up to 4 beats.
PHRASE_A = [
    ("D", [("A4", 1), ("F#4", 0.5), ("A4", 0.5), ("D5", 1), ("C#5", 1)]),
    ("Bm", [("B4", 1.5), ("A4", 0.5), ("F#4", 1), ("B4", 1)]),
    ("G", [("G4", 1), ("B4", 1), ("D5", 1), ("B4", 1)]),
    ("A", [("C#5", 1.5), ("B4", 0.5), ("A4", 2)]),
]
PHRASE_B = [
    ("D", [("F#4", 0.5), ("G4", 0.5), ("A4", 1), ("D5", 1.5), ("A4", 0.5)]),
    ("Bm", [("B4", 1), ("D5", 1), ("C#5", 0.5), ("B4", 0.5), ("F#4", 1)]),
    ("G", [("G4", 0.5), ("A4", 0.5), ("B4", 1), ("D5", 1), ("G4", 1)]),
    ("A", [("E4", 1), ("A4", 1), ("C#5", 2)]),
]
ENDING = PHRASE_A[:3] + [("D", [("A4", 1), ("C#5", 1), ("D5", 2)])]
BARS = PHRASE_A + PHRASE_B + ENDING
CHORDS = {"D": ("F#4", "A4"), "Bm": ("F#4", "B4"), "G": ("G4", "B4"), "A": ("E4", "A4")}


def _voice(freq: float, seconds: float) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.sin(2 * np.pi * freq * t)


def _bell(freq: float, beats: float) -> npt.NDArray[np.float64]:
    """A melody note: quick attack, exponential decay, a short release after its length."""
    held, tail = beats * BEAT, 0.25
    tone = _voice(freq, held + tail)
    t = np.arange(tone.size) / RATE
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-2.0 * t)
    envelope *= np.clip((held + tail - t) / tail, 0.0, 1.0)
    return tone * envelope


def _pad(freq: float) -> npt.NDArray[np.float64]:
    """A pad note: a bar long, swelling in and out so that bars blend."""
    seconds = 4 * BEAT + 0.3
    tone = _voice(freq, seconds)
    t = np.arange(tone.size) / RATE
    envelope = np.minimum(1.0, t / 0.3) * np.clip((seconds - t) / 0.3, 0.0, 1.0)
    return tone * envelope


def build_tune() -> npt.NDArray[np.int16]:
    """The whole tune as 8 kHz int16 samples."""
    total = round(len(BARS) * 4 * BEAT * RATE)
    mix = np.zeros(total + RATE, dtype=np.float64)  # room for the last note's tail
    position = 0.0  # in beats
    for chord, melody in BARS:
        start = round(position * BEAT * RATE)
        for note in CHORDS[chord]:
            pad = _pad(NOTES[note])
            mix[start : start + pad.size] += 0.12 * pad
        for note, beats in melody:
            begin = round(position * BEAT * RATE)
            bell = _bell(NOTES[note], beats)
            mix[begin : begin + bell.size] += 0.5 * bell
            position += beats
    mix = mix[:total]
    fade = round(0.05 * RATE)  # start and end at zero: a seamless loop
    mix[:fade] *= np.linspace(0.0, 1.0, fade)
    mix[-fade:] *= np.linspace(1.0, 0.0, fade)
    mix *= 0.6 / np.abs(mix).max()
    return np.round(mix * 32767).astype(np.int16)


def main() -> None:
    """Write the tune to the asset path, or to the path given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "output", nargs="?", type=Path, default=REPO / "pbx" / "media" / "assets" / "moh.wav"
    )
    output = parser.parse_args().output
    output.parent.mkdir(parents=True, exist_ok=True)
    samples = build_tune()
    write_pcm8k(output, samples)
    print(f"wrote {output}: {samples.size / RATE:.1f} s, {output.stat().st_size} bytes")


if __name__ == "__main__":
    main()
