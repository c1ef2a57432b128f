"""A `Phone` plays one registered device with the real SIP message and dialog code: it
answers or refuses the INVITEs the PBX sends it, dials, and sends BYE, re-INVITE, UPDATE and
REFER inside its dialogs, so that what the tests read back is the SIP the call layer really
sends. Only its network is fake: it talks to the PBX through the fake stack.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pbx.engine.events import CallChanged
from pbx.engine.routing import Party
from pbx.engine.services import Addr
from pbx.sip import sdp
from pbx.sip.dialog import Dialog
from pbx.sip.headers import Headers, Via
from pbx.sip.ids import new_branch, new_call_id, new_tag
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import SipUri
from tests.unit.fakes.directory import COMPANY
from tests.unit.fakes.sip import ADVERTISE

if TYPE_CHECKING:
    from tests.unit.fakes.office import Pbx

RTP_PORT = 16384  # each phone has its own host, so one RTP port each is enough


@dataclass(eq=False)
class Dialled:
    """A call a phone placed: its INVITE, and the call the PBX made of it (if any)."""

    phone: Phone
    invite: Request
    key: Any  # the INVITE's server transaction, as CANCEL names it
    made: str | None  # the id of the PBX's call (None: refused before it was a call)

    @property
    def call_id(self) -> str:
        """The id of the call the PBX made of this INVITE."""
        assert self.made is not None, f"the INVITE never became a call: {self.statuses}"
        return self.made

    @property
    def statuses(self) -> list[int]:
        """The statuses the PBX answered the INVITE with, in order."""
        return [r.status for r in self.phone.pbx.stack.responses_to(self.invite)]

    @property
    def final(self) -> Response:
        finals = [r for r in self.phone.pbx.stack.responses_to(self.invite) if r.status >= 200]
        assert len(finals) == 1, f"{len(finals)} final responses: {self.statuses}"
        return finals[0]

    @property
    def sip_call_id(self) -> str:
        return self.invite.call_id

    async def cancel(self, *, settle: bool = True) -> bool:
        """The caller gives up: what a CANCEL for the INVITE does; whether a call was found."""
        known = self.phone.pbx.calls.cancel(self.key)
        if settle:
            await self.phone.pbx.settle()
        return known

    async def ack(self, body: bytes = b"") -> None:
        """ACK the PBX's 200, with an answer in it when the 200 carried an offer."""
        await self.phone.ack(self.final, body)


