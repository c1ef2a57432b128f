"""What the SIP stack answers by itself and how: 405 before 415, Via stamps, To tags, TCP reach.

The stack runs on the test's event loop with its transports replaced by a recorder, so that
every answer is read back as a parsed message without a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pbx.engine.registrar import Binding
from pbx.engine.stack import SipStack
from pbx.engine.transport import Addr, OnMessage
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.uri import SipUri
from pbx.sip.validate import check_request

PHONE: Addr = ("203.0.113.7", 40312)  # the phone as seen from the PBX: a NAT's public side
PIDF = b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"/>'
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def _request(
    method: str,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    to_tag: str | None = None,
    branch: str = "z9hG4bK-test-1",
    cseq: int = 1,
    extra: tuple[str, ...] = (),
    version: str = "SIP/2.0",
) -> bytes:
    """A request from a phone behind NAT: its Via names its private address and asks for rport."""
    to = "<sip:202@pbx.example>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} sip:202@pbx.example {version}",
        f"Via: SIP/2.0/UDP 10.0.0.5:5060;branch={branch};rport",
        "From: <sip:201@pbx.example>;tag=from-1",
        f"To: {to}",
        "Call-ID: call-1@10.0.0.5",
        f"CSeq: {cseq} {method}",
        "Max-Forwards: 70",
        *extra,
    ]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Wire:
    """Stands in for SipTransports: records what the stack sends, knows which TCP peers are up."""

    port = 5060

    def __init__(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.sent: list[tuple[bytes, Addr, str]] = []
        self.open: set[Addr] = set()

    def deliver(self, data: bytes, source: Addr = PHONE, transport: str = "udp") -> None:
        """Bytes from the network, as the real transports hand them to the stack."""
        self.on_message(data, source, transport)

    async def start(self, host: str, port: int) -> None:
        pass

    async def close(self) -> None:
        pass

    def send(self, data: bytes, addr: Addr, transport: str = "udp") -> None:
        self.sent.append((data, addr, transport))

    def connected(self, addr: Addr) -> bool:
        return addr in self.open

    def responses(self) -> list[Response]:
        parsed = [parse_message(data) for data, _, _ in self.sent]
        return [message for message in parsed if isinstance(message, Response)]


class _Engine:
    """A transaction user that keeps what it is given and answers nothing on its own."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def on_request(self, request: Request, source: Addr, transport: str, key: Any) -> None:
        self.requests.append(request)

    def on_stray_response(self, response: Response, source: Addr) -> None:
        pass

    def on_ack_timeout(self, key: Any) -> None:
        pass


@pytest.fixture
async def stack() -> AsyncIterator[SipStack]:
    sip = SipStack("192.0.2.1")
    sip.transports = _Wire(sip.transports.on_message)  # type: ignore[assignment]
    sip.user = _Engine()
    await sip.start("192.0.2.1", 5060)
    yield sip
    await sip.close()


def _wire(stack: SipStack) -> _Wire:
    assert isinstance(stack.transports, _Wire)
    return stack.transports


def _engine(stack: SipStack) -> _Engine:
    assert isinstance(stack.user, _Engine)
    return stack.user


# --- 405 before 415: a body is checked only where we read it ----------------------------------


@pytest.mark.parametrize(
    ("method", "content_type", "body"),
    [
        ("PUBLISH", "application/pidf+xml", PIDF),
        ("MESSAGE", "text/html", b"<b>hi</b>"),
        ("MESSAGE", "text/plain", b"hi"),
        ("PUBLISH", "application/resource-lists+xml", b"<x/>"),
    ],
)
def test_a_method_we_do_not_implement_passes_the_checks_whatever_its_body(
    method: str, content_type: str, body: bytes
) -> None:
    request = parse_message(_request(method, body=body, content_type=content_type))

    assert isinstance(request, Request)
    assert check_request(request) is None  # so that the engine answers 405 with Allow


@pytest.mark.parametrize("method", ["REGISTER", "OPTIONS", "BYE"])
def test_a_body_we_would_ignore_does_not_fail_a_method_we_implement(method: str) -> None:
    request = parse_message(_request(method, body=b"<x/>", content_type="text/html"))
    gzipped = parse_message(
        _request(
            method, body=b"\x1f\x8b", content_type="text/plain", extra=("Content-Encoding: gzip",)
        )
    )

    assert isinstance(request, Request) and isinstance(gzipped, Request)
    assert check_request(request) is None
    assert check_request(gzipped) is None


