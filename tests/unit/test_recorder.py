"""The WAV recorder: what it writes, how it survives a kill, gaps, limits and bad input."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from pbx.media import g711
from pbx.media.player import Player
from pbx.media.recorder import WavRecorder
from pbx.media.rtp import RtpPacket
from pbx.media.tone import dominant_frequency, rms, sine
from pbx.media.wav import load_as_pcm8k, parse_wav

TONE = sine(697, 1.0, amplitude=0.3)


def stream(samples: np.ndarray, codec: str = "PCMU", **kw: int) -> list[bytes]:
    """The RTP packets a phone sending ``samples`` would send (20 ms each)."""
    player = Player(samples, codec=codec, loop=False, **kw)
    packets = []
    while (data := player.next_packet()) is not None:
        packets.append(data)
    return packets


def rtp(timestamp: int, payload: bytes = b"\xff" * 160, ssrc: int = 1, pt: int = 0) -> bytes:
    return bytes(RtpPacket(pt, timestamp // 160, timestamp, ssrc, payload=payload))


def record(packets: list[bytes], codec: str = "PCMU", **kw: float) -> np.ndarray:
    """Record ``packets`` into memory and read the result back with the WAV loader."""
    file = io.BytesIO()
    recorder = WavRecorder(file, **kw)
    for data in packets:
        recorder.write_packet(data, codec)
    recorder.close()
    return load_as_pcm8k(file.getvalue())


class WriteLog(io.BytesIO):
    """A file that remembers its whole content after every write: each one a possible kill."""

    def __init__(self) -> None:
        super().__init__()
        self.after_each_write: list[bytes] = []
        self.after_each_flush: list[bytes] = []

    def write(self, data) -> int:  # type: ignore[override]
        written = super().write(data)
        self.after_each_write.append(self.getvalue())
        return written

    def flush(self) -> None:
        super().flush()
        self.after_each_flush.append(self.getvalue())


class Pipe(io.RawIOBase):
    """A write-only stream that cannot seek, like a pipe to an encoder."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.data += data
        return len(data)


def test_a_recording_reads_back_as_exactly_the_decoded_payloads() -> None:
    packets = stream(TONE, "PCMU")
    recorded = record(packets)
    assert np.array_equal(recorded, g711.decode_ulaw(g711.encode_ulaw(TONE)))


def test_the_file_is_8_khz_mono_16_bit_pcm() -> None:
    file = io.BytesIO()
    WavRecorder(file).close()
    audio = parse_wav(file.getvalue())
    assert (audio.rate, audio.encoding, audio.samples.size) == (8000, "PCM", 0)
    assert len(file.getvalue()) == 44


def test_a_tone_fed_in_as_alaw_rtp_is_recorded_at_its_frequency() -> None:
    recorded = record(stream(TONE, "PCMA"), "PCMA")
    assert recorded.size == 8000
    assert dominant_frequency(recorded) == pytest.approx(697, abs=1)
    assert rms(recorded) == pytest.approx(rms(TONE), rel=0.02)


def test_the_header_is_brought_up_to_date_at_every_flush() -> None:
    file = WriteLog()
    recorder = WavRecorder(file, chunk_seconds=0.2)
    for data in stream(TONE):
        recorder.write_packet(data, "PCMU")
    # 1 s in chunks of 0.2 s: the header, then five chunks, each flushed with its sizes.
    counts = [parse_wav(snapshot).samples.size for snapshot in file.after_each_flush]
    assert counts == [0, 1600, 3200, 4800, 6400, 8000]


def test_a_file_cut_right_after_a_flush_loads_everything_flushed() -> None:
    file = WriteLog()
    recorder = WavRecorder(file, chunk_seconds=0.3)
    for data in stream(TONE):
        recorder.write_packet(data, "PCMU")
    final = file.getvalue()
    cut = file.after_each_flush[2]  # 0.6 s flushed, then the process is killed
    assert final[44 : len(cut)] == cut[44:]  # the rest came later
    assert struct.unpack_from("<I", cut, 40) == (4800 * 2,)
    loaded = load_as_pcm8k(cut)
    assert loaded.size == 4800
    assert np.array_equal(loaded, load_as_pcm8k(final)[:4800])


def test_a_process_killed_at_any_write_leaves_a_playable_prefix_of_the_recording() -> None:
    file = WriteLog()
    recorder = WavRecorder(file, chunk_seconds=0.1)
    for data in stream(TONE):
        recorder.write_packet(data, "PCMU")
    recorder.close()
    whole = load_as_pcm8k(file.getvalue())
    for snapshot in file.after_each_write:
        # A header that claims more than the file holds would make players stop or click.
        (data_size,) = struct.unpack_from("<I", snapshot, 40)
        assert data_size <= len(snapshot) - 44
        loaded = load_as_pcm8k(snapshot)
        assert np.array_equal(loaded, whole[: loaded.size])


def test_lost_packets_become_silence_of_the_same_length() -> None:
    packets = stream(TONE)
    recorded = record(packets[:10] + packets[15:])  # 100 ms lost
    assert recorded.size == 8000
    assert not recorded[1600:2400].any()
    expected = g711.decode_ulaw(g711.encode_ulaw(TONE))
    assert np.array_equal(recorded[2400:], expected[2400:])


def test_a_long_pause_in_the_stream_is_bounded() -> None:
    ten_minutes = 10 * 60 * 8000
    recorded = record([rtp(0), rtp(ten_minutes)], max_gap_seconds=2.0)
    assert recorded.size == 160 + 2 * 8000 + 160


