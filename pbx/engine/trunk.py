"""SIP trunks: registration to the carrier, its addresses, and who is the carrier."""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
from typing import TYPE_CHECKING

from pbx.engine.directory import TrunkInfo
from pbx.sip.digest import DigestClient, DigestError, select_challenge
from pbx.sip.headers import Headers
from pbx.sip.ids import new_call_id, new_tag
from pbx.sip.message import Request, Response

if TYPE_CHECKING:
    from pbx.engine.directory import Directory
    from pbx.engine.services import SipSender

log = logging.getLogger(__name__)

Addr = tuple[str, int]
RETRY_AFTER_FAILURE = 30.0


class TrunkState(enum.Enum):
    UNREGISTERED = "unregistered"
    REGISTERED = "registered"
    FAILED = "failed"


class TrunkRegistration:
    """Keeps one trunk registered: REGISTER, answer the challenge, refresh before expiry."""

    def __init__(self, stack: SipSender, trunk: TrunkInfo, dest: Addr) -> None:
        self.stack = stack
        self.trunk = trunk
        self.dest = dest
        self.call_id = new_call_id(stack.advertise)
        self.tag = new_tag()
        self.cseq = 0
        self.client = DigestClient(trunk.username, trunk.password)
        self.state = TrunkState.UNREGISTERED
        self._timer: asyncio.TimerHandle | None = None
        self._auth_tries = 0
        self._stopped = False

    def start(self) -> None:
        self._send(None)

    def stop(self) -> None:
        """Stop refreshing; a REGISTER already on its way is left to fail or succeed alone."""
        self._stopped = True
        if self._timer:
            self._timer.cancel()

    def _send(self, authorization: tuple[str, str] | None) -> None:
        trunk = self.trunk
        self.cseq += 1
        port = f":{trunk.port}" if trunk.port != 5060 else ""
        aor = f"sip:{trunk.username}@{trunk.host}{port}"
        headers = Headers(
            [
                ("Via", str(self.stack.via(trunk.transport))),
                ("Max-Forwards", "70"),
                ("From", f"<{aor}>;tag={self.tag}"),
                ("To", f"<{aor}>"),
                ("Call-ID", self.call_id),
                ("CSeq", f"{self.cseq} REGISTER"),
                (
                    "Contact",
                    self.stack.contact(trunk.username or "centralino", trunk.transport),
                ),
                ("Expires", str(trunk.register_expires)),
                ("User-Agent", "Centralino"),
            ]
        )
        if authorization:
            headers.add(*authorization)
        request = Request("REGISTER", f"sip:{trunk.host}{port}", headers)
        self.stack.send_request(request, self.dest, trunk.transport, self._on_response)

    def _on_response(self, response: Response | None) -> None:
        if self._stopped:
            return  # the trunk changed or was removed meanwhile: its new registration takes over
        if response is None:
            self._retry("no answer")
            return
        if response.status < 200:
            return
        if response.status in (401, 407) and self._auth_tries < 2:
            header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
            answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
            try:
                challenge = select_challenge(response.headers.get_all(header))
            except DigestError:
                self._retry("unusable challenge")
                return
            self._auth_tries += 1
            port = f":{self.trunk.port}" if self.trunk.port != 5060 else ""
            value = self.client.authorization(
                challenge, method="REGISTER", uri=f"sip:{self.trunk.host}{port}"
            )
            self._send((answer, value))
            return
        self._auth_tries = 0
        if 200 <= response.status < 300:
            self.state = TrunkState.REGISTERED
            expires = _granted_expires(response, self.trunk.register_expires)
            log.info("trunk %s registered for %ss", self.trunk.name, expires)
            self._schedule(max(5.0, expires * 0.8))
        else:
            self._retry(f"{response.status} {response.reason}")

    def _retry(self, why: str) -> None:
        self.state = TrunkState.FAILED
        log.warning("trunk %s registration failed: %s", self.trunk.name, why)
        self._auth_tries = 0
        self._schedule(RETRY_AFTER_FAILURE)

    def _schedule(self, delay: float) -> None:
        if self._timer:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._send, None)


def _granted_expires(response: Response, asked: int) -> int:
    for value in response.headers.get_all("Contact"):
        for part in value.split(";")[1:]:
            name, _, number = part.partition("=")
            if name.strip().lower() == "expires" and number.strip().isdigit():
                return int(number.strip())
    header = response.headers.get("Expires")
    return int(header) if header and header.strip().isdigit() else asked


class TrunkManager:
    """The trunks of all companies, their resolved addresses and their registrations."""

    def __init__(self, directory: Directory, stack: SipSender) -> None:
        self.directory = directory
        self.stack = stack
        self.trunks: list[TrunkInfo] = []
        self._by_source: dict[Addr, TrunkInfo] = {}
        self._addresses: dict[int, Addr] = {}
        self.registrations: dict[int, TrunkRegistration] = {}

    async def load(self) -> None:
        """(Re)read the trunks; start or stop registrations to match."""
        trunks = await self.directory.trunks()
        loop = asyncio.get_running_loop()
        by_source: dict[Addr, TrunkInfo] = {}
        addresses: dict[int, Addr] = {}
        for trunk in trunks:
            try:
                infos = await loop.getaddrinfo(trunk.host, trunk.port, type=socket.SOCK_DGRAM)
                resolved = [str(info[4][0]) for info in infos]
            except OSError as error:
                # A passing DNS failure must not make the carrier a stranger: keep what the
                # last lookup found, if the trunk's host and port did not change since.
                previous = self._addresses.get(trunk.id)
                old = next((t for t in self.trunks if t.id == trunk.id), None)
                if (
                    previous is None
                    or old is None
                    or (old.host, old.port) != (trunk.host, trunk.port)
                ):
                    log.warning("trunk %s: cannot resolve %s: %s", trunk.name, trunk.host, error)
                    continue
                log.warning(
                    "trunk %s: cannot resolve %s (%s): keeping %s",
                    trunk.name,
                    trunk.host,
                    error,
                    previous[0],
                )
                resolved = [ip for (ip, port), t in self._by_source.items() if t.id == trunk.id]
            for ip in resolved:
                by_source.setdefault((ip, trunk.port), trunk)
            addresses[trunk.id] = (resolved[0], trunk.port)
        self.trunks, self._by_source, self._addresses = trunks, by_source, addresses
        wanted = {t.id: t for t in trunks if t.register and t.id in addresses}
        for trunk_id in list(self.registrations):
            if trunk_id not in wanted or self.registrations[trunk_id].trunk != wanted[trunk_id]:
                self.registrations.pop(trunk_id).stop()
        for trunk_id, trunk in wanted.items():
            if trunk_id not in self.registrations:
                registration = TrunkRegistration(self.stack, trunk, addresses[trunk_id])
                self.registrations[trunk_id] = registration
                registration.start()

    def carrier(self, source: Addr) -> TrunkInfo | None:
        """The trunk whose carrier sends from `source`, if any.

        A carrier is recognised by its address and signalling port together, so that a phone
        on the same host (or on loopback, in tests) is never taken for the carrier and let in
        without authentication.
        """
        return self._by_source.get((source[0], source[1]))

    async def address(self, trunk: TrunkInfo) -> Addr | None:
        if trunk.id not in self._addresses:
            await self.load()
        return self._addresses.get(trunk.id)

    def stop(self) -> None:
        for registration in self.registrations.values():
            registration.stop()
