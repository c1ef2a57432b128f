"""Parsing, writing and answering whole SIP messages; stream framing; request validation."""

from __future__ import annotations

import random

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.framing import StreamFramer
from pbx.sip.headers import CSeq, Headers
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.uri import SipUri
from pbx.sip.validate import check_request

SDP = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 192.168.1.20\r\ns=-\r\n"
    b"c=IN IP4 192.168.1.20\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

# Shaped like SIPp's uac scenario sends it.
SIPP_INVITE = (
    b"INVITE sip:service@192.168.1.10:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.20:5061;branch=z9hG4bK-4012-1-0\r\n"
    b"From: sipp <sip:sipp@192.168.1.20:5061>;tag=4012SIPpTag001\r\n"
    b"To: service <sip:service@192.168.1.10:5060>\r\n"
    b"Call-ID: 1-4012@192.168.1.20\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: sip:sipp@192.168.1.20:5061\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: Performance Test\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP) + SDP
)

# Shaped like baresip registers.
BARESIP_REGISTER = (
    b"REGISTER sip:192.168.1.10 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.30:44120;branch=z9hG4bK1d2e3f4a5b6c7d8e;rport\r\n"
    b"Contact: <sip:101-0x55d5c5f0e8a0@192.168.1.30:44120>;expires=3600\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:101@192.168.1.10>\r\n"
    b"From: <sip:101@192.168.1.10>;tag=8f3a2c1d0e9b7a65\r\n"
    b"Call-ID: 3c2b1a0f9e8d7c6b\r\n"
    b"CSeq: 48213 REGISTER\r\n"
    b"User-Agent: baresip v3.10.1 (x86_64/linux)\r\n"
    b"Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,UPDATE,REFER\r\n"
    b"Supported: replaces,norefersub\r\n"
    b"Content-Length: 0\r\n\r\n"
)

OK_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.168.1.20:5061;branch=z9hG4bK-4012-1-0;received=192.168.1.20;rport=5061\r\n"
    b"From: sipp <sip:sipp@192.168.1.20:5061>;tag=4012SIPpTag001\r\n"
    b"To: service <sip:service@192.168.1.10:5060>;tag=4013SIPpTag012\r\n"
    b"Call-ID: 1-4012@192.168.1.20\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:192.168.1.10:5060;transport=UDP>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: %d\r\n\r\n" % len(SDP) + SDP
)


def _with(message: bytes, old: bytes, new: bytes) -> bytes:
    assert old in message
    return message.replace(old, new, 1)


@pytest.mark.parametrize("wire", [SIPP_INVITE, BARESIP_REGISTER, OK_200])
def test_it_writes_real_phone_traffic_back_byte_for_byte(wire):
    assert bytes(parse_message(wire)) == wire


def test_it_exposes_the_parsed_parts_of_an_invite():
    req = parse_message(SIPP_INVITE)

    assert isinstance(req, Request)
    assert req.method == "INVITE"
    assert req.request_uri == SipUri(user="service", host="192.168.1.10", port=5060)
    assert req.call_id == "1-4012@192.168.1.20"
    assert req.cseq == CSeq(1, "INVITE")
    assert req.branch == "z9hG4bK-4012-1-0"
    assert req.top_via.port == 5061
    assert req.from_addr.tag == "4012SIPpTag001"
    assert req.to_addr.tag is None
    assert req.body == SDP


def test_it_exposes_the_parsed_parts_of_a_response():
    resp = parse_message(OK_200)

    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (200, "OK")
    assert resp.top_via.rport == 5061
    assert resp.to_addr.tag == "4013SIPpTag012"


