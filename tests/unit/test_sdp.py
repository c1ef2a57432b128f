"""SDP parsing, round trips on real offers, and RFC 3264 offer/answer."""

from __future__ import annotations

import random

import pytest

from pbx.sip.sdp import (
    Attribute,
    Connection,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    audio_endpoint,
    codecs,
    direction,
    make_offer,
    negotiate,
)


def crlf(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode()


# baresip 0.6.3's INVITE body, as captured in baresip issue #813 (address changed).
BARESIP = crlf(
    "v=0",
    "o=- 1140145081 1649997976 IN IP4 10.0.2.15",
    "s=-",
    "c=IN IP4 10.0.2.15",
    "t=0 0",
    "a=tool:baresip 0.6.3",
    "m=audio 16906 RTP/AVP 0 8 101",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=sendrecv",
    "a=label:1",
    "a=rtcp-rsize",
    "a=ssrc:1613256890 cname:sip:12054849118@sip.ringcentral.com",
    "a=ptime:20",
)

# linphone's audio offer (session lines as in linphone-android issue #493, media lines as
# linphonec sends them in liblinphone issue #157): static types without rtpmap, and three
# telephone-event rates of which only PT 100 is 8 kHz.
LINPHONE = crlf(
    "v=0",
    "o=1003 3357 3332 IN IP4 192.168.3.117",
    "s=Talk",
    "c=IN IP4 192.168.3.117",
    "b=AS:8000",
    "t=0 0",
    "a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics",
    "m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 useinbandfec=1",
    "a=rtpmap:97 speex/16000",
    "a=fmtp:97 vbr=on",
    "a=rtpmap:98 speex/8000",
    "a=fmtp:98 vbr=on",
    "a=fmtp:18 annexb=yes",
    "a=rtpmap:101 telephone-event/48000",
    "a=rtpmap:99 telephone-event/16000",
    "a=rtpmap:100 telephone-event/8000",
    "a=rtcp-fb:* trr-int 1000",
    "a=rtcp-fb:* ccm tmmbr",
)

# SIPp's built-in uac scenario, with its [keywords] filled in.
SIPP = crlf(
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
)

# pjsua's offer with a second (text) stream and media-level c= (arnonym/ha-plugins issue #205).
PJSUA = crlf(
    "v=0",
    "o=- 3993637276 3993637277 IN IP4 192.168.1.62",
    "s=pjmedia",
    "b=AS:117",
    "t=0 0",
    "a=X-nat:0",
    "m=audio 4035 RTP/AVP 0 121",
    "c=IN IP4 192.168.1.62",
    "b=TIAS:96000",
    "a=ssrc:1524161090 cname:2faee9694945f47d",
    "a=rtcp:4020 IN IP4 192.168.1.62",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:121 telephone-event/8000",
    "a=fmtp:121 0-16",
    "a=sendrecv",
    "m=text 4011 RTP/AVP 100 98",
    "c=IN IP4 192.168.1.62",
    "a=rtpmap:100 red/1000",
    "a=fmtp:100 98/98/98",
    "a=rtpmap:98 t140/1000",
    "a=sendrecv",
)

# A PCMA-only offer (sipwise/rtpengine issue #1214).
PCMA_ONLY = crlf(
    "v=0",
    "o=Z 1616168134166 1 IN IP4 192.168.68.109",
    "s=Z",
    "c=IN IP4 192.168.68.109",
    "t=0 0",
    "m=audio 8000 RTP/AVP 8 101",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-11,16",
    "a=sendrecv",
)


def held(body: bytes, old: str, new: str) -> SessionDescription:
    return SessionDescription.parse(body.decode().replace(old, new))


def answer(offer: SessionDescription | bytes, **kwargs):
    if isinstance(offer, bytes):
        offer = SessionDescription.parse(offer)
    kwargs.setdefault("local_ip", "192.0.2.1")
    kwargs.setdefault("local_port", 40000)
    return negotiate(offer, session_id=7, version=1, **kwargs)


# --- parsing and round trips ----------------------------------------------------------------


@pytest.mark.parametrize("body", [BARESIP, LINPHONE, SIPP, PJSUA, PCMA_ONLY])
def test_real_offers_round_trip_byte_for_byte(body):
    assert bytes(SessionDescription.parse(body)) == body


def test_lf_only_bodies_parse_and_come_out_with_crlf():
    sdp = SessionDescription.parse(SIPP.replace(b"\r\n", b"\n"))
    assert bytes(sdp) == SIPP


def test_the_parsed_fields_are_what_was_sent():
    sdp = SessionDescription.parse(BARESIP)
    assert sdp.origin.session_id == 1140145081 and sdp.origin.version == 1649997976
    assert sdp.connection == Connection("10.0.2.15")
    assert sdp.attributes == [Attribute("tool", "baresip 0.6.3")]
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.proto) == ("audio", 16906, "RTP/AVP")
    assert audio.fmtp(101) == "0-15"
    assert audio.attribute("ptime") == "20"


