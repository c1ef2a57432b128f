"""SIP and absolute URIs (RFC 3261 section 19.1, RFC 3986 for other schemes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from pbx.sip.errors import SipParseError

# Character classes of RFC 3261 section 25.1; a fullmatch over a class is linear time.
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_RE = re.compile(rf"[{_UNRESERVED}%&=+$,;?/]+")
_PASSWORD_RE = re.compile(rf"[{_UNRESERVED}%&=+$,]*")
_PARAM_RE = re.compile(rf"[{_UNRESERVED}%\[\]/:&+$]+")
_HNV_RE = re.compile(rf"[{_UNRESERVED}%\[\]/?:+$]*")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Hostnames are laxer than RFC 1123 on purpose ("_" shows up in lab and container names).
_HOSTPORT_RE = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9\-._]+))(?::([0-9]{1,5}))?")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_OPAQUE_BAD = frozenset(' \t\r\n<>"')

# What may stay unescaped when writing each component back (RFC 3261 section 25.1).
_SAFE_USER = "-_.!~*'()&=+$,;?/"
_SAFE_PASSWORD = "-_.!~*'()&=+$,"
_SAFE_PARAM = "-_.!~*'()[]/:&+$"
_SAFE_HNV = "-_.!~*'()[]/?:+$"


def _unescape(text: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(text):
        raise SipParseError(f"invalid character in URI {what}")
    if "%" not in text:
        return text
    if _BAD_ESCAPE_RE.search(text):
        raise SipParseError(f"bad escape in URI {what}")
    # surrogateescape keeps non-UTF-8 octets (e.g. %FF) so that str() writes them back unchanged.
    return unquote(text, errors="surrogateescape")


def _escape(text: str, safe: str) -> str:
    return quote(text, safe=safe, errors="surrogateescape")


def parse_hostport(text: str, what: str = "host") -> tuple[str, int | None]:
    """Parse ``host[:port]``; IPv6 references lose their brackets.

    Returns:
        (host, port), the host lower-cased, the port None when absent.
    """
    m = _HOSTPORT_RE.fullmatch(text)
    if m is None:
        raise SipParseError(f"invalid {what} {text[:64]!r}")
    v6, name, port = m.groups()
    if v6 is not None and ":" not in v6:
        raise SipParseError(f"invalid IPv6 reference in {what}")
    host = (v6 or name).lower()
    if not host or host.startswith(".") or ".." in host:
        raise SipParseError(f"invalid {what} {text[:64]!r}")
    if port is None:
        return host, None
    number = int(port)
    if number > 65535:
        raise SipParseError(f"port out of range in {what}")
    return host, number


def format_host(host: str) -> str:
    """Write a host for a URI or Via: IPv6 addresses get their brackets back."""
    return f"[{host}]" if ":" in host else host


@dataclass(slots=True)
class SipUri:
    """A sip: or sips: URI; user, password, params and headers are stored unescaped."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a sip:/sips: URI (no surrounding whitespace or angle brackets)."""
        colon = text.find(":")
        scheme = text[:colon].lower()
        if colon < 0 or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text[:64]!r}")
        rest = text[colon + 1 :]
        user = password = None
        # "@" is never unescaped in the user part, so the first one ends the userinfo.
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            colon = userinfo.find(":")
            if colon >= 0:
                password = _unescape(userinfo[colon + 1 :], _PASSWORD_RE, "password")
                userinfo = userinfo[:colon]
            user = _unescape(userinfo, _USER_RE, "user")
        headers: dict[str, str] = {}
        qmark = rest.find("?")
        if qmark >= 0:
            headers = _parse_uri_headers(rest[qmark + 1 :])
            rest = rest[:qmark]
        params: dict[str, str | None] = {}
        semi = rest.find(";")
        if semi >= 0:
            params = _parse_uri_params(rest[semi + 1 :])
            rest = rest[:semi]
        host, port = parse_hostport(rest, "URI host")
        return cls(scheme, user, password, host, port, params, headers)

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _SAFE_USER))
            if self.password is not None:
                parts += [":", _escape(self.password, _SAFE_PASSWORD)]
            parts.append("@")
        parts.append(format_host(self.host))
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params.items():
            parts += [";", _escape(name, _SAFE_PARAM)]
            if value is not None:
                parts += ["=", _escape(value, _SAFE_PARAM)]
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(
                    f"{_escape(k, _SAFE_HNV)}={_escape(v, _SAFE_HNV)}"
                    for k, v in self.headers.items()
                )
            )
        return "".join(parts)

    @property
    def transport(self) -> str | None:
        """The transport parameter, lower-cased, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def lr(self) -> bool:
        """Whether the URI names a loose router (RFC 3261 section 16.12)."""
        return "lr" in self.params


def _parse_uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError("empty URI parameter")
        key = _unescape(name, _PARAM_RE, "parameter").lower()
        params[key] = _unescape(value, _PARAM_RE, "parameter") if eq else None
    return params


def _parse_uri_headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in text.split("&"):
        name, eq, value = item.partition("=")
        if not name or not eq:
            raise SipParseError("malformed URI header")
        headers[_unescape(name, _HNV_RE, "header")] = _unescape(value, _HNV_RE, "header")
    return headers


@dataclass(slots=True)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips (tel:, http:, urn: ...), kept opaque."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        """Parse ``scheme:opaque``; the scheme is lower-cased."""
        scheme, colon, opaque = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme) or not opaque:
            raise SipParseError(f"invalid URI {text[:64]!r}")
        if any(ch in _OPAQUE_BAD or ch < " " for ch in opaque):
            raise SipParseError("invalid character in URI")
        return cls(scheme.lower(), opaque)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse any URI: a SipUri for sip:/sips:, an AbsoluteUri otherwise."""
    if text[:4].lower() == "sip:" or text[:5].lower() == "sips:":
        return SipUri.parse(text)
    return AbsoluteUri.parse(text)
