"""Interop of the SIP stack with real peers: 405 before 415, Via stamps, To tags, TCP reach."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from pbx.engine.registrar import Binding
from pbx.engine.runtime import Engine
from pbx.sip.digest import DigestClient
from pbx.sip.framing import StreamFramer
from pbx.sip.headers import Headers
from pbx.sip.ids import new_branch, new_call_id, new_tag
from pbx.sip.message import Request, Response, make_response, parse_message
from tests.integration.engine_fixture import Pbx
from tests.integration.peers.ports import HOST, free_port_range
from tests.integration.peers.sipp import SippBackground, run_sipp, sipp_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]

T = TypeVar("T")

PIDF = b'<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:201@x"/>'


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# --- requests over UDP from a plain socket -----------------------------------------------------


def _request(
    method: str,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    extra: tuple[str, ...] = (),
) -> bytes:
    """A request whose Via names an address the socket does not send from (a phone behind NAT)."""
    lines = [
        f"{method} sip:202@{HOST} SIP/2.0",
        f"Via: SIP/2.0/UDP 10.9.8.7:5060;branch={new_branch()};rport",
        f"From: <sip:201@{HOST}>;tag={new_tag()}",
        f"To: <sip:202@{HOST}>",
        f"Call-ID: {new_call_id('10.9.8.7')}",
        f"CSeq: 1 {method}",
        "Max-Forwards: 70",
        *extra,
    ]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _ask(pbx: Pbx, data: bytes) -> tuple[Response, int]:
    """Send one datagram to the engine; return its final answer and our source port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(3)
        sock.sendto(data, (HOST, pbx.port))
        while True:
            answer = parse_message(sock.recvfrom(65535)[0])
            if isinstance(answer, Response) and answer.status >= 200:
                return answer, sock.getsockname()[1]


@pytest.mark.parametrize(
    ("method", "content_type", "body"),
    [("PUBLISH", "application/pidf+xml", PIDF), ("MESSAGE", "text/html", b"<b>hello</b>")],
)
def test_a_method_the_engine_does_not_implement_gets_405_whatever_its_body(
    pbx: Pbx, method: str, content_type: str, body: bytes
) -> None:
    answer, port = _ask(pbx, _request(method, body=body, content_type=content_type))

    assert answer.status == 405
    assert "INVITE" in (answer.headers.get("Allow") or "")
    assert answer.to_addr.tag
    assert (answer.top_via.received, answer.top_via.rport) == (HOST, port)


def test_a_method_the_engine_does_not_implement_gets_405_even_when_it_requires_an_extension(
    pbx: Pbx,
) -> None:
    """RFC 3261 8.2.1 before 8.2.2.3: the method is inspected before its Require."""
    answer, _ = _ask(pbx, _request("PUBLISH", extra=("Require: eventlist", "Event: presence")))
    assert answer.status == 405


def test_an_extension_the_engine_lacks_gets_420_naming_it(pbx: Pbx) -> None:
    answer, _ = _ask(pbx, _request("OPTIONS", extra=("Require: 100rel, timer",)))
    assert answer.status == 420
    assert answer.headers.get("Unsupported") == "100rel"  # session timers we do support


def test_an_invite_refused_without_a_transaction_says_where_it_came_from(pbx: Pbx) -> None:
    answer, port = _ask(pbx, _request("INVITE", body=b"<b/>", content_type="text/html"))

    assert answer.status == 415
    assert answer.to_addr.tag
    assert (answer.top_via.received, answer.top_via.rport) == (HOST, port)


def test_a_phone_sees_a_to_tag_on_every_answer_to_register_and_options(pbx: Pbx) -> None:
    # The scenario fails unless the 401, the 200 and the 200 to OPTIONS all tag the To.
    result = run_sipp(
        "register_expect_to_tags",
        pbx.address,
        keys={"user": "201"},
        auth=("201", pbx.secrets["201"]),
    )
    assert result.ok, result.explain()


# --- a phone registered over TCP -----------------------------------------------------------------


