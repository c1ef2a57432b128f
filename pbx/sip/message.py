"""SIP requests and responses: parsing from bytes and writing back (RFC 3261 section 7)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pbx.sip.errors import SipParseError
from pbx.sip.grammar import header_key, is_token, split_list
from pbx.sip.headers import CSeq, Headers, NameAddr, Via
from pbx.sip.uri import AbsoluteUri, SipUri, parse_uri

MAX_MESSAGE_SIZE = 65535
SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# Headers whose value identifies the transaction or dialog: two different ones are ambiguous.
_SINGLETONS = ("call-id", "cseq", "from", "to", "content-length")
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"  # keeps arbitrary octets in header text round-trippable


class _MessageViews:
    """Parsed views of the headers every message carries, cached per raw value."""

    __slots__ = ()
    headers: Headers
    _parsed: dict[tuple[str, str], Any]

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name} header")
        return value

    def _cached(self, kind: str, raw: str, parse: Any) -> Any:
        key = (kind, raw)
        try:
            return self._parsed[key]
        except KeyError:
            value = self._parsed[key] = parse(raw)
            return value

    @property
    def call_id(self) -> str:
        """The Call-ID value."""
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        return self._cached("cseq", self._required("CSeq"), CSeq.parse)

    @property
    def vias(self) -> list[Via]:
        """Every Via, top first."""
        return [self._cached("via", raw, Via.parse) for raw in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        """The first Via."""
        values = self.headers.get_all("Via")
        if not values:
            raise SipParseError("missing Via header")
        return self._cached("via", values[0], Via.parse)

    @property
    def branch(self) -> str | None:
        """The branch of the top Via."""
        return self.top_via.branch

    @property
    def from_addr(self) -> NameAddr:
        """The parsed From."""
        return self._cached("addr", self._required("From"), NameAddr.parse)

    @property
    def to_addr(self) -> NameAddr:
        """The parsed To."""
        return self._cached("addr", self._required("To"), NameAddr.parse)


def _wire(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    length_written = False
    for key, name, value in headers.keyed_items():
        if key == "content-length":
            if length_written:
                continue
            value, length_written = str(len(body)), True
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode(_ENCODING, _ERRORS) + body


@dataclass(slots=True)
class Request(_MessageViews):
    """A SIP request; ``uri`` is the Request-URI text (parse it with request_uri)."""

    method: str
    uri: str
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION
    _parsed: dict[tuple[str, str], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def request_uri(self) -> SipUri | AbsoluteUri:
        """The parsed Request-URI."""
        return self._cached("ruri", self.uri, parse_uri)

    def __bytes__(self) -> bytes:
        return _wire(f"{self.method} {self.uri} {self.version}", self.headers, self.body)


@dataclass(slots=True)
class Response(_MessageViews):
    """A SIP response."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION
    _parsed: dict[tuple[str, str], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __bytes__(self) -> bytes:
        return _wire(f"{self.version} {self.status} {self.reason}", self.headers, self.body)


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to request (RFC 3261 section 8.2.6.2).

    Copies Via, From, To, Call-ID and CSeq (and Timestamp on a 100); adds ``;tag=to_tag`` to To
    when given and To has no tag yet.
    """
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} out of range")
    out = Headers()
    for key, name, value in request.headers.keyed_items():
        if key in ("via", "from", "call-id", "cseq") or (key == "timestamp" and status == 100):
            out.add(name, value)
        elif key == "to":
            if to_tag is not None and not _has_tag(value):
                value = f"{value};tag={to_tag}"
            out.add(name, value)
    for name, value in headers:
        out.add(name, value)
    if reason is None:
        reason = REASON_PHRASES.get(status, "Unknown")
    return Response(status, reason, out, body)


def _has_tag(to_value: str) -> bool:
    try:
        return NameAddr.parse(to_value).tag is not None
    except SipParseError:
        return ";tag=" in to_value.lower()


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    end = data.find(b"\r\n\r\n")
    lf_end = data.find(b"\n\n")
    # Tolerate bare-LF senders, but only when no CRLF CRLF comes earlier.
    if lf_end >= 0 and (end < 0 or lf_end < end):
        return data[:lf_end], data[lf_end + 2 :]
    if end < 0:
        # A datagram cut right after the last header (no empty line): read it as having no body.
        return data.rstrip(b"\r\n"), b""
    return data[:end], data[end + 4 :]


def _header_lines(head: str) -> list[str]:
    lines = head.split("\n")
    out: list[str] = []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if line[:1] in (" ", "\t"):
            # Folded continuation (LWS): equivalent to one SP (RFC 3261 section 7.3.1).
            if len(out) < 2:
                raise SipParseError("continuation line before any header")
            out[-1] = out[-1].rstrip(" \t") + " " + line.strip(" \t")
        else:
            out.append(line)
    return out


def parse_message(data: bytes) -> Request | Response:
    """Parse one complete SIP message from a datagram (or a frame cut by StreamFramer).

    Raises:
        SipParseError: with the status to answer (400, 505, 513) and, when possible, a partial
            request to answer it with.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("message too large", 513)
    start = 0
    while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        start += 2 if data[start] == 13 else 1
    head_bytes, rest = _split_head(data[start:] if start else data)
    lines = _header_lines(head_bytes.decode(_ENCODING, _ERRORS))
    if not lines or not lines[0]:
        raise SipParseError("empty message")
    start_line = lines[0]

    items: list[tuple[str, str, str]] = []
    bad_line = None
    for line in lines[1:]:
        colon = line.find(":")
        name = line[:colon].rstrip(" \t") if colon > 0 else ""
        if not _HEADER_NAME_RE.fullmatch(name):
            bad_line = bad_line or f"malformed header line {line[:40]!r}"
            continue
        key, canonical = header_key(name)
        items.append((key, canonical, line[colon + 1 :].strip(" \t")))
    headers = Headers.from_keyed(items)

    if start_line[:4].upper() == "SIP/":
        message: Request | Response = _response_from(start_line, headers)
    else:
        message = _request_from(start_line, headers)
    try:
        if bad_line:
            raise SipParseError(bad_line)
        message.body = _body(headers, rest)
        _check_core(message)
    except SipParseError as exc:
        if isinstance(message, Request):
            exc.partial = _partial(message)
        raise
    return message


def _request_from(start_line: str, headers: Headers) -> Request:
    parts = start_line.split(" ")
    words = start_line.split()
    request = Request(words[0] if words else "", words[1] if len(words) > 1 else "", headers)
    try:
        if len(parts) != 3 or not all(parts):
            # Extra SP, trailing SP or LWS inside the Request-URI (RFC 4475 3.1.2.8-10).
            raise SipParseError("malformed request line")
        method, uri, version = parts
        if not is_token(method):
            raise SipParseError("bad method")
        if version.upper() != SIP_VERSION:
            if _VERSION_RE.fullmatch(version):
                raise SipParseError(f"{version} not supported", 505)
            raise SipParseError("malformed request line")
        try:
            ruri = parse_uri(uri)
        except SipParseError as exc:
            raise SipParseError(f"bad Request-URI: {exc.reason}") from None
        if isinstance(ruri, SipUri) and ruri.headers:
            raise SipParseError("Request-URI must not carry headers")
        request._parsed[("ruri", uri)] = ruri
    except SipParseError as exc:
        exc.partial = _partial(request)
        raise
    request.version = SIP_VERSION
    return request


def _response_from(start_line: str, headers: Headers) -> Response:
    parts = start_line.split(" ", 2)
    if len(parts) < 2:
        raise SipParseError("malformed status line")
    version, code = parts[0], parts[1]
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"{version[:16]} not supported", 505)
    if len(code) != 3 or not code.isdigit() or not code.isascii():
        raise SipParseError("bad status code")
    status = int(code)
    if not 100 <= status <= 699:
        raise SipParseError("status code out of range")
    return Response(status, parts[2] if len(parts) == 3 else "", headers)


