"""Tone generation and measurement, so tests can check audio rather than only signalling."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["band_energy_ratio", "dominant_frequency", "goertzel", "ringback", "rms", "sine"]

FULL_SCALE = 32767


def sine(
    freq: float, seconds: float, rate: int = 8000, amplitude: float = 0.5, phase: float = 0.0
) -> npt.NDArray[np.int16]:
    """A sine tone as int16 samples; ``amplitude`` is a fraction of full scale."""
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude {amplitude} is not a fraction of full scale (0..1)")
    t = np.arange(round(seconds * rate)) / rate
    wave = amplitude * FULL_SCALE * np.sin(2 * np.pi * freq * t + phase)
    return np.round(wave).astype(np.int16)


def ringback(rate: int = 8000) -> npt.NDArray[np.int16]:
    """The Italian ringback cadence (425 Hz, one second on, four off): what a caller hears
    while the PBX rings someone for them (the console dialling, a menu's transfer)."""
    return np.concatenate([sine(425, 1.0, rate, amplitude=0.3), np.zeros(4 * rate, np.int16)])


def rms(samples: npt.ArrayLike) -> float:
    """Root mean square level, in sample units (0.0 for no samples)."""
    values = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(values**2))) if values.size else 0.0


def dominant_frequency(samples: npt.ArrayLike, rate: int = 8000) -> float:
    """Frequency of the strongest spectral peak, in Hz.

    A Hann window keeps leakage from neighbouring tones low, and a parabola through the log
    magnitudes of the peak bin and its neighbours places the peak between bins, which gives
    well under 1 Hz of error on a clean one-second tone (bins are 1 Hz apart).
    """
    values = np.asarray(samples, dtype=np.float64)
    if values.size < 4:
        raise ValueError("need at least 4 samples to find a frequency")
    values = values - values.mean()
    spectrum = np.abs(np.fft.rfft(values * np.hanning(values.size)))
    peak = int(np.argmax(spectrum[1:])) + 1  # bin 0 is what remains of DC
    if peak >= spectrum.size - 1:
        return peak * rate / values.size
    left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    denominator = left - 2 * centre + right
    offset = 0.5 * (left - right) / denominator if denominator else 0.0
    return float((peak + offset) * rate / values.size)


def goertzel(samples: npt.ArrayLike, rate: int, freq: float) -> float:
    """Power of one frequency component, scaled so a sine of amplitude A gives A**2 / 2.

    This is the single DFT term that the Goertzel recursion computes, evaluated at the exact
    frequency (not the nearest bin) with numpy's dot product, which is both faster and more
    accurate in Python than running the recursion sample by sample. On that scale a pure tone's
    power equals its ``rms()`` squared, so the two can be compared directly.
    """
    values = np.asarray(samples, dtype=np.float64)
    if not values.size:
        return 0.0
    phases = np.exp(-2j * np.pi * freq * np.arange(values.size) / rate)
    term = np.dot(values, phases)
    return float(2 * abs(term) ** 2 / values.size**2)


def band_energy_ratio(samples: npt.ArrayLike, rate: int, low: float, high: float) -> float:
    """Fraction of the signal's energy (DC excluded) between ``low`` and ``high`` Hz."""
    values = np.asarray(samples, dtype=np.float64)
    values = values - values.mean()
    power = np.abs(np.fft.rfft(values)) ** 2
    freqs = np.fft.rfftfreq(values.size, 1 / rate)
    total = power[1:].sum()
    if not total:
        return 0.0
    return float(power[(freqs >= low) & (freqs <= high)].sum() / total)
