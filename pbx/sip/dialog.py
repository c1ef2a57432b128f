"""SIP dialogs (RFC 3261 12): identity, route set, CSeq spaces and the remote target."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from pbx.sip.errors import SipParseError
from pbx.sip.headers import Headers, NameAddr, Via
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import SipUri

# Requests whose Contact replaces the remote target (RFC 3261 12.2; 3311 UPDATE, 6665
# SUBSCRIBE/NOTIFY, 3515 REFER).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
# URI parameters a Request-URI may not carry (RFC 3261 19.1.1, table 1).
_NOT_IN_REQUEST_URI = frozenset({"method"})

DialogId = tuple[str, str, str | None]


def _with_tag(addr: NameAddr, tag: str | None) -> NameAddr:
    """A copy of a From/To address with exactly this tag (none when tag is None)."""
    params = {k: v for k, v in addr.params.items() if k != "tag"}
    if tag is not None:
        params["tag"] = tag
    return NameAddr(addr.display, addr.uri, params)


def _contact_uri(message: Request | Response) -> SipUri | None:
    """The SIP URI of the first Contact; None when absent. Raises SipParseError when unusable."""
    contacts = message.headers.get_all("Contact")
    if not contacts:
        return None
    uri = NameAddr.parse(contacts[0]).uri
    if not isinstance(uri, SipUri):
        raise SipParseError(f"Contact must be a SIP URI, not {uri.scheme}:")
    return uri


def _route_set(message: Request | Response, *, reverse: bool) -> list[str]:
    """Record-Route values as a route set, each checked to hold a SIP URI."""
    routes = message.headers.get_all("Record-Route")
    for route in routes:
        if not isinstance(NameAddr.parse(route).uri, SipUri):
            raise SipParseError("Record-Route must hold SIP URIs")
    return routes[::-1] if reverse else routes


@dataclass(slots=True)
class Dialog:
    """One dialog's state as RFC 3261 12 defines it; `early` until a 2xx confirms it."""

    call_id: str
    local_tag: str
    remote_tag: str | None  # None only with RFC 2543 peers that send no tag
    local_uri: NameAddr  # our From (with local_tag)
    remote_uri: NameAddr  # our To (with remote_tag)
    remote_target: SipUri
    route_set: list[str]
    local_cseq: int
    remote_cseq: int | None
    secure: bool = False
    early: bool = False

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a 101-299 response (with a To tag for 1xx) creates for us (12.1.2).

        Raises:
            ValueError: for a response that creates no dialog (a bug of the caller).
            SipParseError: when the response's Contact or Record-Route is unusable.
        """
        status = response.status
        remote_tag = response.to_addr.tag
        if not 101 <= status < 300 or (status < 200 and remote_tag is None):
            raise ValueError(f"a {status} response creates no dialog")
        target = _contact_uri(response)
        if target is None:
            raise SipParseError("response creating a dialog has no Contact")
        local_tag = request.from_addr.tag
        if local_tag is None:
            raise ValueError("our request has no From tag")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_with_tag(request.from_addr, local_tag),
            remote_uri=_with_tag(response.to_addr, remote_tag),
            remote_target=target,
            route_set=_route_set(response, reverse=True),
            local_cseq=request.cseq.number,
            remote_cseq=None,
            secure=request.uri[:5].lower() == "sips:",
            early=status < 200,
        )

    @classmethod
    def from_uas(cls, request: Request, local_tag: str) -> Dialog:
        """The dialog we create by answering `request` with To tag `local_tag` (12.1.1).

        Raises:
            SipParseError: when the request's Contact is missing or unusable, or a
                Record-Route is (answer 400).
        """
        target = _contact_uri(request)
        if target is None:
            raise SipParseError("dialog-creating request has no Contact")
        remote_tag = request.from_addr.tag
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_with_tag(request.to_addr, local_tag),
            remote_uri=_with_tag(request.from_addr, remote_tag),
            remote_target=target,
            route_set=_route_set(request, reverse=False),
            # RFC 3261 12.1.1 leaves our CSeq space empty; our first request will use 1.
            local_cseq=0,
            remote_cseq=request.cseq.number,
            secure=request.uri[:5].lower() == "sips:",
        )

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag)."""
        return self.call_id, self.local_tag, self.remote_tag

    def create_request(
        self,
        method: str,
        *,
        via: Via,
        contact: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> tuple[Request, SipUri]:
        """Build a request within the dialog (12.2.1.1).

        ACK and CANCEL reuse the current CSeq; everything else takes the next one.

        Returns:
            The request and the URI of the next hop to resolve and send it to.
        """
        if method not in ("ACK", "CANCEL"):
            self.local_cseq += 1
        return self._build(method, self.local_cseq, via, contact, body, content_type, extra_headers)

    def make_ack(
        self,
        invite_cseq: int,
        *,
        via: Via,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> tuple[Request, SipUri]:
        """Build the ACK for a 2xx to our INVITE with CSeq `invite_cseq` (13.2.2.4)."""
        return self._build("ACK", invite_cseq, via, None, body, content_type, ())

    def receive_request(self, request: Request) -> Response | None:
        """Check a request received in this dialog (12.2.2).

        Returns:
            None when the TU may go on, or the error response to send (500 for a CSeq out of
            order, 400 for an unusable Contact in a target refresh).

        Raises:
            ValueError: when the request belongs to another dialog (a routing bug of the TU).
        """
        if (request.call_id, request.to_addr.tag, request.from_addr.tag) != self.id:
            raise ValueError("request does not belong to this dialog")
        if request.method in ("ACK", "CANCEL"):
            return None  # they carry the CSeq of the request they act on
        number = request.cseq.number
        if self.remote_cseq is not None and number < self.remote_cseq:
            return make_response(request, 500, "CSeq Out of Order")
        target = None
        if request.method in TARGET_REFRESH_METHODS:
            try:
                target = _contact_uri(request)
            except SipParseError:
                return make_response(request, 400, "Bad Contact")
        self.remote_cseq = number
        if target is not None:
            self.remote_target = target
        return None

    def update_from_response(self, response: Response) -> None:
        """Apply a response to a request we sent in this dialog (12.2.1.2, 13.2.2.4).

        A 2xx (or, while early, a 1xx) to a target refresh replaces the remote target; the
        2xx that confirms an early dialog also recomputes the route set. An unusable Contact
        leaves the target as it was.

        Raises:
            ValueError: when the response belongs to another dialog (a routing bug of the TU).
        """
        if (response.call_id, response.from_addr.tag, response.to_addr.tag) != self.id:
            raise ValueError("response does not belong to this dialog")
        status, method = response.status, response.cseq.method
        if not 101 <= status < 300 or method not in TARGET_REFRESH_METHODS:
            return
        if status < 200 and not self.early:
            return
        if self.early and status >= 200 and method == "INVITE":
            # On a bad Record-Route keep the early route set rather than lose the call.
            with contextlib.suppress(SipParseError):
                self.route_set = _route_set(response, reverse=True)
            self.early = False
        try:
            target = _contact_uri(response)
        except SipParseError:
            return
        if target is not None:
            self.remote_target = target

    def _build(
        self,
        method: str,
        cseq: int,
        via: Via,
        contact: str | None,
        body: bytes,
        content_type: str | None,
        extra_headers: Iterable[tuple[str, str]],
    ) -> tuple[Request, SipUri]:
        request_uri, routes, next_hop = self._routing()
        headers = Headers()
        headers.add("Via", str(via))
        headers.add("Max-Forwards", "70")
        for route in routes:
            headers.add("Route", route)
        headers.add("From", str(self.local_uri))
        headers.add("To", str(self.remote_uri))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if contact is not None:
            headers.add("Contact", contact)
        for name, value in extra_headers:
            headers.add(name, value)
        if body and content_type:
            headers.add("Content-Type", content_type)
        return Request(method, str(request_uri), headers, body), next_hop

    def _routing(self) -> tuple[SipUri, list[str], SipUri]:
        """Request-URI, Route values and next hop, loose or strict (12.2.1.1)."""
        if not self.route_set:
            return self.remote_target, [], self.remote_target
        first = NameAddr.parse(self.route_set[0]).uri
        assert isinstance(first, SipUri)  # checked when the route set was taken
        if first.lr:
            return self.remote_target, list(self.route_set), first
        # A strict router wants itself as Request-URI and the real target as last Route.
        params = {k: v for k, v in first.params.items() if k not in _NOT_IN_REQUEST_URI}
        request_uri = SipUri(
            first.scheme, first.user, first.password, first.host, first.port, params
        )
        routes = [*self.route_set[1:], f"<{self.remote_target}>"]
        return request_uri, routes, first
