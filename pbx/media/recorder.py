"""Sans-IO WAV recorder: the G.711 RTP a leg receives, written as it comes, crash-safe.

The caller opens the file and hands over a binary file object; the recorder only writes, seeks
and flushes it, so tests record into ``io.BytesIO`` and the engine decides where files live.

Why 8 kHz 16-bit PCM rather than G.711 in the WAV: browsers play PCM WAV but not µ-law or
A-law WAV, and voicemail will be listened to in the web console; a leg may switch between
µ-law and A-law on a re-INVITE, and one PCM file holds both without a lossy translation; and a
later conference recording mixes linear samples anyway. The cost is 16 kB per second instead
of 8, which disks do not notice. ``pbx.media.wav`` reads the result back.

What a phone sends is not a perfect stream, so:

- Gaps in the RTP timestamps (lost packets, or a phone that stops sending during silence)
  become silence, at most ``max_gap_seconds`` of it per gap, so that a wild timestamp jump
  cannot fill the disk. A packet older than what was written (late, duplicated) is dropped:
  no jitter buffer here. A new SSRC (the phone restarted its stream) is silence for the time
  that passed by the caller's clock, within the same bound.
- The file is written in chunks of ``chunk_seconds``; after each one the RIFF and data sizes
  in the header are rewritten and the file object flushed. A process killed mid-recording
  therefore leaves a WAV whose header describes what the last flush wrote, and readers that
  trust the header play all of it. (Flushed means handed to the operating system, not
  ``fsync``ed: a power cut may lose what the disk cache held.)
- ``max_seconds`` caps the recording; ``full`` tells when it is reached.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from pbx.media import g711
from pbx.media.rtp import RtpError, payload_bounds
from pbx.media.wav import encode_wav_pcm8k

__all__ = ["RATE", "WavRecorder"]

RATE = 8000
"""Samples per second: G.711's, and the RTP clock of its payloads."""

_BYTES_PER_SAMPLE = 2
_HEADER = encode_wav_pcm8k(np.zeros(0, dtype=np.int16))  # 8 kHz mono 16-bit, sizes zero
_RIFF_SIZE_AT = 4
_DATA_SIZE_AT = len(_HEADER) - 4  # the data chunk's size is the header's last field
_U32 = struct.Struct("<I")
_UNKNOWN_SIZE = 0xFFFFFFFF  # what streaming writers put when they cannot seek back
_MAX_SECONDS = (_UNKNOWN_SIZE - len(_HEADER)) // (RATE * _BYTES_PER_SAMPLE)
_DECODERS = {"PCMU": g711.decode_ulaw, "PCMA": g711.decode_alaw}
_SEQ_TS_SSRC = struct.Struct("!HII")