def test_latin1_bytes_are_read_rather_than_refused():
    body = SIPP.replace(b"s=-", "s=Chiamata è".encode("latin-1"))
    assert SessionDescription.parse(body).name == "Chiamata è"


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"hello",
        b"v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\ns=-\r\nt=0 0\r\n",
        b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio abc RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP PCMU\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 200\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP \xc2\xb2\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\nt=0 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nX=1\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nq=1\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\na=:x\r\n",
    ],
)
def test_junk_raises_sdp_error(junk):
    with pytest.raises(SdpError):
        SessionDescription.parse(junk)


# --- helpers --------------------------------------------------------------------------------


def test_the_audio_endpoint_comes_from_session_or_media_level_c():
    assert audio_endpoint(SessionDescription.parse(BARESIP)) == ("10.0.2.15", 16906)
    assert audio_endpoint(SessionDescription.parse(PJSUA)) == ("192.168.1.62", 4035)


def test_the_audio_endpoint_needs_an_audio_stream():
    with pytest.raises(SdpError):
        audio_endpoint(held(SIPP, "m=audio 6000", "m=audio 0"))


def test_static_payload_types_are_named_without_rtpmap():
    assert codecs(SessionDescription.parse(LINPHONE)) == [
        (96, "opus", 48000),
        (97, "speex", 16000),
        (98, "speex", 8000),
        (0, "PCMU", 8000),
        (8, "PCMA", 8000),
        (18, "G729", 8000),
        (101, "telephone-event", 48000),
        (99, "telephone-event", 16000),
        (100, "telephone-event", 8000),
    ]


def test_a_dynamic_payload_type_without_rtpmap_is_left_out():
    sdp = held(SIPP, "RTP/AVP 0", "RTP/AVP 0 96")
    assert codecs(sdp) == [(0, "PCMU", 8000)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a=sendrecv", "a=sendrecv", "sendrecv"),
        ("a=sendrecv", "a=sendonly", "sendonly"),
        ("a=sendrecv", "a=recvonly", "recvonly"),
        ("a=sendrecv", "a=inactive", "inactive"),
        ("c=IN IP4 10.0.2.15", "c=IN IP4 0.0.0.0", "sendonly"),
    ],
)
def test_the_direction_of_an_offer(old, new, expected):
    assert direction(held(BARESIP, old, new)) == expected


def test_c_zero_with_recvonly_is_inactive():
    sdp = held(BARESIP, "c=IN IP4 10.0.2.15", "c=IN IP4 0.0.0.0")
    sdp.media[0].attributes.append(Attribute("recvonly"))
    assert direction(sdp) == "inactive"


def test_a_media_level_direction_overrides_the_session_level_one():
    sdp = held(SIPP, "t=0 0", "t=0 0\r\na=sendonly")
    assert direction(sdp) == "sendonly"
    sdp.media[0].attributes.append(Attribute("sendrecv"))
    assert direction(sdp) == "sendrecv"


def test_no_direction_attribute_means_sendrecv():
    assert direction(SessionDescription.parse(SIPP)) == "sendrecv"


# --- negotiation ----------------------------------------------------------------------------


def test_baresip_is_answered_with_pcmu_and_its_telephone_event():
    result = answer(BARESIP)
    assert (result.payload_type, result.codec, result.telephone_event) == (0, "PCMU", 101)
    assert result.direction == "sendrecv"
    assert result.remote == ("10.0.2.15", 16906)
    assert result.sdp.media[0].formats == ["0", "8", "101"]


