"""Tone generation and the measurements integration tests rely on."""

from __future__ import annotations

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.tone import band_energy_ratio, dominant_frequency, goertzel, rms, sine


def test_a_sine_has_the_asked_length_and_peak() -> None:
    tone = sine(1000, 0.5, amplitude=0.25)
    assert tone.dtype == np.int16 and tone.size == 4000
    assert abs(int(tone.max()) - 8192) <= 1
    with pytest.raises(ValueError):
        sine(1000, 1, amplitude=1.5)


def test_the_rms_of_a_sine_is_its_amplitude_over_root_two() -> None:
    assert rms(sine(440, 1, amplitude=0.5)) == pytest.approx(0.5 * 32767 / np.sqrt(2), rel=1e-3)
    assert rms(np.zeros(10, dtype=np.int16)) == 0.0
    assert rms([]) == 0.0


@pytest.mark.parametrize("freq", [300.0, 440.0, 697.3, 1000.0, 1633.0, 3400.5])
def test_the_dominant_frequency_of_a_one_second_tone_is_within_half_a_hertz(freq: float) -> None:
    assert dominant_frequency(sine(freq, 1.0, phase=0.3)) == pytest.approx(freq, abs=0.5)


def test_the_dominant_frequency_survives_g711_noise_and_a_weaker_second_tone() -> None:
    mixed = sine(523.25, 1.0, amplitude=0.4) + sine(1209, 1.0, amplitude=0.1)
    through_the_network = g711.decode_alaw(g711.encode_alaw(mixed))
    assert dominant_frequency(through_the_network) == pytest.approx(523.25, abs=1.0)


def test_the_dominant_frequency_works_at_16_khz_and_on_short_windows() -> None:
    assert dominant_frequency(sine(440, 1.0, rate=16000), rate=16000) == pytest.approx(440, abs=0.5)
    assert dominant_frequency(sine(440, 0.1)) == pytest.approx(440, abs=2)


def test_goertzel_finds_the_tone_that_is_there_and_not_the_one_that_is_not() -> None:
    # DTMF "5": 770 Hz + 1336 Hz.
    digit = sine(770, 0.1, amplitude=0.3) + sine(1336, 0.1, amplitude=0.3)
    expected = (0.3 * 32767) ** 2 / 2
    assert goertzel(digit, 8000, 770) == pytest.approx(expected, rel=0.05)
    assert goertzel(digit, 8000, 1336) == pytest.approx(expected, rel=0.05)
    assert goertzel(digit, 8000, 941) < expected / 100
    assert goertzel([], 8000, 770) == 0.0


def test_the_band_energy_ratio_splits_energy_between_tones() -> None:
    mixed = sine(400, 1.0, amplitude=0.3) + sine(2000, 1.0, amplitude=0.3)
    assert band_energy_ratio(mixed, 8000, 300, 600) == pytest.approx(0.5, abs=0.01)
    assert band_energy_ratio(np.zeros(100), 8000, 300, 600) == 0.0
