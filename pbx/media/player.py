"""Sans-IO audio player: turns 8 kHz samples into a timed sequence of G.711 RTP packets.

The asyncio side calls ``next_packet()`` once per ``ptime`` and sends what comes out; the
player itself keeps no clock. The whole file is encoded once, up front, so that a packet costs
a slice and a header, whatever the number of callers on hold.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pbx.media import g711
from pbx.media.rtp import RtpPacket

__all__ = ["STATIC_PAYLOAD_TYPES", "Player"]

STATIC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
_SILENCE = {"PCMU": g711.ULAW_SILENCE, "PCMA": g711.ALAW_SILENCE}


class Player:
    """Packetises one recording for one RTP stream.

    Args:
        samples: 8 kHz int16 audio (e.g. from ``wav.load_as_pcm8k``).
        codec: "PCMU" or "PCMA".
        ptime: packet duration in milliseconds.
        loop: start again at the end (music on hold) instead of stopping (announcements).
        ssrc: the stream's SSRC.
        pt: payload type; the codec's static one when omitted.
        sequence: first sequence number.
        timestamp: first RTP timestamp.
    """

    def __init__(
        self,
        samples: npt.NDArray[np.int16],
        codec: str = "PCMU",
        ptime: int = 20,
        loop: bool = True,
        ssrc: int = 0,
        pt: int | None = None,
        sequence: int = 0,
        timestamp: int = 0,
    ) -> None:
        if codec not in STATIC_PAYLOAD_TYPES:
            raise ValueError(f"unsupported codec {codec!r}: expected 'PCMU' or 'PCMA'")
        if ptime <= 0 or ptime % 10:
            raise ValueError(f"ptime {ptime} ms: expected a positive multiple of 10")
        self.codec = codec
        self.pt = STATIC_PAYLOAD_TYPES[codec] if pt is None else pt
        self.ssrc = ssrc & 0xFFFFFFFF
        self.loop = loop
        self.frame = ptime * 8  # samples, and bytes: G.711 is one byte per sample
        encoded = g711.encode(codec, np.asarray(samples, dtype=np.int16))
        if not encoded:
            encoded = bytes([_SILENCE[codec]]) * self.frame
        if loop:
            # Frames that straddle the end wrap round, so the file plays seamlessly.
            self._audio = encoded + encoded * (self.frame // len(encoded) + 1)
        else:
            padding = -len(encoded) % self.frame
            self._audio = encoded + bytes([_SILENCE[codec]]) * padding
        self._length = len(encoded)
        self._position = 0
        self._sequence = sequence & 0xFFFF
        self._timestamp = timestamp & 0xFFFFFFFF
        self._first = True
        self.finished = False
        """True once a non-looping player has sent its last packet."""

    def next_packet(self) -> bytes | None:
        """The next RTP packet, or None when a non-looping recording has ended."""
        if self.finished:
            return None
        start = self._position
        payload = self._audio[start : start + self.frame]
        packet = RtpPacket(
            payload_type=self.pt,
            sequence_number=self._sequence,
            timestamp=self._timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=self._first,
        )
        self._first = False
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + self.frame) & 0xFFFFFFFF
        if self.loop:
            self._position = (start + self.frame) % self._length
        else:
            self._position = start + self.frame
            self.finished = self._position >= len(self._audio)
        return bytes(packet)

    def rewind(self) -> None:
        """Start the recording again from the beginning (the stream continues, marked)."""
        self._position = 0
        self._first = True
        self.finished = False

    @property
    def duration(self) -> float:
        """Length of the recording in seconds."""
        return self._length / 8000
