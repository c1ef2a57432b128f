"""The lexical grammar of SIP headers (RFC 3261 section 25): names, lists, quoting, params."""

from __future__ import annotations

import re

from pbx.sip.errors import SipParseError

COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

_KNOWN_NAMES = [
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Diversion",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "Min-Expires",
    "Min-SE",
    "MIME-Version",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
]
CANONICAL_NAMES: dict[str, str] = {name.lower(): name for name in _KNOWN_NAMES}

# Headers whose grammar is a comma-separated list (RFC 3261 section 7.3.1), so that
# "Via: a, b" and two Via lines mean the same thing.  Authorization and friends are not.
LIST_HEADERS = frozenset(
    [
        "accept",
        "accept-contact",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "diversion",
        "error-info",
        "history-info",
        "in-reply-to",
        "path",
        "p-asserted-identity",
        "p-preferred-identity",
        "proxy-require",
        "reason",
        "record-route",
        "reject-contact",
        "require",
        "route",
        "service-route",
        "supported",
        "unsupported",
        "via",
        "warning",
    ]
)

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_WS = " \t"
# Memo of name as received -> (lookup key, canonical name); bounded against junk names.
_NAME_MEMO: dict[str, tuple[str, str]] = {}


def is_token(text: str) -> bool:
    """Whether text is a non-empty RFC 3261 token."""
    return _TOKEN_RE.fullmatch(text) is not None


def header_key(name: str) -> tuple[str, str]:
    """Map a header name as received to (lookup key, canonical name for output).

    Compact forms expand; unknown names keep their spelling for output.
    """
    memo = _NAME_MEMO.get(name)
    if memo is not None:
        return memo
    key = name.lower()
    key = COMPACT_FORMS.get(key, key)
    result = (key, CANONICAL_NAMES.get(key, name))
    if len(_NAME_MEMO) < 2048:
        _NAME_MEMO[name] = result
    return result


def split_list(value: str) -> list[str]:
    """Split a list header value on commas outside quotes and <...>; parts stripped, empties kept."""
    if "," not in value:
        return [value.strip()]
    parts: list[str] = []
    start = 0
    in_quotes = in_angle = False
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return parts


def quoted_end(text: str, start: int) -> int:
    """Index just past the quoted-string opening at text[start]; raises if unterminated."""
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return i + 1
        i += 2 if ch == "\\" else 1
    raise SipParseError("unterminated quoted string")


def unquote_string(inner: str) -> str:
    """Undo quoted-pair escapes inside a quoted string (quotes already removed)."""
    if "\\" not in inner:
        return inner
    out = []
    i, n = 0, len(inner)
    while i < n:
        if inner[i] == "\\" and i + 1 < n:
            i += 1
        out.append(inner[i])
        i += 1
    return "".join(out)


def quote_string(text: str) -> str:
    """Write text as a quoted string, escaping what qdtext cannot carry."""
    out = ['"']
    for ch in text:
        if ch in '"\\' or (ch < " " and ch != "\t") or ch == "\x7f":
            out.append("\\")
        out.append(ch)
    out.append('"')
    return "".join(out)


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``*(SEMI name [EQUAL value])``: LWS allowed, names lower-cased, quoted values kept."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    if '"' not in text and " " not in text and "\t" not in text:
        # Fast path for the usual ";branch=z9hG4bK...;rport" shape.
        items = text.split(";")
        if items[0]:
            raise SipParseError(f"unexpected text in {what}")
        for item in items[1:]:
            name, eq, raw = item.partition("=")
            if not _TOKEN_RE.fullmatch(name):
                raise SipParseError(f"bad parameter in {what}")
            if eq and not _GEN_VALUE_RE.fullmatch(raw):
                raise SipParseError(f"bad parameter value in {what}")
            params[name.lower()] = raw if eq else None
        return params
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WS:
            i += 1
        if i >= n:
            return params
        if text[i] != ";":
            raise SipParseError(f"unexpected text in {what}")
        i += 1
        while i < n and text[i] in _WS:
            i += 1
        m = _TOKEN_RE.match(text, i)
        if m is None:
            raise SipParseError(f"bad parameter in {what}")
        name, i = m.group().lower(), m.end()
        while i < n and text[i] in _WS:
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _WS:
                i += 1
            if i < n and text[i] == '"':
                end = quoted_end(text, i)
                value, i = text[i:end], end
            else:
                m = _GEN_VALUE_RE.match(text, i)
                if m is None:
                    raise SipParseError(f"bad parameter value in {what}")
                value, i = m.group(), m.end()
        params[name] = value


def format_params(params: dict[str, str | None]) -> str:
    """Write parameters back as ``;name=value`` pairs."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())