@pytest.mark.parametrize(
    ("method", "to_tag"), [("INVITE", None), ("INVITE", "ours"), ("UPDATE", "ours")]
)
def test_an_offer_that_is_not_sdp_is_still_refused_with_415(
    method: str, to_tag: str | None
) -> None:
    request = parse_message(_request(method, body=b"<b/>", content_type="text/html", to_tag=to_tag))

    assert isinstance(request, Request)
    response = check_request(request)
    assert response is not None and response.status == 415
    assert response.headers.get("Accept") == "application/sdp"


@pytest.mark.parametrize("method", ["UPDATE", "INFO", "NOTIFY"])
def test_a_method_we_take_only_in_a_dialog_passes_the_checks_outside_one(method: str) -> None:
    outside = parse_message(_request(method, body=b"<b/>", content_type="text/html"))
    inside = parse_message(_request(method, body=b"<b/>", content_type="text/html", to_tag="ours"))

    assert isinstance(outside, Request) and isinstance(inside, Request)
    assert check_request(outside) is None  # the engine answers 405 outside a dialog
    refused = check_request(inside)
    assert refused is not None and refused.status == 415


def test_a_body_of_an_invite_without_content_type_is_still_a_bad_request() -> None:
    request = parse_message(_request("INVITE", body=SDP))

    assert isinstance(request, Request)
    response = check_request(request)
    assert response is not None and response.status == 400


async def test_a_publish_with_a_presence_body_reaches_the_engine(stack: SipStack) -> None:
    _wire(stack).deliver(_request("PUBLISH", body=PIDF, content_type="application/pidf+xml"))

    assert [r.method for r in _engine(stack).requests] == ["PUBLISH"]
    assert _wire(stack).sent == []


# --- stateless answers: received/rport and a To tag -------------------------------------------


async def test_a_refused_request_is_answered_with_received_rport_and_a_to_tag(
    stack: SipStack,
) -> None:
    _wire(stack).deliver(_request("INVITE", body=b"<b/>", content_type="text/html"))

    [(_, addr, transport)] = _wire(stack).sent
    [response] = _wire(stack).responses()
    assert response.status == 415
    assert (addr, transport) == (PHONE, "udp")
    via = response.top_via
    assert (via.host, via.received, via.rport) == ("10.0.0.5", "203.0.113.7", 40312)
    assert response.to_addr.tag
    assert _engine(stack).requests == []


async def test_a_malformed_request_is_answered_with_received_rport_and_a_to_tag(
    stack: SipStack,
) -> None:
    _wire(stack).deliver(_request("OPTIONS", version="SIP/7.0"))

    [response] = _wire(stack).responses()
    assert response.status == 505
    assert (response.top_via.received, response.top_via.rport) == ("203.0.113.7", 40312)
    assert response.to_addr.tag


async def test_a_request_with_a_via_we_cannot_read_is_still_answered(stack: SipStack) -> None:
    broken = _request("OPTIONS").replace(b"Via: SIP/2.0/UDP 10.0.0.5:5060", b"Via: SIP/2.0/UDP @@")

    _wire(stack).deliver(broken)

    [(data, addr, _)] = _wire(stack).sent
    assert addr == PHONE
    assert data.startswith(b"SIP/2.0 400 ")
    assert b"\r\nVia: SIP/2.0/UDP @@;branch=z9hG4bK-test-1;rport\r\n" in data


async def test_a_stateless_answer_keeps_the_to_tag_of_an_in_dialog_request(
    stack: SipStack,
) -> None:
    _wire(stack).deliver(
        _request("INVITE", body=b"<b/>", content_type="text/html", to_tag="theirs")
    )

    [response] = _wire(stack).responses()
    assert response.to_addr.tag == "theirs"


# --- To tags on responses sent through a transaction ------------------------------------------


async def _answered(stack: SipStack, wire: bytes, status: int, **options: Any) -> Response:
    _wire(stack).deliver(wire)
    request = _engine(stack).requests[-1]
    stack.send_response(make_response(request, status, **options))
    return _wire(stack).responses()[-1]


@pytest.mark.parametrize(
    ("method", "status"),
    [("REGISTER", 401), ("REGISTER", 200), ("OPTIONS", 200), ("PUBLISH", 405), ("BYE", 481)],
)
async def test_a_final_response_outside_a_dialog_carries_a_to_tag(
    stack: SipStack, method: str, status: int
) -> None:
    response = await _answered(stack, _request(method), status)

    assert response.status == status
    assert response.to_addr.tag
    assert (response.top_via.received, response.top_via.rport) == ("203.0.113.7", 40312)