def test_it_expands_compact_headers_and_writes_canonical_names():
    wire = b"".join(
        [
            b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\n",
            b"t: <sip:c@d>;tag=2\r\ni: id1\r\ncseq: 2 BYE\r\nl: 0\r\n\r\n",
        ]
    )

    out = bytes(parse_message(wire))

    assert out.startswith(b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: ")
    assert b"\r\nCall-ID: id1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n" in out


def test_it_unfolds_continuation_lines():
    wire = _with(BARESIP_REGISTER, b"Supported: replaces,", b"Supported: replaces,\r\n\t ")

    req = parse_message(wire)

    assert req.headers.get_all("Supported") == ["replaces", "norefersub"]


def test_it_accepts_bare_line_feeds_and_leading_keepalive_newlines():
    req = parse_message(b"\r\n\r\n" + BARESIP_REGISTER.replace(b"\r\n", b"\n"))

    assert req.method == "REGISTER"
    assert req.call_id == "3c2b1a0f9e8d7c6b"


def test_it_truncates_a_body_longer_than_content_length():
    assert parse_message(SIPP_INVITE + b"garbage").body == SDP


def test_it_rejects_a_body_shorter_than_content_length():
    with pytest.raises(SipParseError) as info:
        parse_message(SIPP_INVITE[:-10])

    assert info.value.status == 400
    assert "Content-Length" in info.value.reason


def test_it_takes_the_rest_of_a_datagram_as_body_without_content_length():
    req = parse_message(_with(SIPP_INVITE, b"Content-Length: 135\r\n", b""))

    assert req.body == SDP
    assert bytes(req).count(b"Content-Length: 135\r\n") == 1


def test_it_answers_505_to_another_sip_version_with_a_partial_request():
    with pytest.raises(SipParseError) as info:
        parse_message(_with(SIPP_INVITE, b"SIP/2.0\r\n", b"SIP/3.0\r\n"))

    assert info.value.status == 505
    response = make_response(info.value.partial, 505)
    assert response.call_id == "1-4012@192.168.1.20"
    assert response.branch == "z9hG4bK-4012-1-0"


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"CSeq: 1 INVITE", b"CSeq: 1 BYE", "CSeq method"),
        (b"CSeq: 1 INVITE", b"CSeq: one INVITE", "CSeq"),
        (b"Call-ID: 1-4012@192.168.1.20", b"Call-ID: a b", "Call-ID"),
        (b"Call-ID: 1-4012@192.168.1.20\r\n", b"", "Call-ID"),
        (b"Via: SIP/2.0/UDP 192.168.1.20:5061", b"Via: SIP/2.0/UDP 192.168.1.20:x", "Via"),
        (b"From: sipp <", b"From: sipp, jr <", "From"),
        (b"To: service <sip:", b'To: "service <sip:', "To"),
        (b"Content-Length: 135", b"Content-Length: -1", "Content-Length"),
        (b"Content-Length: 135", b"Content-Length: 12a", "Content-Length"),
        (b"Max-Forwards: 70", b"Max-Forwards 70", "header line"),
        (b"INVITE sip:service@", b"INVITE  sip:service@", "request line"),
        (b"Subject: Performance Test", b"Call-ID: other", "Call-ID"),
    ],
)
def test_it_rejects_a_bad_request_with_400_saying_what_is_wrong(old, new, words):
    with pytest.raises(SipParseError) as info:
        parse_message(_with(SIPP_INVITE, old, new))

    assert info.value.status == 400
    assert words in info.value.reason
    assert info.value.partial is not None
    assert make_response(info.value.partial, 400).status == 400


@pytest.mark.parametrize(
    "line", [b"SIP/2.0 099 Early", b"SIP/2.0 700 Late", b"SIP/2.0 20 OK", b"SIP/2.0"]
)
def test_it_rejects_a_status_line_with_a_bad_code(line):
    with pytest.raises(SipParseError) as info:
        parse_message(_with(OK_200, b"SIP/2.0 200 OK", line))

    assert info.value.partial is None


def test_it_rejects_a_message_over_64_kib():
    with pytest.raises(SipParseError) as info:
        parse_message(_with(SIPP_INVITE, b"Subject: ", b"Subject: " + b"x" * 66000))

    assert info.value.status == 513


def test_it_rejects_empty_and_garbage_datagrams():
    for data in (b"", b"\r\n\r\n", b"\x00\xff\xfe", b"hello world\r\n\r\n"):
        with pytest.raises(SipParseError):
            parse_message(data)


def test_make_response_copies_the_transaction_headers_and_adds_a_to_tag():
    req = parse_message(SIPP_INVITE)

    resp = make_response(req, 180, to_tag="abc", headers=[("Contact", "<sip:pbx@192.168.1.10>")])

    assert (resp.status, resp.reason) == (180, "Ringing")
    assert [name for name, _ in resp.headers.items()] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
    ]
    assert resp.to_addr.tag == "abc"
    assert resp.from_addr.tag == "4012SIPpTag001"
    assert bytes(parse_message(bytes(resp))) == bytes(resp)


def test_make_response_keeps_an_existing_to_tag():
    req = parse_message(
        _with(BARESIP_REGISTER, b"To: <sip:101@192.168.1.10>", b"To: <sip:1@x>;tag=old")
    )

    assert make_response(req, 200, to_tag="new").to_addr.tag == "old"


def test_make_response_copies_timestamp_only_on_100():
    req = parse_message(_with(SIPP_INVITE, b"Subject: Performance Test", b"Timestamp: 54"))

    assert make_response(req, 100).headers.get("Timestamp") == "54"
    assert make_response(req, 180).headers.get("Timestamp") is None


def test_it_writes_the_real_body_length_whatever_the_header_said():
    resp = Response(200, "OK", Headers([("Content-Length", "999")]), b"abc")

    assert bytes(resp) == b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"


def test_the_framer_cuts_a_stream_into_messages_across_chunk_boundaries():
    stream = b"\r\n\r\n" + SIPP_INVITE + b"\r\n" + BARESIP_REGISTER
    framer = StreamFramer()

    messages = []
    for i in range(0, len(stream), 7):
        messages += framer.feed(stream[i : i + 7])

    assert messages == [SIPP_INVITE, BARESIP_REGISTER]
    assert framer.buffered == 0


def test_the_framer_waits_for_the_whole_body():
    framer = StreamFramer()

    assert framer.feed(SIPP_INVITE[:-1]) == []
    assert framer.feed(SIPP_INVITE[-1:]) == [SIPP_INVITE]