class WavRecorder:
    """Writes one party's audio, from RTP packets or samples, to a WAV file object.

    Args:
        file: a binary file object opened for writing, positioned where the WAV starts. The
            recorder never closes it. When it cannot seek (a pipe), the header says "size
            unknown", which WAV readers accept, and is never rewritten.
        max_seconds: the longest recording; later audio is ignored and ``full`` is set.
        max_gap_seconds: the most silence one gap in the stream may become.
        chunk_seconds: how much audio is held before it is written and the header updated:
            what a killed process may lose.

    It is also an ``AudioTap`` (``receive_audio``), so the relay core can feed it directly.
    """

    def __init__(
        self,
        file: BinaryIO,
        *,
        max_seconds: float = 600.0,
        max_gap_seconds: float = 5.0,
        chunk_seconds: float = 0.5,
    ) -> None:
        if not 0 < max_seconds <= _MAX_SECONDS:
            raise ValueError(f"max_seconds {max_seconds}: expected 0 < max_seconds <= 4 GB")
        if max_gap_seconds < 0 or chunk_seconds <= 0:
            raise ValueError("max_gap_seconds must be >= 0 and chunk_seconds > 0")
        self._file = file
        self._limit = round(max_seconds * RATE)
        self._max_gap = round(max_gap_seconds * RATE)
        self._chunk = max(1, round(chunk_seconds * RATE))
        self._seekable = file.seekable()
        self._start = file.tell() if self._seekable else 0
        self._samples = 0  # recorded so far, written or pending
        self._written_bytes = 0  # of PCM in the data chunk
        self._pending = bytearray()  # PCM not yet written
        self._g711 = bytearray()  # payloads not yet decoded, all in _g711_codec
        self._g711_codec = ""
        # The stream being followed.
        self._ssrc: int | None = None
        self._next_timestamp = 0  # RTP timestamp of the sample after the last one written
        self._last_arrival: float | None = None
        self._last_length = 0
        self.full = False
        """True once ``max_seconds`` are recorded; nothing more is taken."""
        self.closed = False
        self.dropped = 0
        """Packets not recorded: malformed, late or duplicated."""
        header = bytearray(_HEADER)
        if not self._seekable:
            _U32.pack_into(header, _RIFF_SIZE_AT, _UNKNOWN_SIZE)
            _U32.pack_into(header, _DATA_SIZE_AT, _UNKNOWN_SIZE)
        file.write(header)
        file.flush()

    @property
    def duration(self) -> float:
        """Seconds recorded so far (silence for gaps included)."""
        return self._samples / RATE

    # --- input ------------------------------------------------------------------------------

    def receive_audio(self, packet: bytes, codec: str, now: float) -> None:
        """The ``AudioTap`` entry point: same as ``write_packet``."""
        self.write_packet(packet, codec, now)

    def write_packet(self, packet: bytes | bytearray, codec: str, now: float | None = None) -> None:
        """Record one RTP packet carrying G.711 (``codec`` "PCMU" or "PCMA").

        Args:
            packet: the whole datagram; a malformed one is counted in ``dropped``.
            codec: what its payload is, as negotiated for the stream.
            now: when it arrived (seconds, any origin), to size the silence when the stream
                restarts under a new SSRC; None when unknown.
        """
        self._check_open()
        if codec not in _DECODERS:
            raise ValueError(f"unsupported codec {codec!r}: expected 'PCMU' or 'PCMA'")
        if self.full:
            return
        try:
            start, end = payload_bounds(packet)
        except RtpError:
            self.dropped += 1
            return
        length = end - start
        if length <= 0:
            return
        _, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(packet, 2)
        skip = 0
        if ssrc != self._ssrc:
            if self._ssrc is not None and now is not None and self._last_arrival is not None:
                elapsed = round((now - self._last_arrival) * RATE) - self._last_length
                self._silence(min(max(elapsed, 0), self._max_gap))
            self._ssrc = ssrc
        else:
            gap = (timestamp - self._next_timestamp) & 0xFFFFFFFF
            if gap >= 0x80000000:
                gap -= 0x100000000
            if gap > 0:
                self._silence(min(gap, self._max_gap))
            elif -gap >= length and -gap <= self._max_gap:
                self.dropped += 1  # late or duplicated: its place is already written
                return
            elif gap < 0 and -gap < length:
                skip = -gap  # overlaps what was written: keep the new part only
            # Further behind than any late packet: the source restarted its clock; go on.
        self._next_timestamp = (timestamp + length) & 0xFFFFFFFF
        self._last_arrival, self._last_length = now, length
        self._add_g711(codec, packet[start + skip : end])

    def write_samples(self, samples: npt.ArrayLike) -> None:
        """Record linear audio (8 kHz int16), e.g. a mix made elsewhere."""
        self._check_open()
        values = np.asarray(samples)
        if values.dtype != np.int16:
            raise TypeError(f"expected int16 samples, got {values.dtype}")
        if self.full:
            return
        self._decode_pending()
        values = values[: self._room(values.size)]
        self._pending += values.astype("<i2", copy=False).tobytes()
        self._grown(values.size)

    # --- output -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what is pending, bring the header's sizes up to date, flush the file object."""
        self._check_open()
        self._decode_pending()
        file = self._file
        if self._pending:
            file.write(self._pending)
            self._written_bytes += len(self._pending)
            self._pending.clear()
            if self._seekable:
                # Data first, sizes second: the header never claims bytes the file lacks.
                end = file.tell()
                file.seek(self._start + _RIFF_SIZE_AT)
                file.write(_U32.pack(len(_HEADER) - 8 + self._written_bytes))
                file.seek(self._start + _DATA_SIZE_AT)
                file.write(_U32.pack(self._written_bytes))
                file.seek(end)
        file.flush()

    def close(self) -> None:
        """Write everything and stop; the file object stays open (it is the caller's)."""
        if self.closed:
            return
        self.flush()
        self.closed = True

    # --- internals --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("the recorder is closed")

    def _room(self, count: int) -> int:
        """How many of ``count`` samples still fit; sets ``full`` when they do not all fit."""
        room = self._limit - self._samples
        if count >= room:
            self.full = True
            return room
        return count

    def _add_g711(self, codec: str, payload: bytes | bytearray) -> None:
        # Payloads are decoded a chunk at a time: one numpy call per chunk, not per packet.
        if codec != self._g711_codec:
            self._decode_pending()
            self._g711_codec = codec
        count = self._room(len(payload))
        self._g711 += payload[:count]
        self._grown(count)

    def _silence(self, count: int) -> None:
        if count <= 0:
            return
        self._decode_pending()
        count = self._room(count)
        self._pending += bytes(count * _BYTES_PER_SAMPLE)
        self._grown(count)

    def _grown(self, count: int) -> None:
        self._samples += count
        if self.full or self._samples - self._written_bytes // _BYTES_PER_SAMPLE >= self._chunk:
            self.flush()

    def _decode_pending(self) -> None:
        if self._g711:
            samples = _DECODERS[self._g711_codec](self._g711)
            self._pending += samples.astype("<i2", copy=False).tobytes()
            self._g711.clear()
