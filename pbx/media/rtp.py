"""RTP packets (RFC 3550 section 5.1): a full parser/serialiser and in-place header helpers.

``RtpPacket.parse`` is for code that needs every field (tests, the DTMF receiver, tools). The
relay's hot path uses the helpers below instead, which read or rewrite one header field of a
``bytes``/``bytearray`` with a precompiled ``struct`` and never look at the rest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "RTP_HEADER_SIZE",
    "RtpError",
    "RtpPacket",
    "get_payload_type",
    "get_sequence",
    "get_ssrc",
    "get_timestamp",
    "is_rtcp",
    "payload_bounds",
    "set_marker",
    "set_payload_type",
    "set_sequence",
    "set_ssrc",
    "set_timestamp",
]

RTP_HEADER_SIZE = 12

_HEADER = struct.Struct("!BBHII")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_EXTENSION = struct.Struct("!HH")


class RtpError(ValueError):
    """The datagram is not a well-formed RTP packet (a remote error: drop it)."""


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet; ``padding`` is the number of padding bytes (0 means no P bit)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    """(profile-defined 16-bit id, data whose length is a multiple of 4), or None."""
    padding: int = 0
    version: int = field(default=2, repr=False)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """Parse one datagram.

        Raises:
            RtpError: if it is shorter than its header, not version 2, or its padding or
                extension length runs past the end.
        """
        data = bytes(data)
        if len(data) < RTP_HEADER_SIZE:
            raise RtpError(f"RTP packet too short: {len(data)} bytes")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != 2:
            raise RtpError(f"RTP version {version}, expected 2")
        offset = RTP_HEADER_SIZE
        csrc_count = first & 0x0F
        end_of_csrcs = offset + 4 * csrc_count
        if len(data) < end_of_csrcs:
            raise RtpError(f"RTP packet announces {csrc_count} CSRCs but is {len(data)} bytes")
        csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset = end_of_csrcs
        extension = None
        if first & 0x10:
            if len(data) < offset + 4:
                raise RtpError("RTP header extension truncated")
            profile, words = _EXTENSION.unpack_from(data, offset)
            offset += 4
            if len(data) < offset + 4 * words:
                raise RtpError(f"RTP header extension of {words} words runs past the end")
            extension = (profile, data[offset : offset + 4 * words])
            offset += 4 * words
        end = len(data)
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or end - padding < offset:
                raise RtpError(f"RTP padding of {padding} bytes is impossible here")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=data[offset:end],
            marker=bool(second & 0x80),
            csrcs=tuple(csrcs),
            extension=extension,
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        """Serialise; padding bytes are zeros followed by the count, as RFC 3550 asks."""
        if len(self.csrcs) > 15:
            raise ValueError("an RTP packet carries at most 15 CSRCs")
        first = 0x80 | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        parts = [
            _HEADER.pack(
                first,
                second,
                self.sequence_number & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            ),
            struct.pack(f"!{len(self.csrcs)}I", *self.csrcs),
        ]
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise ValueError("RTP header extension data must be a multiple of 4 bytes")
            parts += [_EXTENSION.pack(profile, len(data) // 4), data]
        parts.append(self.payload)
        if self.padding:
            if not 0 < self.padding < 256:
                raise ValueError("RTP padding must be 1..255 bytes")
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def is_rtcp(data: bytes | bytearray) -> bool:
    """Whether a datagram on a muxed port is RTCP (RFC 5761: second byte 200..204)."""
    return len(data) >= 8 and data[0] >> 6 == 2 and 200 <= data[1] <= 204


def payload_bounds(data: bytes | bytearray) -> tuple[int, int]:
    """Start and end of the payload, skipping CSRCs, header extension and padding.

    Raises:
        RtpError: on the same junk that ``RtpPacket.parse`` rejects.
    """
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"RTP packet too short: {size} bytes")
    first = data[0]
    if first >> 6 != 2:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    start = RTP_HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if size < start + 4:
            raise RtpError("RTP header extension truncated")
        start += 4 + 4 * _U16.unpack_from(data, start + 2)[0]
    end = size
    if first & 0x20:
        end -= data[-1]
        if data[-1] == 0:
            raise RtpError("RTP padding of 0 bytes is impossible")
    if start > end:
        raise RtpError("RTP header runs past the end of the packet")
    return start, end


def get_payload_type(data: bytes | bytearray) -> int:
    """Payload type, without the marker bit."""
    return data[1] & 0x7F


def set_payload_type(buf: bytearray, payload_type: int) -> None:
    """Rewrite the payload type in place, keeping the marker bit."""
    buf[1] = (buf[1] & 0x80) | payload_type


def set_marker(buf: bytearray, marker: bool = True) -> None:
    """Set or clear the marker bit in place."""
    buf[1] = buf[1] | 0x80 if marker else buf[1] & 0x7F


def get_sequence(data: bytes | bytearray) -> int:
    """Sequence number."""
    return _U16.unpack_from(data, 2)[0]


def set_sequence(buf: bytearray, sequence: int) -> None:
    """Rewrite the sequence number in place (taken modulo 2**16)."""
    _U16.pack_into(buf, 2, sequence & 0xFFFF)


def get_timestamp(data: bytes | bytearray) -> int:
    """RTP timestamp."""
    return _U32.unpack_from(data, 4)[0]


def set_timestamp(buf: bytearray, timestamp: int) -> None:
    """Rewrite the timestamp in place (taken modulo 2**32)."""
    _U32.pack_into(buf, 4, timestamp & 0xFFFFFFFF)


def get_ssrc(data: bytes | bytearray) -> int:
    """Synchronisation source identifier."""
    return _U32.unpack_from(data, 8)[0]


def set_ssrc(buf: bytearray, ssrc: int) -> None:
    """Rewrite the SSRC in place."""
    _U32.pack_into(buf, 8, ssrc & 0xFFFFFFFF)