@pytest.mark.parametrize(
    "wire",
    [
        _with(SIPP_INVITE, b"Content-Length: 135\r\n", b""),
        _with(SIPP_INVITE, b"Content-Length: 135", b"Content-Length: x"),
        _with(SIPP_INVITE, b"Max-Forwards: 70", b"l: 135"),
    ],
)
def test_the_framer_rejects_a_missing_or_bad_content_length(wire):
    framer = StreamFramer()

    with pytest.raises(SipParseError):
        framer.feed(wire)
    with pytest.raises(RuntimeError):
        framer.feed(b"more")


def test_the_framer_rejects_an_endless_header_section():
    with pytest.raises(SipParseError) as info:
        StreamFramer(max_message_size=1000).feed(b"INVITE sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 300)

    assert info.value.status == 513


def test_check_request_accepts_ordinary_phone_requests():
    assert check_request(parse_message(SIPP_INVITE)) is None
    assert check_request(parse_message(BARESIP_REGISTER)) is None


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        (b"Max-Forwards: 70", b"Max-Forwards: 0", 483),
        (b"Max-Forwards: 70", b"Max-Forwards: many", 400),
        (b"INVITE sip:service@192.168.1.10:5060", b"INVITE tel:+3906123", 416),
        (b"Subject: Performance Test", b"Require: 100rel, timer", 420),
        (b"Content-Type: application/sdp", b"Content-Type: text/html", 415),
        (b"Content-Type: application/sdp\r\n", b"", 400),
        (b"Subject: Performance Test", b"Content-Encoding: gzip", 415),
        (b"Subject: Performance Test", b"Accept: text/plain", 406),
        (b"Subject: Performance Test", b"Max-Forwards: 69", 400),
        (b"Contact: sip:sipp@192.168.1.20:5061", b"Contact: *", 400),
        (b"Contact: sip:sipp@192.168.1.20:5061", b"Contact: <sip:a b>", 400),
        (b"Subject: Performance Test", b"Expires: soon", 400),
        (b"Subject: Performance Test", b"Route: sip:x?y", 400),
    ],
)
def test_check_request_answers_what_a_uas_must_refuse(old, new, status):
    response = check_request(parse_message(_with(SIPP_INVITE, old, new)), to_tag="t1")

    assert response is not None
    assert response.status == status
    assert response.to_addr.tag == "t1"


def test_check_request_lists_unsupported_extensions_and_honours_supported_ones():
    req = parse_message(_with(SIPP_INVITE, b"Subject: Performance Test", b"Require: 100rel, timer"))

    assert check_request(req).headers.get("Unsupported") == "100rel, timer"
    assert check_request(req, supported=frozenset({"100rel", "timer"})) is None


def test_check_request_lets_options_with_max_forwards_zero_through():
    options = _with(BARESIP_REGISTER, b"REGISTER sip:192.168.1.10", b"OPTIONS sip:192.168.1.10")
    options = _with(options, b"48213 REGISTER", b"48213 OPTIONS")

    assert (
        check_request(parse_message(_with(options, b"Max-Forwards: 70", b"Max-Forwards: 0")))
        is None
    )


def _multipart_invite(part_type: bytes) -> bytes:
    body = b"--b1\r\nContent-Type: " + part_type + b"\r\n\r\n" + SDP + b"\r\n--b1--\r\n"
    head = SIPP_INVITE.split(b"Content-Type")[0]
    return (
        head
        + b'Content-Type: multipart/mixed;boundary="b1"\r\nContent-Length: %d\r\n\r\n' % len(body)
        + body
    )


def test_check_request_accepts_multipart_bodies_that_carry_sdp():
    assert check_request(parse_message(_multipart_invite(b"application/sdp"))) is None
    assert check_request(parse_message(_multipart_invite(b"text/plain"))).status == 415


def test_check_request_allows_a_wildcard_contact_only_to_unregister():
    unregister = _with(
        BARESIP_REGISTER,
        b"Contact: <sip:101-0x55d5c5f0e8a0@192.168.1.30:44120>;expires=3600",
        b"Contact: *",
    )

    assert check_request(parse_message(unregister)).status == 400
    assert (
        check_request(parse_message(_with(unregister, b"Max-Forwards: 70", b"Expires: 0"))) is None
    )


def test_it_raises_only_sip_parse_error_on_mangled_input():
    rnd = random.Random(4475)
    alphabet = b' \t\r\n:;,<>"\\%@=?/[]*09aSIP\x00\xff'
    seeds = [SIPP_INVITE, BARESIP_REGISTER, OK_200]
    for _ in range(3000):
        data = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 4)):
            pos = rnd.randrange(len(data))
            if rnd.random() < 0.5:
                data[pos] = rnd.choice(alphabet)
            else:
                del data[pos : pos + rnd.randint(1, 12)]
        try:
            message = parse_message(bytes(data))
        except SipParseError:
            continue
        assert bytes(parse_message(bytes(message))) == bytes(message)
        if isinstance(message, Request):
            check_request(message)
