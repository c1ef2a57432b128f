"""SDP (RFC 4566 subset) with RFC 3264 offer/answer for G.711 and RFC 4733 telephone-event.

``SessionDescription.parse`` reads what real phones send and keeps every line it does not model,
so ``bytes(SessionDescription.parse(x)) == x`` for offers written in RFC 4566 line order.
Remote junk raises ``SdpError`` (a ``ValueError``); an offer we cannot serve raises
``NoCommonCodec`` (the engine answers 488).

Hold: RFC 3264 8.4 says ``c=0.0.0.0`` (the RFC 2543 way of holding) means "neither RTP nor RTCP
should be sent to the peer", so ``direction`` reports such a stream as not receiving: sendrecv
becomes sendonly and recvonly becomes inactive. Phones still send it in re-INVITEs to hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "Answer",
    "Attribute",
    "Connection",
    "Media",
    "NoCommonCodec",
    "Origin",
    "SdpError",
    "SessionDescription",
    "audio_endpoint",
    "audio_stream",
    "codecs",
    "direction",
    "make_offer",
    "negotiate",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3551 static payload types we may meet without an rtpmap: (name, clock rate).
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
}
_STATIC_BY_NAME = {name: pt for pt, (name, _rate) in STATIC_PAYLOADS.items()}
# DTMF digits 0-9, *, #, A-D: what the media layer can send and detect (RFC 4733 3.2).
_OUR_EVENTS = frozenset(range(16))
# RFC 4566 5: the fixed order of session-level and media-level lines we do not model.
_SESSION_EARLY, _SESSION_MIDDLE, _SESSION_LATE = "iuep", "b", "zk"


class SdpError(ValueError):
    """An SDP body from the network that cannot be understood."""


class NoCommonCodec(SdpError):
    """The offer has no audio stream with a codec we support: answer 488."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """An ``a=`` line: ``a=name`` (flag) or ``a=name:value``."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Connection:
    """A ``c=`` line; ``address`` keeps any multicast ``/ttl`` suffix as sent."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @property
    def host(self) -> str:
        """The address without a multicast suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Origin:
    """The ``o=`` line."""

    username: str
    session_id: int
    version: int
    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(slots=True)
