"""Registrar (RFC 3261 10): where each device can be reached, with several contacts per user."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Protocol

from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddr
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import SipUri

Addr = tuple[str, int]


@dataclass(slots=True)
class Binding:
    """One contact of one device, and the address and transport its REGISTER came from."""

    username: str
    contact: SipUri
    source: Addr  # where its REGISTER came from: reachable through NAT (see destination)
    transport: str
    expires_at: float
    call_id: str
    cseq: int

    def expires_in(self, now: float) -> int:
        return max(0, int(self.expires_at - now))

    def destination(self, connected: Callable[[Addr], bool]) -> Addr:
        """Where to send a request for this contact.

        Over UDP, and over TCP while the connection the REGISTER came on is open, its source:
        through NAT the Contact may be a private address. Once that connection is gone (an
        engine restart, a phone that reconnected) nothing listens at its source port any more,
        and the Contact's host and port are where the phone takes new connections.

        Args:
            connected: whether a TCP connection with an address is open (the transports').
        """
        if self.transport != "tcp" or connected(self.source):
            return self.source
        host = self.contact.host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            # A name would need RFC 3263 resolution, and a WebSocket-style ".invalid" one
            # (RFC 7118) is never reachable but through its connection: keep the source.
            return self.source
        default_port = 5061 if self.contact.scheme == "sips" else 5060
        return host, self.contact.port or default_port


@dataclass(frozen=True, slots=True)
class StoredBinding:
    """A binding as kept across restarts: times on the wall clock, not the loop's."""

    username: str
    contact: str
    source_host: str
    source_port: int
    transport: str
    expires_at: float  # Unix time
    call_id: str
    cseq: int


class BindingStore(Protocol):
    """Keeps registrations across engine restarts (the database, Redis ...)."""

    def save(self, username: str, bindings: list[StoredBinding]) -> None: ...

    async def load(self) -> list[StoredBinding]: ...


class RegistrationError(Exception):
    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers


class Registrar:
    """In-memory bindings per SIP username (they are re-created within one refresh interval)."""

    def __init__(
        self,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        store: BindingStore | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = min(default_expires, max_expires)
        self._bindings: dict[str, list[Binding]] = {}
        self.store = store
        self.wall_clock = wall_clock

    async def restore(self, now: float) -> int:
        """Take back the bindings saved before a restart that have not expired; return how many.

        Phones register for up to an hour: without this, a restart would leave them
        unreachable until their next REGISTER.
        """
        if self.store is None:
            return 0
        offset = now - self.wall_clock()
        restored = 0
        for saved in await self.store.load():
            expires_at = saved.expires_at + offset
            if expires_at <= now:
                continue
            try:
                contact = SipUri.parse(saved.contact)
            except SipParseError:
                continue
            self._bindings.setdefault(saved.username, []).append(
                Binding(
                    saved.username,
                    contact,
                    (saved.source_host, saved.source_port),
                    saved.transport,
                    expires_at,
                    saved.call_id,
                    saved.cseq,
                )
            )
            restored += 1
        return restored

    def _persist(self, username: str, now: float) -> None:
        if self.store is None:
            return
        offset = self.wall_clock() - now
        self.store.save(
            username,
            [
                StoredBinding(
                    username,
                    str(b.contact),
                    b.source[0],
                    b.source[1],
                    b.transport,
                    b.expires_at + offset,
                    b.call_id,
                    b.cseq,
                )
                for b in self.contacts(username, now)
            ],
        )

    def register(
        self, username: str, request: Request, source: Addr, transport: str, now: float
    ) -> Response:
        """Apply an authenticated REGISTER and return the response listing current contacts."""
        try:
            self._apply(username, request, source, transport, now)
        except RegistrationError as error:
            return make_response(request, error.status, error.reason, headers=error.headers)
        except SipParseError as error:
            return make_response(request, 400, error.reason)
        self._persist(username, now)
        headers = [
            ("Contact", f"<{b.contact}>;expires={b.expires_in(now)}")
            for b in self.contacts(username, now)
        ]
        headers.append(("Date", formatdate(time.time(), usegmt=True)))
        return make_response(request, 200, "OK", headers=tuple(headers))

    def _apply(
        self, username: str, request: Request, source: Addr, transport: str, now: float
    ) -> None:
        contacts = request.headers.get_all("Contact")
        header_expires = request.headers.get("Expires")
        default = (
            self._parse_expires(header_expires)
            if header_expires is not None
            else self.default_expires
        )
        current = self._bindings.get(username, [])
        call_id, cseq = request.call_id, request.cseq.number
        if any(c.strip() == "*" for c in contacts):
            if len(contacts) != 1 or default != 0:
                raise RegistrationError(
                    400, "Wildcard Contact needs Expires: 0 and no other contact"
                )
            self._check_order(current, call_id, cseq)
            self._bindings.pop(username, None)
            return
        updated = list(current)
        for value in contacts:
            addr = NameAddr.parse(value)
            if not isinstance(addr.uri, SipUri):
                raise RegistrationError(400, "Contact must be a SIP URI")
            expires = addr.params.get("expires")
            seconds = self._parse_expires(expires) if expires is not None else default
            if 0 < seconds < self.min_expires:
                raise RegistrationError(
                    423, "Interval Too Brief", (("Min-Expires", str(self.min_expires)),)
                )
            seconds = min(seconds, self.max_expires)
            existing = next(
                (
                    b
                    for b in updated
                    if _same_contact(b.contact, addr.uri)
                    # Two phones behind two home routers may both say sip:201@192.168.1.10:5060:
                    # the same phone is the one with the same Call-ID or the same source.
                    and (b.call_id == call_id or b.source == source)
                ),
                None,
            )
            if existing is not None:
                if existing.call_id == call_id and existing.cseq >= cseq:
                    continue  # an old, reordered REGISTER (RFC 3261 10.3 step 7)
                updated.remove(existing)
            if seconds > 0:
                updated.append(
                    Binding(username, addr.uri, source, transport, now + seconds, call_id, cseq)
                )
        self._bindings[username] = updated

    @staticmethod
    def _check_order(current: list[Binding], call_id: str, cseq: int) -> None:
        for b in current:
            if b.call_id == call_id and b.cseq >= cseq:
                raise RegistrationError(500, "Out of order REGISTER")

    @staticmethod
    def _parse_expires(value: str) -> int:
        try:
            seconds = int(value.strip())
        except ValueError:
            raise RegistrationError(400, "Bad Expires value") from None
        if seconds < 0:
            raise RegistrationError(400, "Bad Expires value")
        return seconds

    def contacts(self, username: str, now: float) -> list[Binding]:
        """The live bindings of a device, expired ones dropped."""
        bindings = self._bindings.get(username)
        if not bindings:
            return []
        live = [b for b in bindings if b.expires_at > now]
        if len(live) != len(bindings):
            if live:
                self._bindings[username] = live
            else:
                del self._bindings[username]
        return live

    def bind(
        self,
        username: str,
        contact: SipUri,
        source: Addr,
        transport: str,
        now: float,
        expires: int = 3600,
    ) -> None:
        """Add a contact without a REGISTER: a phone at a fixed address (static binding)."""
        self._bindings.setdefault(username, []).append(
            Binding(username, contact, source, transport, now + expires, "static", 0)
        )

    def usernames(self) -> list[str]:
        return list(self._bindings)


def _same_contact(a: SipUri, b: SipUri) -> bool:
    return (a.user, a.host.lower(), a.port or 5060) == (b.user, b.host.lower(), b.port or 5060)