def _tcp_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def _tcp_uas(scenario: str, port: int) -> Iterator[SippBackground]:
    """A SIPp UAS over TCP on `port`.

    SippBackground.start waits for the UDP port SIPp binds over UDP; over TCP it binds none,
    so this holds that UDP port for it (nothing else wants it) and waits for the listener.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as placeholder:
        placeholder.bind((HOST, port))
        with SippBackground(scenario, local_port=port, extra_args=["-t", "t1"], timeout=20) as uas:
            _wait_for(lambda: _tcp_listening(port))
            yield uas


def _register_over_tcp_and_leave(pbx: Pbx, username: str, contact_port: int) -> None:
    """SIPp registers `username` over TCP with a Contact on contact_port, then hangs up."""
    result = run_sipp(
        "register_tcp_contact",
        pbx.address,
        keys={"user": username, "contact_port": str(contact_port)},
        auth=(username, pbx.secrets[username]),
        extra_args=["-t", "t1"],
    )
    assert result.ok, result.explain()


def _on_engine(pbx: Pbx, fn: Callable[[Engine], T]) -> T:
    """fn(engine), evaluated on the engine's loop rather than beside it in the test's thread."""

    async def evaluate() -> T:
        return fn(pbx.engine)

    result: T = pbx.run(evaluate())
    return result


def _binding(pbx: Pbx, username: str) -> Binding:
    [binding] = _on_engine(
        pbx, lambda engine: engine.registrar.contacts(username, engine.stack.now())
    )
    return binding


def _connected(pbx: Pbx, addr: tuple[str, int]) -> bool:
    return _on_engine(pbx, lambda engine: engine.stack.transports.connected(addr))


def _options_from_engine(pbx: Pbx, binding: Binding) -> tuple[tuple[str, int], Response | None]:
    """The engine sends OPTIONS where SipStack.destination says; return that and the answer."""

    async def send() -> tuple[tuple[str, int], Response | None]:
        stack = pbx.engine.stack
        dest = stack.destination(binding)
        headers = Headers(
            [
                ("Via", str(stack.via(binding.transport))),
                ("Max-Forwards", "70"),
                ("From", f"<sip:centralino@{stack.advertise}>;tag={new_tag()}"),
                ("To", f"<{binding.contact}>"),
                ("Call-ID", new_call_id(stack.advertise)),
                ("CSeq", "1 OPTIONS"),
                ("Contact", stack.contact(transport=binding.transport)),
            ]
        )
        answered: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()

        def on_response(response: Response | None) -> None:
            if (response is None or response.status >= 200) and not answered.done():
                answered.set_result(response)

        request = Request("OPTIONS", str(binding.contact), headers)
        stack.send_request(request, dest, binding.transport, on_response)
        return dest, await asyncio.wait_for(answered, 5)

    result: tuple[tuple[str, int], Response | None] = pbx.run(send())
    return result


def test_a_tcp_phone_whose_connection_closed_is_reached_at_its_contact(pbx: Pbx) -> None:
    contact_port = free_port_range(1)
    _register_over_tcp_and_leave(pbx, "202", contact_port)
    binding = _binding(pbx, "202")
    assert binding.transport == "tcp"
    assert binding.source[1] != contact_port
    _wait_for(lambda: not _connected(pbx, binding.source))

    with _tcp_uas("uas_options", contact_port) as phone:
        dest, answer = _options_from_engine(pbx, binding)
        assert dest == (HOST, contact_port)
        assert answer is not None and answer.status == 200
        assert phone.wait(10).ok


class _TcpPhone:
    """A phone that registers over TCP and keeps its connection, answering OPTIONS on it."""

    def __init__(self, pbx: Pbx, username: str, contact_port: int) -> None:
        self.username, self.contact_port = username, contact_port
        self.sock = socket.create_connection((HOST, pbx.port), timeout=5)
        self.framer = StreamFramer()
        self.pending: list[bytes] = []
        self.digest = DigestClient(username, pbx.secrets[username])
        self.call_id = new_call_id(HOST)

    @property
    def source(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def receive(self) -> Request | Response:
        while not self.pending:
            self.pending += self.framer.feed(self.sock.recv(65535))
        return parse_message(self.pending.pop(0))

    def register(self) -> Response:
        answer = self._register(1, None)
        if answer.status == 401:
            challenge = answer.headers.get("WWW-Authenticate") or ""
            uri = f"sip:{HOST}"
            authorization = self.digest.authorization(challenge, method="REGISTER", uri=uri)
            answer = self._register(2, authorization)
        return answer

    def _register(self, cseq: int, authorization: str | None) -> Response:
        host, port = self.source
        lines = [
            f"REGISTER sip:{HOST} SIP/2.0",
            f"Via: SIP/2.0/TCP {host}:{port};branch={new_branch()};rport",
            f"From: <sip:{self.username}@{HOST}>;tag={new_tag()}",
            f"To: <sip:{self.username}@{HOST}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} REGISTER",
            f"Contact: <sip:{self.username}@{HOST}:{self.contact_port};transport=tcp>",
            "Expires: 300",
            "Max-Forwards: 70",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        self.sock.sendall(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
        while True:
            answer = self.receive()
            if isinstance(answer, Response) and answer.status >= 200:
                return answer

    def answer_options(self) -> None:
        request = self.receive()
        assert isinstance(request, Request) and request.method == "OPTIONS"
        self.sock.sendall(bytes(make_response(request, 200, to_tag=new_tag())))

    def close(self) -> None:
        self.sock.close()


def test_a_tcp_phone_is_reached_through_the_connection_it_registered_on(pbx: Pbx) -> None:
    contact_port = free_port_range(1)  # nobody listens there: only the connection works
    phone = _TcpPhone(pbx, "202", contact_port)
    try:
        assert phone.register().status == 200
        binding = _binding(pbx, "202")
        assert binding.source == phone.source
        assert _connected(pbx, binding.source)

        with ThreadPoolExecutor(1) as pool:
            answered = pool.submit(phone.answer_options)
            dest, answer = _options_from_engine(pbx, binding)
            answered.result(5)
        assert dest == phone.source
        assert answer is not None and answer.status == 200
    finally:
        phone.close()


def test_a_call_reaches_a_tcp_phone_whose_connection_closed(pbx: Pbx) -> None:
    contact_port = free_port_range(1)
    _register_over_tcp_and_leave(pbx, "202", contact_port)
    binding = _binding(pbx, "202")
    _wait_for(lambda: not _connected(pbx, binding.source))

    with _tcp_uas("uas_answer", contact_port) as phone:
        result = pbx.dial("202", duration_ms=300)
        assert result.ok, result.explain()
        assert phone.wait(10).ok


def test_a_call_to_a_tcp_phone_that_refuses_the_connection_fails_at_once(pbx: Pbx) -> None:
    """RFC 3261 17.1.4: a transport error ends the INVITE now, not 32 s later (timer B), so
    the caller hears why (and forwarding or voicemail take over) while still on the line."""
    closed_port = free_port_range(1)  # nobody listens: the TCP connect is refused
    pbx.bind("202", f"{HOST}:{closed_port}", "tcp")
    started = time.monotonic()
    result = pbx.dial("202", "uac_expect_480")
    assert result.ok, result.explain()
    assert time.monotonic() - started < 5  # SIPp itself gives up after 5 s without an answer
    assert pbx.wait_record("no_answer")["disposition"] == "no_answer"