async def test_a_retransmitted_request_gets_the_same_to_tag_again(stack: SipStack) -> None:
    first = await _answered(stack, _request("OPTIONS"), 200)
    _wire(stack).deliver(_request("OPTIONS"))

    again = _wire(stack).responses()[-1]
    assert len(_wire(stack).sent) == 2
    assert first.to_addr.tag is not None
    assert again.to_addr.tag == first.to_addr.tag


async def test_a_100_trying_carries_no_to_tag(stack: SipStack) -> None:
    response = await _answered(
        stack, _request("INVITE", body=SDP, content_type="application/sdp"), 100
    )

    assert response.to_addr.tag is None


async def test_an_in_dialog_response_keeps_the_tag_of_the_request(stack: SipStack) -> None:
    response = await _answered(stack, _request("BYE", to_tag="ours"), 200)

    assert response.to_addr.tag == "ours"


async def test_an_invite_response_keeps_the_tag_its_leg_chose(stack: SipStack) -> None:
    invite = _request("INVITE", body=SDP, content_type="application/sdp")

    ringing = await _answered(stack, invite, 180, to_tag="leg-a")
    request = _engine(stack).requests[-1]
    stack.send_response(make_response(request, 486, to_tag="leg-a"))

    assert ringing.to_addr.tag == "leg-a"
    assert _wire(stack).responses()[-1].to_addr.tag == "leg-a"


async def test_the_200_to_a_cancel_carries_the_tag_of_the_ringing_invite(stack: SipStack) -> None:
    await _answered(
        stack, _request("INVITE", body=SDP, content_type="application/sdp"), 180, to_tag="leg-a"
    )

    cancelled = await _answered(stack, _request("CANCEL"), 200)

    assert cancelled.cseq.method == "CANCEL"
    assert cancelled.to_addr.tag == "leg-a"


async def test_a_cancel_before_any_ringing_gets_a_tag_of_its_own(stack: SipStack) -> None:
    await _answered(stack, _request("INVITE", body=SDP, content_type="application/sdp"), 100)

    cancelled = await _answered(stack, _request("CANCEL"), 200)

    assert cancelled.to_addr.tag


async def test_a_cancel_of_another_invite_does_not_borrow_its_tag(stack: SipStack) -> None:
    await _answered(
        stack, _request("INVITE", body=SDP, content_type="application/sdp"), 180, to_tag="leg-a"
    )

    other = await _answered(stack, _request("CANCEL", branch="z9hG4bK-other"), 200)

    assert other.to_addr.tag not in (None, "leg-a")


# --- where requests to a registered phone go -------------------------------------------------


def _binding(contact: str, transport: str, source: Addr = PHONE) -> Binding:
    return Binding("202", SipUri.parse(contact), source, transport, 3600.0, "reg-1", 1)


def _nothing_is_connected(addr: Addr) -> bool:
    return False


def test_a_phone_registered_over_udp_is_reached_at_its_source() -> None:
    binding = _binding("sip:202@10.0.0.5:5060", "udp")

    assert binding.destination(_nothing_is_connected) == PHONE


def test_a_phone_registered_over_tcp_is_reached_through_its_open_connection() -> None:
    binding = _binding("sip:202@10.0.0.5:5070;transport=tcp", "tcp")

    assert binding.destination(lambda addr: addr == PHONE) == PHONE


def test_once_its_connection_is_gone_a_tcp_phone_is_reached_at_its_contact() -> None:
    binding = _binding("sip:202@198.51.100.4:5070;transport=tcp", "tcp")

    assert binding.destination(_nothing_is_connected) == ("198.51.100.4", 5070)


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ("sip:202@198.51.100.4;transport=tcp", ("198.51.100.4", 5060)),
        ("sips:202@198.51.100.4", ("198.51.100.4", 5061)),
        ("sip:202@[2001:db8::4]:5070;transport=tcp", ("2001:db8::4", 5070)),
    ],
)
def test_a_contact_without_a_port_means_the_default_one(contact: str, expected: Addr) -> None:
    assert _binding(contact, "tcp").destination(_nothing_is_connected) == expected


def test_a_contact_with_a_name_keeps_the_source_for_want_of_resolution() -> None:
    binding = _binding("sip:202@df7jal23ls0d.invalid;transport=tcp", "tcp")

    assert binding.destination(_nothing_is_connected) == PHONE


async def test_the_stack_asks_its_transports_which_connections_are_open(stack: SipStack) -> None:
    binding = _binding("sip:202@198.51.100.4:5070;transport=tcp", "tcp")

    assert stack.destination(binding) == ("198.51.100.4", 5070)
    _wire(stack).open.add(PHONE)
    assert stack.destination(binding) == PHONE
