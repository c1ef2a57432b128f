"""RTP packet parsing, serialisation and the in-place header helpers."""

from __future__ import annotations

import random

import pytest

from pbx.media import rtp
from pbx.media.rtp import RtpError, RtpPacket

# A PCMU packet as a phone sends it: marker on the first packet of a talkspurt, pt 0.
CAPTURED = bytes.fromhex("8080 1f40 0001 5f90 deadbeef") + b"\xff" * 160


def test_a_plain_packet_parses_into_its_fields() -> None:
    packet = RtpPacket.parse(CAPTURED)
    assert packet.marker is True
    assert packet.payload_type == 0
    assert packet.sequence_number == 0x1F40
    assert packet.timestamp == 0x15F90
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff" * 160
    assert packet.csrcs == () and packet.extension is None and packet.padding == 0


def test_a_plain_packet_round_trips_byte_for_byte() -> None:
    assert bytes(RtpPacket.parse(CAPTURED)) == CAPTURED


def test_csrcs_extension_and_padding_survive_a_round_trip() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=1,
        payload=b"\xd5" * 3,
        marker=False,
        csrcs=(10, 20),
        extension=(0xBEDE, b"\x10\xaa\x00\x00"),
        padding=5,
    )
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert data[-5:] == b"\x00\x00\x00\x00\x05"
    assert RtpPacket.parse(data) == packet
    assert rtp.payload_bounds(data) == (12 + 8 + 8, len(data) - 5)


def test_fields_wrap_when_serialised() -> None:
    data = bytes(RtpPacket(payload_type=0, sequence_number=65536 + 7, timestamp=2**32 + 9, ssrc=3))
    packet = RtpPacket.parse(data)
    assert (packet.sequence_number, packet.timestamp) == (7, 9)


@pytest.mark.parametrize(
    ("junk", "complaint"),
    [
        (b"", "too short"),
        (b"\x80\x00\x00\x01\x00\x00\x00", "too short"),
        (bytes.fromhex("40000001000000000000000a"), "version 1"),
        (bytes.fromhex("83000001000000000000000a") + b"\x00" * 4, "CSRC"),
        (bytes.fromhex("90000001000000000000000a") + b"\xbe\xde", "extension"),
        (bytes.fromhex("90000001000000000000000a") + b"\xbe\xde\x00\x05", "extension"),
        (bytes.fromhex("a0000001000000000000000a") + b"\x00\x00", "padding"),
        (bytes.fromhex("a0000001000000000000000a") + b"\x00\x09", "padding"),
    ],
)
def test_junk_raises_rtp_error(junk: bytes, complaint: str) -> None:
    with pytest.raises(RtpError, match=complaint):
        RtpPacket.parse(junk)
    with pytest.raises(RtpError):
        rtp.payload_bounds(junk)


def test_helpers_read_header_fields_without_parsing() -> None:
    assert rtp.get_payload_type(CAPTURED) == 0
    assert rtp.get_sequence(CAPTURED) == 0x1F40
    assert rtp.get_timestamp(CAPTURED) == 0x15F90
    assert rtp.get_ssrc(CAPTURED) == 0xDEADBEEF


def test_helpers_rewrite_header_fields_in_place_and_leave_the_rest() -> None:
    buf = bytearray(CAPTURED)
    rtp.set_payload_type(buf, 8)
    rtp.set_sequence(buf, 70000)
    rtp.set_timestamp(buf, 2**32 + 160)
    rtp.set_ssrc(buf, 0x01020304)
    packet = RtpPacket.parse(buf)
    assert packet.payload_type == 8 and packet.marker is True
    assert packet.sequence_number == 70000 - 65536
    assert packet.timestamp == 160
    assert packet.ssrc == 0x01020304
    assert packet.payload == b"\xff" * 160
    rtp.set_marker(buf, False)
    assert RtpPacket.parse(buf).marker is False and rtp.get_payload_type(buf) == 8
    rtp.set_marker(buf)
    assert RtpPacket.parse(buf).marker is True


def test_rtcp_is_recognised_by_its_packet_type() -> None:
    sender_report = bytes.fromhex("80c8 0006 deadbeef") + bytes(20)
    receiver_report = bytes.fromhex("81c9 0007 deadbeef") + bytes(24)
    bye = bytes.fromhex("81cb 0001 deadbeef")
    assert rtp.is_rtcp(sender_report) and rtp.is_rtcp(receiver_report) and rtp.is_rtcp(bye)
    assert not rtp.is_rtcp(CAPTURED)
    assert not rtp.is_rtcp(bytes.fromhex("80c7 0001 deadbeef"))  # pt 199 is not RTCP
    assert not rtp.is_rtcp(b"\x80\xc8")


def test_random_datagrams_either_parse_or_raise_rtp_error() -> None:
    rng = random.Random(4733)
    for _ in range(5000):
        data = bytes([0x80 | rng.randrange(64)]) + rng.randbytes(rng.randrange(40))
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            continue
        assert rtp.payload_bounds(data)[1] - rtp.payload_bounds(data)[0] == len(packet.payload)