class Media:
    """One ``m=`` section with its own lines."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i=, b=, k= as (type, value)

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:`` line, or None."""
        return next((a.value for a in self.attributes if a.name == name), None)

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type -> (encoding name, clock rate), static types filled in."""
        mapped: dict[int, tuple[str, int]] = {}
        for pt in self.payload_types():
            if pt in STATIC_PAYLOADS:
                mapped[pt] = STATIC_PAYLOADS[pt]
        for attr in self.attributes:
            if attr.name == "rtpmap" and attr.value:
                pt, name, rate = _parse_rtpmap(attr.value)
                mapped[pt] = (name, rate)
        return mapped

    def fmtp(self, pt: int) -> str | None:
        """The format parameters given for ``pt``, or None."""
        prefix = f"{pt} "
        for attr in self.attributes:
            if attr.name == "fmtp" and attr.value and attr.value.startswith(prefix):
                return attr.value[len(prefix) :].strip()
        return None

    def payload_types(self) -> list[int]:
        return [int(f) for f in self.formats] if self.is_rtp else []

    def __str__(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={' '.join([self.kind, port, self.proto, *self.formats])}"]
        lines += [f"{t}={v}" for t, v in self.extra if t == "i"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{t}={v}" for t, v in self.extra if t in "bk"]
        lines += [f"a={a}" for a in self.attributes]
        return "".join(line + "\r\n" for line in lines)


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])  # t= and r=
    attributes: list[Attribute] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= b= z= k=

    @classmethod
    def parse(cls, data: str | bytes) -> SessionDescription:
        """Parse an SDP body; raise SdpError on anything that is not one."""
        if isinstance(data, bytes):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("latin-1")  # RFC 4566 allows other charsets in s= and i=
        else:
            text = data
        lines = [line.rstrip() for line in text.split("\n")]
        lines = [line for line in lines if line]
        if not lines or lines[0] != "v=0":
            raise SdpError("an SDP body starts with v=0")
        origin: Origin | None = None
        sdp = cls(origin=Origin("-", 0, 0, "0.0.0.0"), timing=[])
        current: Media | None = None
        for line in lines[1:]:
            if len(line) < 2 or line[1] != "=" or not line[0].islower():
                raise SdpError(f"not an SDP line: {line[:40]!r}")
            kind, value = line[0], line[2:]
            if kind == "m":
                current = _parse_media(value)
                sdp.media.append(current)
            elif kind == "a":
                name, sep, rest = value.partition(":")
                if not name:
                    raise SdpError(f"empty attribute: {line[:40]!r}")
                (current or sdp).attributes.append(Attribute(name, rest if sep else None))
            elif kind == "c":
                connection = _parse_connection(value)
                if current is None:
                    sdp.connection = connection
                else:
                    current.connection = connection
            elif current is not None:
                if kind not in "ibk":
                    raise SdpError(f"{kind}= is not allowed in a media section")
                current.extra.append((kind, value))
            elif kind == "o":
                origin = _parse_origin(value)
            elif kind == "s":
                sdp.name = value
            elif kind in "tr":
                sdp.timing.append((kind, value))
            elif kind in _SESSION_EARLY + _SESSION_MIDDLE + _SESSION_LATE:
                sdp.extra.append((kind, value))
            else:
                raise SdpError(f"unknown SDP line type {kind}=")
        if origin is None:
            raise SdpError("no o= line")
        sdp.origin = origin
        for media in sdp.media:
            _check_rtp_media(media)
        return sdp

    def __str__(self) -> str:
        def extra(kinds: str) -> list[str]:
            return [f"{t}={v}" for t, v in self.extra if t in kinds]

        lines = ["v=0", f"o={self.origin}", f"s={self.name}", *extra(_SESSION_EARLY)]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += extra(_SESSION_MIDDLE)
        lines += [f"{t}={v}" for t, v in self.timing]
        lines += extra(_SESSION_LATE)
        lines += [f"a={a}" for a in self.attributes]
        return "".join(line + "\r\n" for line in lines) + "".join(str(m) for m in self.media)

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


# --- line grammar ---------------------------------------------------------------------------


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()  # not "²", which isdigit() accepts and int() refuses


def _int(text: str, what: str, top: int) -> int:
    if not _is_number(text) or int(text) > top:
        raise SdpError(f"bad {what}: {text[:20]!r}")
    return int(text)


def _parse_origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError(f"bad o= line: {value[:60]!r}")
    user, sess_id, version, nettype, addrtype, address = parts
    big = 2**64  # RFC 4566 only asks for digits; NTP-based ids fit 64 bits
    return Origin(
        user,
        _int(sess_id, "session id", big),
        _int(version, "session version", big),
        address,
        addrtype,
        nettype,
    )


def _parse_connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError(f"bad c= line: {value[:60]!r}")
    nettype, addrtype, address = parts
    return Connection(address, addrtype, nettype)


def _parse_media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line: {value[:60]!r}")
    kind, port_text, proto, *formats = parts
    port_text, slash, count = port_text.partition("/")
    port = _int(port_text, "port", 65535)
    port_count = _int(count, "port count", 65535) if slash else None
    return Media(kind, port, proto, formats, port_count)


def _parse_rtpmap(value: str) -> tuple[int, str, int]:
    pt_text, _, encoding = value.partition(" ")
    fields = encoding.strip().split("/")
    if len(fields) not in (2, 3):
        raise SdpError(f"bad rtpmap: {value[:60]!r}")
    return _int(pt_text, "payload type", 127), fields[0], _int(fields[1], "clock rate", 10**6)


def _check_rtp_media(media: Media) -> None:
    """Validate what the helpers later rely on, so that they cannot fail on remote input."""
    if not media.is_rtp:
        return
    for f in media.formats:
        _int(f, "payload type", 127)
    for attr in media.attributes:
        if attr.name == "rtpmap":
            _parse_rtpmap(attr.value or "")


# --- helpers --------------------------------------------------------------------------------


def audio_stream(sdp: SessionDescription) -> Media | None:
    """The first audio stream that is not disabled (port 0), or None."""
    return next((m for m in sdp.media if m.kind == "audio" and m.port != 0 and m.is_rtp), None)


def _endpoint(sdp: SessionDescription, media: Media) -> tuple[str, int]:
    connection = media.connection or sdp.connection
    if connection is None:
        raise SdpError("no c= line for the audio stream")
    return connection.host, media.port


def audio_endpoint(sdp: SessionDescription) -> tuple[str, int]:
    """The (ip, port) where the first audio stream wants to receive RTP."""
    media = audio_stream(sdp)
    if media is None:
        raise SdpError("no audio stream")
    return _endpoint(sdp, media)


def _direction(sdp: SessionDescription, media: Media) -> str:
    said = "sendrecv"
    for attr in (*sdp.attributes, *media.attributes):  # the media level overrides the session
        if attr.name in DIRECTIONS and attr.value is None:
            said = attr.name
    connection = media.connection or sdp.connection
    if connection is not None and connection.host == "0.0.0.0":
        return {"sendrecv": "sendonly", "recvonly": "inactive"}.get(said, said)
    return said


def direction(sdp: SessionDescription) -> str:
    """The direction of the first audio stream as its sender means it, c=0.0.0.0 as hold."""
    media = audio_stream(sdp)
    return "inactive" if media is None else _direction(sdp, media)


def codecs(sdp: SessionDescription) -> list[tuple[int, str, int]]:
    """(payload type, encoding name, clock rate) of the first audio stream, in offered order.

    Dynamic payload types without an rtpmap cannot be named and are left out.
    """
    media = audio_stream(sdp)
    if media is None:
        return []
    mapped = media.rtpmap()
    return [(pt, *mapped[pt]) for pt in media.payload_types() if pt in mapped]


def _parse_events(text: str) -> frozenset[int]:
    """RFC 4733 event list such as ``0-11,16``; empty if it is junk."""
    events: set[int] = set()
    for item in text.replace(" ", "").split(","):
        low, _, high = item.partition("-")
        high = high or low
        if not (_is_number(low) and _is_number(high)) or int(high) > 255:
            return frozenset()
        events.update(range(int(low), int(high) + 1))
    return frozenset(events)


def _format_events(events: Iterable[int]) -> str:
    ranges: list[list[int]] = []
    for event in sorted(events):
        if ranges and ranges[-1][1] == event - 1:
            ranges[-1][1] = event
        else:
            ranges.append([event, event])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


_SEND, _RECV = 1, 2
_BITS = {"inactive": 0, "sendonly": _SEND, "recvonly": _RECV, "sendrecv": _SEND | _RECV}
_NAMES = {bits: name for name, bits in _BITS.items()}


def _addrtype(ip: str) -> str:
    return "IP6" if ":" in ip else "IP4"


@dataclass(frozen=True, slots=True)
class Answer:
    """The result of answering an offer: what to send back and what was agreed."""

    sdp: SessionDescription
    payload_type: int
    codec: str
    telephone_event: int | None
    direction: str
    remote: tuple[str, int]


def negotiate(
    offer: SessionDescription,
    supported: Iterable[str] = ("PCMU", "PCMA"),
    *,
    local_ip: str,
    local_port: int,
    session_id: int,
    version: int,
    direction: str | None = None,
) -> Answer:
    """Answer ``offer`` per RFC 3264 6.1, keeping the offerer's codec preference.

    Args:
        supported: codec names we can handle (8 kHz only); their order does not matter.
        direction: what we want locally (e.g. "sendonly" when we hold); None means sendrecv.
    Returns:
        The answer: the first usable audio stream accepted, every other stream rejected.
    Raises:
        NoCommonCodec: no RTP/AVP audio stream has a codec in ``supported``.
    """
    if direction is not None and direction not in _BITS:
        raise ValueError(f"unknown direction {direction!r}")
    wanted = {name.upper() for name in supported}
    chosen: Media | None = None
    common: list[tuple[int, str, int]] = []
    for media in offer.media:
        # Plain RTP only: we hold no SRTP keys, so an RTP/SAVP stream is not ours to accept.
        if media.kind != "audio" or media.port == 0 or media.proto.upper() != "RTP/AVP":
            continue
        mapped = media.rtpmap()
        common = [
            (pt, *mapped[pt])
            for pt in media.payload_types()
            if pt in mapped and mapped[pt][0].upper() in wanted and mapped[pt][1] == 8000
        ]
        if common:
            chosen = media
            break
    if chosen is None:
        raise NoCommonCodec("no audio stream offers a codec we support")

    event_pt: int | None = None
    events: frozenset[int] = frozenset()
    for pt, (name, rate) in chosen.rtpmap().items():
        if name.lower() == "telephone-event" and rate == 8000 and pt in chosen.payload_types():
            offered = chosen.fmtp(pt)
            # RFC 4733 7.1.1: without fmtp the events are 0-15.
            events = _OUR_EVENTS & (_parse_events(offered) if offered else _OUR_EVENTS)
            event_pt = pt if events else None
            break

    offered_bits = _BITS[_direction(offer, chosen)]
    # What the offerer sends we receive and vice versa; then keep only what we want ourselves.
    allowed = (_SEND if offered_bits & _RECV else 0) | (_RECV if offered_bits & _SEND else 0)
    answer_direction = _NAMES[allowed & _BITS[direction or "sendrecv"]]

    answer_media: list[Media] = []
    for media in offer.media:
        if media is not chosen:
            answer_media.append(Media(media.kind, 0, media.proto, list(media.formats)))
            continue
        audio = Media("audio", local_port, "RTP/AVP", [str(pt) for pt, _, _ in common])
        audio.attributes = [Attribute("rtpmap", f"{pt} {name}/{rate}") for pt, name, rate in common]
        if event_pt is not None:
            audio.formats.append(str(event_pt))
            audio.attributes += [
                Attribute("rtpmap", f"{event_pt} telephone-event/8000"),
                Attribute("fmtp", f"{event_pt} {_format_events(events)}"),
            ]
        audio.attributes += [Attribute("ptime", "20"), Attribute(answer_direction)]
        answer_media.append(audio)

    sdp = SessionDescription(
        origin=Origin("-", session_id, version, local_ip, _addrtype(local_ip)),
        connection=Connection(local_ip, _addrtype(local_ip)),
        media=answer_media,
    )
    pt, codec, _rate = common[0]
    return Answer(sdp, pt, codec, event_pt, answer_direction, _endpoint(offer, chosen))


def make_offer(
    local_ip: str,
    local_port: int,
    codecs: Iterable[str] = ("PCMU", "PCMA"),
    *,
    telephone_event_pt: int | None = 101,
    session_id: int,
    version: int,
    direction: str = "sendrecv",
) -> SessionDescription:
    """Build our offer: one audio stream, static G.711 payload types, DTMF as telephone-event."""
    if direction not in _BITS:
        raise ValueError(f"unknown direction {direction!r}")
    audio = Media("audio", local_port, "RTP/AVP", [])
    for name in codecs:
        pt = _STATIC_BY_NAME.get(name.upper())
        if pt is None:
            raise ValueError(f"no static payload type for {name!r}")
        audio.formats.append(str(pt))
        audio.attributes.append(Attribute("rtpmap", f"{pt} {STATIC_PAYLOADS[pt][0]}/8000"))
    if telephone_event_pt is not None:
        audio.formats.append(str(telephone_event_pt))
        audio.attributes += [
            Attribute("rtpmap", f"{telephone_event_pt} telephone-event/8000"),
            Attribute("fmtp", f"{telephone_event_pt} {_format_events(_OUR_EVENTS)}"),
        ]
    audio.attributes += [Attribute("ptime", "20"), Attribute(direction)]
    return SessionDescription(
        origin=Origin("-", session_id, version, local_ip, _addrtype(local_ip)),
        connection=Connection(local_ip, _addrtype(local_ip)),
        media=[audio],
    )