def _body(headers: Headers, rest: bytes) -> bytes:
    values = [v for k, _, v in headers.keyed_items() if k == "content-length"]
    if not values:
        return rest  # a datagram without Content-Length: the body is the rest
    if len(values) > 1:
        raise SipParseError("more than one Content-Length")
    value = values[0]
    if not value.isdigit() or not value.isascii() or len(value) > 9:
        raise SipParseError("bad Content-Length")
    length = int(value)
    if len(rest) < length:
        raise SipParseError("body shorter than Content-Length")
    return rest[:length]


def _check_core(message: Request | Response) -> None:
    headers = message.headers
    counts: dict[str, int] = {}
    for key, _, _ in headers.keyed_items():
        if key in _SINGLETONS or key == "via":
            counts[key] = counts.get(key, 0) + 1
    for key, name in (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID")):
        if not counts.get(key):
            raise SipParseError(f"missing {name} header")
    if not counts.get("cseq"):
        raise SipParseError("missing CSeq header")
    for key in _SINGLETONS:
        if counts.get(key, 0) > 1:
            raise SipParseError(f"more than one {header_key(key)[1]} header")
    call_id = message.call_id
    if not call_id or call_id.split(None, 1)[0] != call_id:
        raise SipParseError("bad Call-ID")
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError("CSeq method does not match the request method")
    for raw in (v for k, _, v in headers.keyed_items() if k == "via"):
        for part in split_list(raw):
            if not part:
                raise SipParseError("bad Via: empty value")
            message._cached("via", part, Via.parse)
    for name in ("From", "To"):
        try:
            message._cached("addr", headers.get(name) or "", NameAddr.parse)
        except SipParseError as exc:
            raise SipParseError(f"bad {name}: {exc.reason}") from None


def _partial(request: Request) -> Request | None:
    """The headers of a bad request that an answer copies, or None when it has no Via at all.

    Every Via and the first From, To, Call-ID and CSeq are copied raw: they may be missing or
    malformed, since answering 400 or 505 to the source is better than silence (RFC 4475 3.3.1).
    """
    keep: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for key, name, value in request.headers.keyed_items():
        if key == "via" or (key in ("from", "to", "call-id", "cseq") and key not in seen):
            keep.append((key, name, value))
            seen.add(key)
    if "via" not in seen:
        return None
    return Request(request.method, request.uri, Headers.from_keyed(keep))
