"""Checks a UAS applies to a parsed request before acting on it (RFC 3261 section 8.2, RFC 4475 3.3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import suppress

from pbx.sip.errors import SipParseError
from pbx.sip.grammar import parse_params
from pbx.sip.headers import CSeq, NameAddr, Via
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import SipUri

SDP = "application/sdp"
_SDP_ONLY = frozenset({SDP})

# The methods whose body we read, and the body types we can act on for each. A body of any
# other method is never looked at, so its type cannot matter: refusing it with 415 would turn
# a method we do not implement (PUBLISH with PIDF, MESSAGE) from the 405 that RFC 3261 8.2.1
# puts first into a 415, and fail a REGISTER or OPTIONS over a body we would ignore.
# Of these, IN_DIALOG_ONLY are taken inside a dialog only: outside one (no To tag) they get 405.
DEFAULT_BODY_TYPES: Mapping[str, frozenset[str]] = {
    "INVITE": _SDP_ONLY,
    "ACK": _SDP_ONLY,  # the answer to an offer we made in a 2xx
    "UPDATE": _SDP_ONLY,
    "INFO": frozenset({"application/dtmf-relay", "application/dtmf", SDP}),
    "NOTIFY": frozenset(
        {
            "message/sipfrag",
            "application/dialog-info+xml",
            "application/simple-message-summary",
            "application/pidf+xml",
        }
    ),
}
IN_DIALOG_ONLY = frozenset({"UPDATE", "INFO", "NOTIFY"})

# Headers of which a request carries at most one value; two different values are ambiguous.
SINGLETON_HEADERS = (
    "Call-ID",
    "CSeq",
    "From",
    "To",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Expires",
    "Min-Expires",
    "Date",
    "Event",
    "Refer-To",
    "Replaces",
    "Session-Expires",
    "Subscription-State",
)
_MULTIPART = ("multipart/mixed", "multipart/alternative")
_NO_REQUIRE_CHECK = ("ACK", "CANCEL")  # RFC 3261 section 8.2.2.3


def check_request(
    req: Request,
    *,
    supported: frozenset[str] | None = frozenset(),
    allowed_schemes: Iterable[str] = ("sip", "sips"),
    body_types: Mapping[str, frozenset[str]] | None = None,
    to_tag: str | None = None,
) -> Response | None:
    """Return the error response a UAS must send for req, or None when it may be processed.

    Args:
        req: a request as parse_message returns it.
        supported: option-tags we implement (Require values outside it get a 420); None
            skips the check (a method the UAS does not implement gets its 405 first).
        allowed_schemes: Request-URI schemes we serve (others get a 416).
        body_types: accepted Content-Types of the methods whose body the UAS reads
            (DEFAULT_BODY_TYPES when None); bodies of other methods, and of IN_DIALOG_ONLY
            methods outside a dialog, are not checked.
        to_tag: the tag to put in the To of the error response.
    """
    return (
        _check_syntax(req, to_tag)
        or _check_max_forwards(req, to_tag)
        or _check_scheme(req, tuple(s.lower() for s in allowed_schemes), to_tag)
        or _check_require(req, supported, to_tag)
        or _check_body(req, DEFAULT_BODY_TYPES if body_types is None else body_types, to_tag)
        or _check_accept(req, to_tag)
    )


def _bad(req: Request, detail: str, to_tag: str | None) -> Response:
    return make_response(req, 400, f"Bad Request ({detail})", to_tag=to_tag)


def _check_syntax(req: Request, to_tag: str | None) -> Response | None:
    headers = req.headers
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in headers:
            return _bad(req, f"missing {name}", to_tag)
    for name in SINGLETON_HEADERS:
        values = headers.get_all(name)
        if len(set(values)) > 1:
            return _bad(req, f"conflicting {name} headers", to_tag)
    try:
        if CSeq.parse(headers.get("CSeq") or "").method != req.method:
            return _bad(req, "CSeq method mismatch", to_tag)
        vias = [Via.parse(v) for v in headers.get_all("Via")]
        for name in ("From", "To"):
            NameAddr.parse(headers.get(name) or "")
        for name in ("Route", "Record-Route"):
            for value in headers.get_all(name):
                NameAddr.parse(value)
    except SipParseError as exc:
        return _bad(req, exc.reason, to_tag)
    if vias[0].branch == "z9hG4bK":
        # The bare magic cookie promises an RFC 3261 transaction id and gives none (RFC 4475 3.2.1).
        return _bad(req, "empty branch after magic cookie", to_tag)
    expires = headers.get("Expires")
    if expires is not None and not (expires.isdigit() and expires.isascii()):
        return _bad(req, "bad Expires", to_tag)
    if req.method == "REGISTER" and not isinstance(req.to_addr.uri, SipUri):
        # The To of a REGISTER is the address-of-record, which must be a SIP URI (RFC 4475 3.3.4).
        return _bad(req, "To of a REGISTER must be a SIP URI", to_tag)
    return _check_contacts(req, to_tag)


def _check_contacts(req: Request, to_tag: str | None) -> Response | None:
    contacts = req.headers.get_all("Contact")
    if "*" in contacts:
        # The wildcard only removes every binding: alone, in a REGISTER, with Expires 0.
        if req.method != "REGISTER" or len(contacts) != 1 or req.headers.get("Expires") != "0":
            return _bad(req, "misused Contact *", to_tag)
        return None
    try:
        for value in contacts:
            NameAddr.parse(value)
    except SipParseError as exc:
        return _bad(req, f"Contact: {exc.reason}", to_tag)
    return None


def _check_max_forwards(req: Request, to_tag: str | None) -> Response | None:
    value = req.headers.get("Max-Forwards")
    if value is None:
        return None  # RFC 2543 senders omit it (RFC 4475 3.3.16)
    if not (value.isdigit() and value.isascii()):
        return _bad(req, "bad Max-Forwards", to_tag)
    # Zero means "do not forward"; OPTIONS may still be answered by us (RFC 3261 section 16.3).
    if int(value) == 0 and req.method != "OPTIONS":
        return make_response(req, 483, to_tag=to_tag)
    return None


def _check_scheme(req: Request, allowed: tuple[str, ...], to_tag: str | None) -> Response | None:
    try:
        scheme = req.request_uri.scheme
    except SipParseError:
        return _bad(req, "bad Request-URI", to_tag)
    if scheme.lower() not in allowed:
        return make_response(req, 416, to_tag=to_tag)
    return None


def _check_require(
    req: Request, supported: frozenset[str] | None, to_tag: str | None
) -> Response | None:
    if supported is None or req.method in _NO_REQUIRE_CHECK:
        return None
    missing = [tag for tag in req.headers.get_all("Require") if tag not in supported]
    if not missing:
        return None
    return make_response(req, 420, to_tag=to_tag, headers=[("Unsupported", ", ".join(missing))])


def media_type(content_type: str) -> tuple[str, dict[str, str | None]]:
    """Split a Content-Type value into its lower-cased type/subtype and its parameters."""
    semi = content_type.find(";")
    kind = (content_type if semi < 0 else content_type[:semi]).strip().lower()
    params = parse_params(content_type[semi:], "Content-Type") if semi >= 0 else {}
    return "".join(kind.split()), params


def _check_body(
    req: Request, body_types: Mapping[str, frozenset[str]], to_tag: str | None
) -> Response | None:
    accepted = body_types.get(req.method)
    if not req.body or accepted is None:
        return None
    if req.method in IN_DIALOG_ONLY and req.to_addr.tag is None:
        return None
    content_type = req.headers.get("Content-Type")
    if content_type is None:
        return _bad(req, "body without Content-Type", to_tag)
    encodings = [e.lower() for e in req.headers.get_all("Content-Encoding")]
    if any(e != "identity" for e in encodings):
        return make_response(req, 415, to_tag=to_tag, headers=[("Accept-Encoding", "identity")])
    try:
        kind, params = media_type(content_type)
    except SipParseError:
        return _bad(req, "bad Content-Type", to_tag)
    if kind in accepted:
        return None
    if kind in _MULTIPART and accepted & set(_part_types(req.body, params.get("boundary"))):
        return None
    accept = ", ".join(sorted(accepted))
    return make_response(req, 415, to_tag=to_tag, headers=[("Accept", accept)])


def _part_types(body: bytes, boundary: str | None) -> list[str]:
    """Content-Types of the parts of a multipart body (RFC 2046 section 5.1)."""
    if not boundary:
        return []
    delimiter = b"--" + boundary.strip('"').encode("utf-8", "surrogateescape")
    kinds = []
    for part in body.split(delimiter)[1:]:
        head = part.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower() in (b"content-type", b"c"):
                with suppress(SipParseError):  # a broken part header just doesn't count
                    kinds.append(media_type(value.decode("utf-8", "replace"))[0])
    return kinds


def _check_accept(req: Request, to_tag: str | None) -> Response | None:
    if req.method != "INVITE" or "Accept" not in req.headers:
        return None
    accepted = {a.split(";", 1)[0].strip().lower() for a in req.headers.get_all("Accept")}
    if not accepted or accepted & {SDP, "application/*", "*/*"}:
        return None
    # Our answer must be SDP; an INVITE that refuses SDP cannot be answered (RFC 4475 3.3.15).
    return make_response(
        req,
        406,
        to_tag=to_tag,
        headers=[("Warning", '399 - "Accept does not allow application/sdp"')],
    )
