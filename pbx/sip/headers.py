"""SIP header storage and the structured headers (Via, name-addr, CSeq) of RFC 3261 section 20."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pbx.sip.errors import SipParseError
from pbx.sip.grammar import (
    _TOKEN_RE,
    _WS,
    LIST_HEADERS,
    format_params,
    header_key,
    parse_params,
    quote_string,
    quoted_end,
    split_list,
    unquote_string,
)
from pbx.sip.uri import AbsoluteUri, SipUri, format_host, parse_hostport, parse_uri


class Headers:
    """An ordered, case-insensitive multi-dict of raw header values (compact names expanded)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        for name, value in items:
            self.add(name, value)

    @classmethod
    def from_keyed(cls, items: list[tuple[str, str, str]]) -> Headers:
        """Adopt (key, canonical name, value) triples from header_key (the parser's fast path)."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, or default."""
        key = header_key(name)[0]
        for k, _, value in self._items:
            if k == key:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header; list-type headers are split on commas (empty parts dropped)."""
        key = header_key(name)[0]
        values = [value for k, _, value in self._items if k == key]
        if key not in LIST_HEADERS:
            return values
        return [part for value in values for part in split_list(value) if part]

    def count(self, name: str) -> int:
        """How many header lines carry this name (commas not split)."""
        key = header_key(name)[0]
        return sum(1 for k, _, _ in self._items if k == key)

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        key, canonical = header_key(name)
        self._items.append((key, canonical, value))

    def prepend(self, name: str, value: str) -> None:
        """Insert a header line before all others (a new top Via)."""
        key, canonical = header_key(name)
        self._items.insert(0, (key, canonical, value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of a header with one value, at the position of the first."""
        key, canonical = header_key(name)
        items = self._items
        for i, (k, _, _) in enumerate(items):
            if k == key:
                items[i] = (key, canonical, value)
                items[i + 1 :] = [item for item in items[i + 1 :] if item[0] != key]
                return
        items.append((key, canonical, value))

    def remove(self, name: str) -> None:
        """Remove every line of a header (no error when absent)."""
        key = header_key(name)[0]
        self._items = [item for item in self._items if item[0] != key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = header_key(name)[0]
        return any(k == key for k, _, _ in self._items)

    def items(self) -> list[tuple[str, str]]:
        """(canonical name, raw value) pairs in order."""
        return [(canonical, value) for _, canonical, value in self._items]

    def keyed_items(self) -> list[tuple[str, str, str]]:
        """(lookup key, canonical name, raw value) triples in order."""
        return list(self._items)

    def copy(self) -> Headers:
        """A shallow copy (values are immutable strings)."""
        return Headers.from_keyed(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/<transport> host[:port];params``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse a single Via value (split comma-joined values first)."""
        if text.startswith("SIP/2.0/"):
            rest = text[8:]
        else:
            # LWS may surround the slashes (RFC 3261 SLASH = SWS "/" SWS).
            parts = text.split("/", 2)
            if len(parts) != 3 or parts[0].strip().upper() != "SIP" or parts[1].strip() != "2.0":
                raise SipParseError("bad Via: sent-protocol is not SIP/2.0")
            rest = parts[2].lstrip(_WS)
        sp = 0
        n = len(rest)
        while sp < n and rest[sp] not in _WS:
            sp += 1
        transport = rest[:sp]
        if not _TOKEN_RE.fullmatch(transport):
            raise SipParseError("bad Via: transport")
        rest = rest[sp:]
        semi = rest.find(";")
        sent_by = (rest if semi < 0 else rest[:semi]).strip(_WS)
        if " " in sent_by or "\t" in sent_by:
            sent_by = re.sub(r"[ \t]*:[ \t]*", ":", sent_by)
        try:
            host, port = parse_hostport(sent_by, "Via sent-by")
            params = parse_params(rest[semi:], "Via") if semi >= 0 else {}
        except SipParseError as exc:
            raise SipParseError(f"bad Via: {exc.reason}") from None
        return cls(transport.upper(), host, port, params)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return (
            f"SIP/2.0/{self.transport} {format_host(self.host)}{port}{format_params(self.params)}"
        )

    @property
    def branch(self) -> str | None:
        """The branch parameter (transaction id), or None."""
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        """The received parameter, or None."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value when filled in; test ``"rport" in via.params`` for the bare flag."""
        value = self.params.get("rport")
        return int(value) if value and value.isdigit() else None

    @property
    def sent_by(self) -> str:
        """host[:port] as written in the Via."""
        port = "" if self.port is None else f":{self.port}"
        return f"{format_host(self.host)}{port}"


@dataclass(slots=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, header parameters."""

    display: str | None
    uri: SipUri | AbsoluteUri
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse name-addr or addr-spec (whose trailing ;params belong to the header)."""
        s = text.strip(_WS)
        if not s:
            raise SipParseError("empty address")
        display: str | None = None
        if s[0] == '"':
            end = quoted_end(s, 0)
            display = unquote_string(s[1 : end - 1])
            rest = s[end:].lstrip(_WS)
            if not rest.startswith("<"):
                raise SipParseError("quoted display name not followed by <URI>")
        elif (lt := s.find("<")) >= 0:
            words = s[:lt].split()
            if not all(_TOKEN_RE.fullmatch(w) for w in words):
                raise SipParseError("display name must be a token list or quoted")
            display = " ".join(words) or None
            rest = s[lt:]
        else:
            semi = s.find(";")
            uri_text = (s if semi < 0 else s[:semi]).rstrip(_WS)
            if s == "*":
                raise SipParseError("wildcard is not an address")
            # RFC 3261 section 20: a URI with ',', '?' or ';' must be written inside <...>.
            if any(ch in uri_text for ch in ",? \t<>"):
                raise SipParseError("URI with reserved characters must be enclosed in <>")
            uri = parse_uri(uri_text)
            return cls(None, uri, parse_params(s[semi:], "address") if semi >= 0 else {})
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError("missing > in address")
        uri = parse_uri(rest[1:gt])
        return cls(display, uri, parse_params(rest[gt + 1 :], "address"))

    def __str__(self) -> str:
        name = "" if self.display is None else quote_string(self.display) + " "
        return f"{name}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        """The tag parameter (dialog id half), or None."""
        return self.params.get("tag")


@dataclass(slots=True)
class CSeq:
    """The CSeq header: sequence number and method."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse ``number method``; the number must be below 2**31 (RFC 3261 section 8.1.1.5)."""
        parts = text.split()
        if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
            raise SipParseError("bad CSeq")
        if len(parts[0]) > 10 or int(parts[0]) >= 2**31:
            raise SipParseError("CSeq number out of range")
        if not _TOKEN_RE.fullmatch(parts[1]):
            raise SipParseError("bad CSeq method")
        return cls(int(parts[0]), parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"
