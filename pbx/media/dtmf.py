"""RFC 4733 telephone-events: the 4-byte payload, a receiver and a sender for DTMF digits.

One key press is one event: every packet of it carries the same RTP timestamp (the event's
start), a growing duration, and the last packet has the E bit and is sent three times. The
receiver therefore keys events by timestamp and reports each key press once, as a
``DigitReceived`` with how long the key was held.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pbx.media.rtp import RtpError, RtpPacket

__all__ = [
    "DIGITS",
    "DigitReceived",
    "DtmfError",
    "DtmfReceiver",
    "DtmfSender",
    "TelephoneEvent",
    "digit_to_event",
]

DIGITS = "0123456789*#ABCD"
"""Event codes 0..15 (RFC 4733 section 3.2) as the characters users press."""

_EVENT = struct.Struct("!BBH")


class DtmfError(ValueError):
    """A telephone-event payload is malformed (a remote error: drop it)."""


def digit_to_event(digit: str) -> int:
    """Event code of a DTMF character (case-insensitive for A-D)."""
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit: expected one of {DIGITS}")
    return index


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The telephone-event payload: event code, end bit, volume (-dBm0) and duration."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Parse the first 4 bytes of a payload (more are redundant events, ignored)."""
        if len(payload) < 4:
            raise DtmfError(f"telephone-event payload of {len(payload)} bytes, need 4")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        """Serialise (the reserved bit is sent as zero)."""
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return _EVENT.pack(self.event & 0xFF, flags, min(self.duration, 0xFFFF))

    @property
    def digit(self) -> str | None:
        """The DTMF character, or None for events that are not digits (flash, tones)."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class DigitReceived:
    """One key press, reported once, for IVR menus, voicemail and feature codes.

    ``duration_ms`` is how long the key was held according to the sender (the event's duration
    field, not our clock, so network jitter does not change it). ``ended`` is False when no
    end packet came (all three lost): the digit was reported when the next event started, or
    on ``flush``, and its duration is the last one seen, a lower bound.
    """

    digit: str
    duration_ms: int
    ended: bool = True


_NO_DIGITS: tuple[DigitReceived, ...] = ()
_SEGMENT = 0xFFFF  # the largest duration a packet can carry (RFC 4733 2.5.1.3)


class DtmfReceiver:
    """Turns a stream of telephone-event packets into key presses, each reported once.

    Args:
        rate: the telephone-event clock rate from the SDP (8000 unless negotiated otherwise).
    """

    def __init__(self, rate: int = 8000) -> None:
        self.rate = rate
        self._timestamp: int | None = None  # timestamp of the event being received
        self._event = -1
        self._digit: str | None = None
        self._duration = 0  # the largest duration seen for the current segment
        self._earlier = 0  # durations of the earlier segments of a very long key press
        self._reported = True

    def receive_payload(self, timestamp: int, payload: bytes) -> tuple[DigitReceived, ...]:
        """Take one event packet's RTP timestamp and payload; return the key presses now over.

        A key press is reported on the first packet with the E bit. When its end packets were
        all lost, it is reported as soon as the next event starts. A press longer than a
        packet's duration field can say (8 s at 8 kHz) arrives as segments, each starting where
        the previous one stopped; they are added up into one press.
        """
        try:
            event = TelephoneEvent.parse(payload)
        except DtmfError:
            return _NO_DIGITS
        done = _NO_DIGITS
        if timestamp != self._timestamp:
            if self._continues(timestamp, event.event):
                self._earlier += self._duration
            else:
                done = self.flush()
                self._earlier = 0
            self._timestamp, self._event, self._digit = timestamp, event.event, event.digit
            self._duration, self._reported = 0, False
        if event.duration > self._duration:
            self._duration = event.duration
        if event.end and not self._reported:
            self._reported = True
            if self._digit is not None:
                done += (self._press(ended=True),)
        return done

    def receive(self, data: bytes) -> tuple[DigitReceived, ...]:
        """Take a whole RTP packet that carries a telephone-event; return finished presses."""
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return _NO_DIGITS
        return self.receive_payload(packet.timestamp, packet.payload)

    def flush(self) -> tuple[DigitReceived, ...]:
        """Report an event whose end never came (call this when the stream stops)."""
        if self._reported or self._digit is None:
            return _NO_DIGITS
        self._reported = True
        return (self._press(ended=False),)

    def _continues(self, timestamp: int, event: int) -> bool:
        """Whether a new timestamp is the next segment of a key press still held."""
        previous = self._timestamp
        return (
            previous is not None
            and not self._reported
            and event == self._event
            and self._duration == _SEGMENT
            and timestamp == (previous + _SEGMENT) & 0xFFFFFFFF
        )

    def _press(self, *, ended: bool) -> DigitReceived:
        assert self._digit is not None
        duration_ms = round((self._earlier + self._duration) * 1000 / self.rate)
        return DigitReceived(self._digit, duration_ms, ended)


class DtmfSender:
    """Builds the packets of a key press for one RTP stream (its SSRC and sequence)."""

    def __init__(self, ssrc: int, payload_type: int = 101, sequence: int = 0) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sequence = sequence & 0xFFFF
        """Sequence number of the next packet; shared with the voice stream if there is one."""

    def packets(
        self,
        digit: str,
        timestamp: int,
        duration_ms: int = 100,
        volume: int = 10,
        interval: int = 160,
        end_repeats: int = 3,
    ) -> list[bytes]:
        """The packets of one key press, to be sent one every ``interval`` samples.

        Args:
            digit: 0-9, *, #, A-D.
            timestamp: RTP timestamp of the start of the event (8 kHz clock).
            duration_ms: how long the key is held.
            volume: power level in -dBm0 (0..63).
            interval: samples between packets (160 = 20 ms).
            end_repeats: how many times the final packet is sent (RFC 4733 asks for three).

        Returns:
            The RTP packets; the first has the marker bit, the last ``end_repeats`` the E bit.
        """
        event = digit_to_event(digit)
        total = max(interval, duration_ms * 8)
        durations = list(range(interval, total, interval)) + [total] * end_repeats
        packets = []
        for index, duration in enumerate(durations):
            end = index >= len(durations) - end_repeats
            payload = bytes(TelephoneEvent(event, end=end, volume=volume, duration=duration))
            packet = RtpPacket(
                payload_type=self.payload_type,
                sequence_number=self.sequence,
                timestamp=timestamp,
                ssrc=self.ssrc,
                payload=payload,
                marker=index == 0,
            )
            packets.append(bytes(packet))
            self.sequence = (self.sequence + 1) & 0xFFFF
        return packets