def test_late_and_repeated_packets_are_dropped() -> None:
    file = io.BytesIO()
    recorder = WavRecorder(file)
    for timestamp in (0, 160, 320, 160, 320, 480):
        recorder.write_packet(rtp(timestamp), "PCMU")
    assert recorder.dropped == 2 and recorder.duration == 640 / 8000


def test_a_packet_that_overlaps_what_was_written_adds_only_its_new_part() -> None:
    recorded = record([rtp(0), rtp(80, b"\x80" * 160)])
    assert recorded.size == 240
    assert np.array_equal(recorded[160:], g711.decode_ulaw(b"\x80" * 80))


def test_a_timestamp_that_jumps_far_back_is_a_restarted_clock_not_a_late_packet() -> None:
    recorded = record([rtp(800_000), rtp(0, b"\x80" * 160)], max_gap_seconds=1.0)
    assert recorded.size == 320


def test_a_new_ssrc_is_silence_for_the_time_that_passed_by_the_callers_clock() -> None:
    file = io.BytesIO()
    recorder = WavRecorder(file, max_gap_seconds=5.0)
    recorder.write_packet(rtp(0, ssrc=1), "PCMU", now=100.0)
    recorder.write_packet(rtp(4242, ssrc=2), "PCMU", now=100.52)  # restarted half a second on
    recorder.write_packet(rtp(0, ssrc=3), "PCMU", now=200.0)  # long after: bounded
    recorder.close()
    assert load_as_pcm8k(file.getvalue()).size == 160 + 4000 + 160 + 5 * 8000 + 160


def test_the_recording_stops_at_its_maximum_duration() -> None:
    file = io.BytesIO()
    recorder = WavRecorder(file, max_seconds=0.5)
    for data in stream(TONE):
        recorder.write_packet(data, "PCMU")
    assert recorder.full and recorder.duration == 0.5
    recorder.close()
    assert load_as_pcm8k(file.getvalue()).size == 4000


def test_a_codec_switch_mid_recording_decodes_each_packet_with_its_own_law() -> None:
    ulaw = stream(TONE[:800], "PCMU", timestamp=0)
    alaw = stream(TONE[800:1600], "PCMA", timestamp=800)
    file = io.BytesIO()
    recorder = WavRecorder(file)
    for data in ulaw:
        recorder.write_packet(data, "PCMU")
    for data in alaw:
        recorder.write_packet(data, "PCMA")
    recorder.close()
    recorded = load_as_pcm8k(file.getvalue())
    assert np.array_equal(recorded[:800], g711.decode_ulaw(g711.encode_ulaw(TONE[:800])))
    assert np.array_equal(recorded[800:], g711.decode_alaw(g711.encode_alaw(TONE[800:1600])))


def test_linear_samples_can_be_recorded_too() -> None:
    file = io.BytesIO()
    recorder = WavRecorder(file, max_seconds=0.75)
    recorder.write_samples(TONE[:4000])
    recorder.write_samples(TONE[4000:])
    recorder.close()
    assert np.array_equal(load_as_pcm8k(file.getvalue()), TONE[:6000])
    with pytest.raises(TypeError):
        WavRecorder(io.BytesIO()).write_samples(np.zeros(3))


def test_a_stream_that_cannot_seek_gets_a_header_of_unknown_size() -> None:
    pipe = Pipe()
    recorder = WavRecorder(pipe, chunk_seconds=0.1)  # type: ignore[arg-type]
    for data in stream(TONE):
        recorder.write_packet(data, "PCMU")
    recorder.close()
    assert struct.unpack_from("<I", pipe.data, 40) == (0xFFFFFFFF,)
    assert load_as_pcm8k(bytes(pipe.data)).size == 8000


def test_a_recording_can_start_in_the_middle_of_a_file() -> None:
    file = io.BytesIO(b"prefix")
    file.seek(0, io.SEEK_END)
    recorder = WavRecorder(file)
    recorder.write_packet(rtp(0), "PCMU")
    recorder.close()
    assert load_as_pcm8k(file.getvalue()[6:]).size == 160


def test_junk_is_counted_and_not_recorded() -> None:
    file = io.BytesIO()
    recorder = WavRecorder(file)
    recorder.write_packet(b"\x80\x00junk", "PCMU")
    recorder.write_packet(b"\x00" * 172, "PCMU")  # not RTP version 2
    recorder.write_packet(rtp(0, b""), "PCMU")  # nothing to record
    assert recorder.dropped == 2 and recorder.duration == 0


def test_the_file_stays_open_after_close_and_the_recorder_refuses_more() -> None:
    file = io.BytesIO()
    recorder = WavRecorder(file)
    recorder.close()
    recorder.close()
    assert not file.closed
    with pytest.raises(ValueError, match="closed"):
        recorder.write_packet(rtp(0), "PCMU")


def test_nonsense_settings_and_codecs_are_refused() -> None:
    with pytest.raises(ValueError):
        WavRecorder(io.BytesIO(), max_seconds=0)
    with pytest.raises(ValueError):
        WavRecorder(io.BytesIO(), max_seconds=10**9)
    with pytest.raises(ValueError):
        WavRecorder(io.BytesIO(), chunk_seconds=0)
    with pytest.raises(ValueError, match="G722"):
        WavRecorder(io.BytesIO()).write_packet(rtp(0), "G722")