class Phone:
    """One registered device, played by the test; its SIP is real, its network is the fake."""

    def __init__(self, pbx: Pbx, device: str, number: str, name: str, host: str) -> None:
        self.pbx = pbx
        self.device = device
        self.number = number
        self.name = name
        self.host = host
        self.addr: Addr = (host, 5060)
        self._tags: dict[str, str] = {}  # Call-ID of an INVITE the PBX sent us -> our To tag
        self._dialled: list[Request] = []
        self._dialogs: dict[str, Dialog] = {}  # Call-ID -> our side of the dialog
        self._byes: set[str] = set()  # Call-IDs of the dialogs we hung up
        self._versions = itertools.count(1)

    def __repr__(self) -> str:
        return f"<Phone {self.device}>"

    @property
    def contact(self) -> str:
        return f"<sip:{self.device}@{self.host}:5060>"

    def via(self) -> Via:
        return Via.parse(f"SIP/2.0/UDP {self.host}:5060;branch={new_branch()}")

    def sdp(self, direction: str = "sendrecv") -> bytes:
        offer = sdp.make_offer(
            self.host, RTP_PORT, session_id=7, version=next(self._versions), direction=direction
        )
        return bytes(offer)

    # --- what the PBX sent this phone -------------------------------------------------------

    def received(self, method: str | None = None) -> list[Request]:
        requests = self.pbx.stack.requests_to(self.addr)
        return [r for r in requests if method is None or r.method == method]

    @property
    def got(self) -> list[str]:
        """The methods of the requests the PBX sent this phone, in order."""
        return [r.method for r in self.received()]

    @property
    def invites(self) -> list[Request]:
        """The INVITEs that started calls to this phone (re-INVITEs left out)."""
        return [r for r in self.received("INVITE") if r.to_addr.tag is None]

    @property
    def invite(self) -> Request:
        invites = self.invites
        assert invites, f"{self.device} got no INVITE"
        return invites[-1]

    def notified(self, call_id: str | None = None) -> list[int]:
        """The statuses of the transfer NOTIFYs (sipfrag) this phone got."""
        wanted = self.dialog(call_id).call_id
        return [int(r.body.split()[1]) for r in self.received("NOTIFY") if r.call_id == wanted]

    # --- answering the PBX's INVITEs ------------------------------------------------------

    async def reply(
        self,
        status: int,
        invite: Request | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        settle: bool = True,
    ) -> None:
        """Respond to the PBX's INVITE (the last one by default); `settle=False` leaves the
        call manager no time to react before the test's next step."""
        invite = invite or self.invite
        tag = None if status == 100 else self._tags.setdefault(invite.call_id, new_tag())
        response = make_response(invite, status, to_tag=tag, headers=headers, body=body)
        self.pbx.stack.deliver(invite, response)
        if settle:
            await self.pbx.settle()

    async def ring(self, invite: Request | None = None) -> None:
        await self.reply(180, invite)

    async def answer(
        self, invite: Request | None = None, *, body: bytes | None = None, settle: bool = True
    ) -> None:
        """200 with our answer to the PBX's offer (or `body`)."""
        invite = invite or self.invite
        if body is None:
            body = self.answer_to(invite.body)
        tag = self._tags.setdefault(invite.call_id, new_tag())
        self._dialogs[invite.call_id] = Dialog.from_uas(invite, tag)
        headers = (("Contact", self.contact), ("Content-Type", "application/sdp"))
        await self.reply(200, invite, headers=headers, body=body, settle=settle)

    async def refuse(self, status: int = 486, invite: Request | None = None) -> None:
        await self.reply(status, invite)

    async def never_answer(self, request: Request | None = None) -> None:
        """The transaction of the PBX's INVITE (or `request`) times out (timer B or F): nobody
        there. A sender that waits for no response learns nothing, as with a real stack."""
        request = request or self.invite
        if self.pbx.stack.waits_for(request):
            self.pbx.stack.deliver(request, None)
        await self.pbx.settle()

    # --- calling ---------------------------------------------------------------------------

    async def dial(
        self,
        number: str,
        *,
        body: bytes | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Dialled:
        """Send the PBX an INVITE for `number` with our offer, or `body` (b"": late offer),
        and `headers` besides the ones every INVITE has (Session-Expires, Supported, Allow)."""
        fields = Headers(
            [
                ("Via", str(self.via())),
                ("Max-Forwards", "70"),
                ("From", f'"{self.name}" <sip:{self.number}@{ADVERTISE}>;tag={new_tag()}'),
                ("To", f"<sip:{number}@{ADVERTISE}>"),
                ("Call-ID", new_call_id(self.host)),
                ("CSeq", "1 INVITE"),
                ("Contact", self.contact),
                *headers,
            ]
        )
        body = self.sdp() if body is None else body
        if body:
            fields.add("Content-Type", "application/sdp")
        invite = Request("INVITE", f"sip:{number}@{ADVERTISE}", fields, body)
        self._dialled.append(invite)
        key = ("INVITE", invite.branch)
        caller = Party(COMPANY, self.number, self.name, self.device)
        direction = "outbound" if number.startswith("0") else "internal"
        pbx = self.pbx
        mark = len(pbx.log)

        async def invited() -> None:  # what Engine._invite does once the caller is known
            pbx.calls.setup_started(key)
            try:
                await pbx.calls.incoming(invite, self.addr, "udp", key, caller, number, direction)
            finally:
                pbx.calls.setup_finished(key)

        pbx.tasks.spawn(invited())
        await pbx.settle()
        created = [
            e.call_id for e in pbx.log[mark:] if isinstance(e, CallChanged) and e.previous is None
        ]
        return Dialled(self, invite, key, created[0] if created else None)

    # --- inside dialogs --------------------------------------------------------------------

    def dialog(self, call_id: str | None = None) -> Dialog:
        """Our side of the dialog with this SIP Call-ID (None: the one dialog still up)."""
        for invite in self._dialled:
            if invite.call_id not in self._dialogs:
                ok = [r for r in self.pbx.stack.responses_to(invite) if 200 <= r.status < 300]
                if ok:
                    self._dialogs[invite.call_id] = Dialog.from_uac(invite, ok[0])
        if call_id is None:
            byes = {r.call_id for r in self.received("BYE")} | self._byes
            live = [c for c in self._dialogs if c not in byes]
            assert len(live) == 1, f"{self.device} has {len(live)} dialogs up: name one"
            call_id = live[0]
        return self._dialogs[call_id]

    def replaces(self, call_id: str) -> str:
        """A Replaces value naming our dialog `call_id` as the PBX sees it (RFC 3891 3)."""
        invite = next((d for d in self._dialled if d.call_id == call_id), None)
        answered = invite is None or any(
            r.status >= 200 for r in self.pbx.stack.responses_to(invite)
        )
        if not answered:  # our INVITE still rings: name its early dialog
            assert invite is not None
            tagged = [r for r in self.pbx.stack.responses_to(invite) if r.to_addr.tag]
            to_tag, from_tag = tagged[-1].to_addr.tag, invite.from_addr.tag
        else:
            dialog = self.dialog(call_id)
            to_tag, from_tag = dialog.remote_tag, dialog.local_tag
        return f"{call_id};to-tag={to_tag};from-tag={from_tag}"

    async def send(
        self,
        method: str,
        call_id: str | None = None,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Response | None:
        """Send a request in one of our dialogs; returns the PBX's last response to it."""
        dialog = self.dialog(call_id)
        request, _ = dialog.create_request(
            method,
            via=self.via(),
            contact=self.contact,
            body=body,
            content_type=content_type,
            extra_headers=headers,
        )
        if method == "BYE":
            self._byes.add(dialog.call_id)
        self.pbx.receive(request)
        await self.pbx.settle()
        responses = self.pbx.stack.responses_to(request)
        last = responses[-1] if responses else None
        if method == "INVITE" and body and last is not None and 200 <= last.status < 300:
            await self.ack(last)  # a re-INVITE without an offer is ACKed by the test, answered
        return last

    async def ack(self, response: Response, body: bytes = b"") -> None:
        """ACK the PBX's 2xx to one of our INVITEs, with our answer when it carried an offer."""
        dialog = self.dialog(response.call_id)
        ack, _ = dialog.make_ack(
            response.cseq.number,
            via=self.via(),
            body=body,
            content_type="application/sdp" if body else None,
        )
        self.pbx.receive(ack)
        await self.pbx.settle()

    def answer_to(self, offer: bytes, direction: str | None = None) -> bytes:
        """Our SDP answer to the PBX's `offer`."""
        answer = sdp.negotiate(
            sdp.SessionDescription.parse(offer),
            local_ip=self.host,
            local_port=RTP_PORT,
            session_id=7,
            version=next(self._versions),
            direction=direction,
        )
        return bytes(answer.sdp)

    async def hang_up(self, call_id: str | None = None) -> Response | None:
        return await self.send("BYE", call_id)

    async def hold(self, call_id: str | None = None, method: str = "INVITE") -> Response | None:
        """Put the other party on hold: an offer that only sends (RFC 3264 8.4)."""
        return await self.offer(self.sdp("sendonly"), call_id, method)

    async def resume(self, call_id: str | None = None, method: str = "INVITE") -> Response | None:
        return await self.offer(self.sdp("sendrecv"), call_id, method)

    async def offer(
        self,
        body: bytes,
        call_id: str | None = None,
        method: str = "INVITE",
        *,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Response | None:
        content_type = "application/sdp" if body else None
        return await self.send(
            method, call_id, body=body, content_type=content_type, headers=headers
        )

    async def respond(
        self,
        request: Request,
        status: int = 200,
        *,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Respond to a request the PBX sent inside one of our dialogs (a session refresh).

        A response to a request whose sender waits for none ends in the stack's transaction,
        as with a real stack.
        """
        if body:
            headers = (*headers, ("Content-Type", "application/sdp"))
        if self.pbx.stack.waits_for(request):
            response = make_response(request, status, headers=headers, body=body)
            self.pbx.stack.deliver(request, response)
        await self.pbx.settle()

    async def refer(
        self, number: str, call_id: str | None = None, *, replaces: str | None = None
    ) -> Response | None:
        """Transfer the other party of our dialog to `number` (attended: `replaces`)."""
        headers = {"Replaces": replaces} if replaces else {}
        target = SipUri("sip", number, None, ADVERTISE, None, {}, headers)
        refer_to = (
            ("Refer-To", f"<{target}>"),
            ("Referred-By", f"<sip:{self.number}@{ADVERTISE}>"),
        )
        return await self.send("REFER", call_id, headers=refer_to)