def test_the_answer_to_sipp_is_exactly_this():
    result = answer(SIPP)
    assert bytes(result.sdp) == crlf(
        "v=0",
        "o=- 7 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    )
    assert result.telephone_event is None


def test_linphone_gets_g711_and_the_8khz_telephone_event():
    result = answer(LINPHONE)
    assert (result.payload_type, result.codec) == (0, "PCMU")
    assert result.telephone_event == 100
    audio = result.sdp.media[0]
    assert audio.formats == ["0", "8", "100"]
    assert audio.fmtp(100) == "0-15"  # no fmtp offered: RFC 4733 default


def test_the_offerers_codec_order_wins():
    result = answer(held(BARESIP, "RTP/AVP 0 8 101", "RTP/AVP 8 0 101"))
    assert (result.payload_type, result.codec) == (8, "PCMA")
    assert result.sdp.media[0].formats == ["8", "0", "101"]


def test_our_supported_list_limits_the_answer():
    result = answer(BARESIP, supported=("PCMA",))
    assert (result.payload_type, result.codec) == (8, "PCMA")
    assert result.sdp.media[0].formats == ["8", "101"]


def test_a_pcma_only_offer_is_answered_with_pcma_and_events_0_to_11():
    result = answer(PCMA_ONLY)
    assert (result.payload_type, result.codec, result.telephone_event) == (8, "PCMA", 101)
    assert result.sdp.media[0].fmtp(101) == "0-11"


def test_telephone_events_0_to_16_are_answered_0_to_15():
    result = answer(PJSUA)
    assert result.telephone_event == 121
    assert result.sdp.media[0].fmtp(121) == "0-15"


def test_telephone_event_with_only_flash_is_not_taken():
    result = answer(held(PCMA_ONLY, "a=fmtp:101 0-11,16", "a=fmtp:101 16"))
    assert result.telephone_event is None
    assert result.sdp.media[0].formats == ["8"]


def test_other_streams_are_rejected_with_port_zero():
    result = answer(PJSUA)
    audio, text = result.sdp.media
    assert audio.port == 40000
    assert (text.kind, text.port, text.proto, text.formats) == ("text", 0, "RTP/AVP", ["100", "98"])


@pytest.mark.parametrize(
    ("offered", "answered"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
def test_hold_offers_get_the_mirrored_direction(offered, answered):
    result = answer(held(BARESIP, "a=sendrecv", f"a={offered}"))
    assert result.direction == answered
    assert direction(result.sdp) == answered


def test_an_rfc2543_hold_with_c_zero_is_answered_recvonly():
    result = answer(held(BARESIP, "c=IN IP4 10.0.2.15", "c=IN IP4 0.0.0.0"))
    assert result.direction == "recvonly"


@pytest.mark.parametrize(
    ("offered", "wanted", "answered"),
    [
        ("sendrecv", "sendonly", "sendonly"),
        ("sendonly", "sendonly", "inactive"),
        ("sendrecv", "inactive", "inactive"),
        ("recvonly", "recvonly", "inactive"),
    ],
)
def test_our_own_direction_is_combined_with_the_offer(offered, wanted, answered):
    result = answer(held(BARESIP, "a=sendrecv", f"a={offered}"), direction=wanted)
    assert result.direction == answered


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("RTP/AVP 0 8 101", "RTP/AVP 101"),
        ("m=audio 16906", "m=audio 0"),
        ("m=audio 16906 RTP/AVP", "m=audio 16906 RTP/SAVP"),
        ("m=audio", "m=video"),
    ],
)
def test_no_common_codec_raises(old, new):
    with pytest.raises(NoCommonCodec):
        answer(held(BARESIP, old, new))


def test_g711_at_another_clock_rate_is_not_common():
    with pytest.raises(NoCommonCodec):
        answer(held(SIPP, "a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMU/16000"))


def test_an_opus_and_g729_offer_has_no_common_codec():
    offer = held(LINPHONE, "RTP/AVP 96 97 98 0 8 18 101 99 100", "RTP/AVP 96 18 100")
    with pytest.raises(NoCommonCodec):
        answer(offer)


def test_no_common_codec_is_an_sdp_error():
    assert issubclass(NoCommonCodec, SdpError) and issubclass(SdpError, ValueError)


def test_an_ipv6_answer_says_ip6():
    result = answer(SIPP, local_ip="2001:db8::1")
    assert str(result.sdp.connection) == "IN IP6 2001:db8::1"


# --- our offers -----------------------------------------------------------------------------


def test_our_offer_is_exactly_this():
    offer = make_offer("192.0.2.1", 30000, session_id=42, version=3)
    assert bytes(offer) == crlf(
        "v=0",
        "o=- 42 3 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_our_hold_offer_is_sendonly_and_answered_recvonly():
    offer = make_offer("192.0.2.1", 30000, ("PCMA",), session_id=1, version=2, direction="sendonly")
    assert direction(offer) == "sendonly"
    result = answer(SessionDescription.parse(bytes(offer)))
    assert (result.codec, result.direction, result.telephone_event) == ("PCMA", "recvonly", 101)


def test_an_offer_without_telephone_event_lists_only_codecs():
    offer = make_offer("192.0.2.1", 30000, telephone_event_pt=None, session_id=1, version=1)
    assert offer.media[0].formats == ["0", "8"]


def test_offering_a_codec_without_a_static_type_is_a_bug():
    with pytest.raises(ValueError):
        make_offer("192.0.2.1", 30000, ("opus",), session_id=1, version=1)


def test_mangled_offers_raise_only_sdp_error():
    rng = random.Random(4566)
    alphabet = b"0123456789 /:=-,\r\nacmov\xff."
    for _ in range(2000):
        body = bytearray(rng.choice([BARESIP, LINPHONE, SIPP, PJSUA, PCMA_ONLY]))
        for _ in range(rng.randint(1, 5)):
            body[rng.randrange(len(body))] = rng.choice(alphabet)
        try:
            sdp = SessionDescription.parse(bytes(body))
            codecs(sdp)
            direction(sdp)
            answer(sdp)
        except SdpError:
            pass
