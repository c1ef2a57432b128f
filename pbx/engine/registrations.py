"""REGISTER from phones: authenticated, checked against the account it names, kept by the
registrar; and every change of a device's registration (a new or a lost binding, one a restart
took back, one that expired quietly) said as a `RegistrationChanged` event, which the consoles'
lamps and the message-waiting NOTIFYs follow."""

from __future__ import annotations

from pbx.engine.auth import Authenticator
from pbx.engine.directory import Directory
from pbx.engine.events import EventSink, RegistrationChanged
from pbx.engine.registrar import Registrar
from pbx.engine.services import Addr, SipSender
from pbx.sip.message import Request, make_response
from pbx.sip.uri import SipUri


class Registrations:
    def __init__(
        self,
        *,
        stack: SipSender,
        auth: Authenticator,
        registrar: Registrar,
        directory: Directory,
        events: EventSink,
    ) -> None:
        self.stack = stack
        self.auth = auth
        self.registrar = registrar
        self.directory = directory
        self.events = events
        self._known: dict[str, tuple[int, str]] = {}  # registered username -> its extension

    async def register(self, request: Request, source: Addr, transport: str) -> None:
        """A REGISTER out of a dialog: 401 with a challenge, 403 for another user's account,
        else the registrar's answer."""
        now = self.stack.now()
        outcome = await self.auth.check(request, source[0], now)
        if outcome.device is None:
            challenges = tuple(("WWW-Authenticate", c) for c in outcome.challenge)
            self.stack.send_response(make_response(request, 401, headers=challenges))
            return
        aor = request.to_addr.uri
        if isinstance(aor, SipUri) and aor.user and aor.user != outcome.device.username:
            self.stack.send_response(
                make_response(request, 403, "Forbidden: credentials of another user")
            )
            return
        username = outcome.device.username
        before = len(self.registrar.contacts(username, now))
        self.stack.send_response(self.registrar.register(username, request, source, transport, now))
        after = len(self.registrar.contacts(username, now))
        if after != before:
            device = outcome.device
            self._known[username] = (device.company_id, device.extension)
            self.events.emit(
                RegistrationChanged(username, after, now, device.company_id, device.extension)
            )

    async def announce_restored(self) -> None:
        """The registrations a restart took back are news to the consoles too."""
        now = self.stack.now()
        for username in self.registrar.usernames():
            device = await self.directory.device(username)
            contacts = len(self.registrar.contacts(username, now))
            if device is not None and contacts:
                self._known[username] = (device.company_id, device.extension)
                self.events.emit(
                    RegistrationChanged(
                        username, contacts, now, device.company_id, device.extension
                    )
                )

    def expire(self) -> None:
        """A phone that stopped refreshing its registration is gone: say so (the registrar
        forgets it quietly, so the consoles would show it registered forever)."""
        now = self.stack.now()
        for username, (company_id, extension) in list(self._known.items()):
            if not self.registrar.contacts(username, now):
                del self._known[username]
                self.events.emit(RegistrationChanged(username, 0, now, company_id, extension))
