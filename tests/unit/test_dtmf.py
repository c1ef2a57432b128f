"""RFC 4733 telephone-event payloads, receiver and sender."""

from __future__ import annotations

import pytest

from pbx.media.dtmf import (
    DigitReceived,
    DtmfError,
    DtmfReceiver,
    DtmfSender,
    TelephoneEvent,
    digit_to_event,
)
from pbx.media.rtp import RtpPacket


def test_a_payload_parses_into_event_end_volume_and_duration() -> None:
    # Digit 5, end bit, volume 10, duration 800: the shape of RFC 4733's examples.
    event = TelephoneEvent.parse(bytes.fromhex("05 8a 0320"))
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.digit == "5"


def test_a_payload_round_trips_and_ignores_the_reserved_bit() -> None:
    event = TelephoneEvent(event=11, end=False, volume=63, duration=65535)
    assert bytes(event) == bytes.fromhex("0b 3f ffff")
    assert TelephoneEvent.parse(bytes.fromhex("0b 7f ffff")) == event


def test_a_short_payload_is_an_error() -> None:
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(b"\x05\x8a\x03")


def test_events_map_to_the_keypad() -> None:
    digits = [TelephoneEvent(code).digit for code in range(17)]
    assert "".join(d for d in digits if d) == "0123456789*#ABCD"
    assert digits[16] is None  # flash
    assert digit_to_event("#") == 11 and digit_to_event("d") == 15
    with pytest.raises(ValueError, match="not a DTMF digit"):
        digit_to_event("x")


def test_the_sender_builds_a_marked_start_growing_durations_and_three_ends() -> None:
    sender = DtmfSender(ssrc=0x1234, payload_type=101, sequence=65534)
    packets = [RtpPacket.parse(p) for p in sender.packets("7", timestamp=4000, duration_ms=100)]
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert {p.timestamp for p in packets} == {4000}
    assert {p.payload_type for p in packets} == {101}
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1, 2, 3, 4]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {7}
    assert sender.sequence == 5


def received(receiver: DtmfReceiver, packets: list[bytes]) -> list[DigitReceived]:
    return [press for packet in packets for press in receiver.receive(packet)]


def test_the_receiver_reports_each_key_press_once_with_its_duration() -> None:
    sender, receiver = DtmfSender(ssrc=1), DtmfReceiver()
    packets = [
        packet
        for index, (digit, ms) in enumerate((("1", 100), ("2", 40), ("#", 250)))
        for packet in sender.packets(digit, timestamp=10000 * index, duration_ms=ms)
    ]
    assert received(receiver, packets) == [
        DigitReceived("1", 100),
        DigitReceived("2", 40),
        DigitReceived("#", 250),
    ]


def test_the_receiver_reports_a_repeated_digit_twice() -> None:
    sender, receiver = DtmfSender(ssrc=1), DtmfReceiver()
    packets = sender.packets("5", timestamp=0) + sender.packets("5", timestamp=1600)
    assert [press.digit for press in received(receiver, packets)] == ["5", "5"]


def test_the_receiver_reports_a_digit_whose_end_packets_were_lost_when_the_next_starts() -> None:
    sender, receiver = DtmfSender(ssrc=1), DtmfReceiver()
    first = sender.packets("3", timestamp=0, duration_ms=100)[:-3]
    second = sender.packets("4", timestamp=1600)
    out = [receiver.receive(p) for p in first + second]
    assert out[len(first)] == (DigitReceived("3", 80, ended=False),)  # as soon as "4" starts
    assert [press.digit for presses in out for press in presses] == ["3", "4"]


def test_the_receiver_can_be_flushed_when_the_stream_stops_mid_event() -> None:
    sender, receiver = DtmfSender(ssrc=1), DtmfReceiver()
    for packet in sender.packets("9", timestamp=0)[:2]:
        assert receiver.receive(packet) == ()
    assert receiver.flush() == (DigitReceived("9", 40, ended=False),)
    assert receiver.flush() == ()


def test_the_receiver_takes_the_longest_duration_even_when_packets_come_out_of_order() -> None:
    sender, receiver = DtmfSender(ssrc=1), DtmfReceiver()
    packets = sender.packets("6", timestamp=0, duration_ms=100)
    packets[3], packets[5] = packets[5], packets[3]  # an end packet overtakes a middle one
    assert received(receiver, packets) == [DigitReceived("6", 100)]


def test_a_key_held_longer_than_one_segment_is_one_press() -> None:
    # RFC 4733 2.5.1.3: past 0xFFFF samples (8.2 s) the sender starts a new segment at the old
    # timestamp + 0xFFFF, same event; the receiver adds the segments up.
    receiver = DtmfReceiver()
    first = [
        receiver.receive_payload(0, bytes(TelephoneEvent(1, duration=d))) for d in (160, 0xFFFF)
    ]
    second = receiver.receive_payload(0xFFFF, bytes(TelephoneEvent(1, end=True, duration=8000)))
    assert first == [(), ()]
    assert second == (DigitReceived("1", round((0xFFFF + 8000) / 8)),)


def test_a_new_event_at_the_segment_boundary_is_still_a_new_press_when_the_key_differs() -> None:
    receiver = DtmfReceiver()
    receiver.receive_payload(0, bytes(TelephoneEvent(1, duration=0xFFFF)))
    presses = receiver.receive_payload(0xFFFF, bytes(TelephoneEvent(2, end=True, duration=800)))
    assert presses == (DigitReceived("1", 8192, ended=False), DigitReceived("2", 100))


def test_the_durations_follow_the_negotiated_event_clock() -> None:
    receiver = DtmfReceiver(rate=16000)
    presses = receiver.receive_payload(0, bytes(TelephoneEvent(0, end=True, duration=1600)))
    assert presses == (DigitReceived("0", 100),)


def test_the_receiver_ignores_junk_and_non_digit_events() -> None:
    receiver = DtmfReceiver()
    assert receiver.receive(b"\x00junk") == ()
    assert receiver.receive_payload(0, b"\x01") == ()
    assert receiver.receive_payload(160, bytes(TelephoneEvent(16, end=True))) == ()
    assert receiver.flush() == ()
