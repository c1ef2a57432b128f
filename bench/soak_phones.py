"""The soak test's phones: many extensions on one SIP socket, registering with short expiries,
calling each other with RTP both ways, holding, resuming and transferring (bench/soak.py).

Written from RFC 3261 on plain strings, not with pbx.sip, so that the load does not share the
code it tests. UDP only: one socket carries every phone's SIP (each registers it as its
contact), each call leg has its own RTP socket, and one 20 ms clock paces every stream. What
the phones saw goes into a `Tally` whose lists are emptied as they are read, so that a long
run does not grow here either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import struct
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
HOST = "127.0.0.1"
T1, T2, TIMEOUT = 0.5, 4.0, 32.0  # RFC 3261 17.1.1.1 timers; a transaction gives up after 64*T1
EXPIRES = 60  # the registrar's minimum: every phone refreshes about once a minute
REFRESH = (40.0, 50.0)  # seconds between a phone's REGISTERs, drawn per refresh
RING_SECONDS = 0.5  # a called phone rings this long, then answers
PTIME = 0.02
PAYLOAD = b"\xff" * 160  # 20 ms of G.711 u-law silence
MEDIA_SHARE = 0.9  # a talking phone must get this share of what its party sent
MEDIA_SLACK = 5  # packets in flight when a phase starts or ends
ENDED_WITHIN = 5.0  # seconds for the far end's BYE once one side hung up
COOLDOWN = 2.0  # a phone rests this long after a call: late retransmissions find nobody new
ERROR_DETAILS = 30  # failure reports kept word for word

_COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact"}
_COMPACT.update({"l": "content-length", "c": "content-type", "r": "refer-to", "o": "event"})
_TAG = re.compile(r";\s*tag=([^;,\s>]+)")
_BRANCH = re.compile(r";\s*branch=([^;,\s]+)")
_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*("([^"]*)"|[^,\s]*)')


class CallFailed(Exception):
    """A call did not go as a phone expects: the reason, for the tally."""


# --- messages ------------------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """A SIP request or response, parsed just enough: start line, headers in order, body."""

    first: str
    headers: list[tuple[str, str]]
    body: bytes

    @classmethod
    def parse(cls, data: bytes) -> Message:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # a folded line continues the last header
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers.append((_COMPACT.get(name, name), value.strip()))
        return cls(lines[0], headers, body)

    def get(self, name: str) -> str:
        return next((value for n, value in self.headers if n == name), "")

    def all(self, name: str) -> list[str]:
        return [value for n, value in self.headers if n == name]

    @property
    def is_response(self) -> bool:
        return self.first.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        return int(self.first.split()[1])

    @property
    def method(self) -> str:
        if self.is_response:
            return self.get("cseq").split()[-1].upper()
        return self.first.split(" ", 1)[0]

    @property
    def call_id(self) -> str:
        return self.get("call-id")

    @property
    def branch(self) -> str:
        found = _BRANCH.search(self.get("via"))
        return found.group(1) if found else ""

    @property
    def target_user(self) -> str:
        """The user part of a request's Request-URI."""
        uri = self.first.split(" ")[1]
        return uri.split(":", 1)[1].split("@", 1)[0] if "@" in uri else ""


def tag_of(value: str) -> str:
    found = _TAG.search(value.rsplit(">", 1)[-1] if ">" in value else value)
    return found.group(1) if found else ""


def uri_of(value: str) -> str:
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: an ACK nobody waits for any more is no error."""
    if not future.cancelled():
        future.exception()


async def within(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """`awaitable`'s result, or CallFailed("timeout: `what`") after `seconds`."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise CallFailed(f"timeout: {what}") from None


def new_id() -> str:
    return uuid.uuid4().hex


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SIP digest is MD5


def authorization(challenge: str, user: str, secret: str, method: str, uri: str) -> str:
    """The Authorization value answering a Digest MD5 challenge (RFC 2617, qop=auth)."""
    params = {m.group(1).lower(): m.group(3) or m.group(2) for m in _AUTH_PARAM.finditer(challenge)}
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    ha1, ha2 = _md5(f"{user}:{realm}:{secret}"), _md5(f"{method}:{uri}")
    value = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
    if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
        cnonce, nc = new_id()[:16], "00000001"
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        value += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
    value += f', response="{response}", algorithm=MD5'
    if "opaque" in params:
        value += f', opaque="{params["opaque"]}"'
    return value


def md5_challenge(message: Message) -> str:
    """The MD5 challenge of a 401/407 (the registrar may offer SHA-256 first)."""
    values = message.all("www-authenticate") + message.all("proxy-authenticate")
    for value in values:
        if "algorithm" not in value.lower() or re.search(r"algorithm=\"?md5\b", value, re.I):
            return value
    return values[0] if values else ""


def sdp(port: int, version: int, direction: str = "sendrecv") -> bytes:
    return (
        f"v=0\r\no=phone 1 {version} IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
        f"a={direction}\r\n"
    ).encode()


def media_address(body: bytes) -> tuple[str, int] | None:
    """Where the far end wants our RTP: the c= address and the m=audio port of an SDP."""
    text = body.decode("utf-8", "replace")
    host = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    port = re.search(r"^m=audio (\d+)", text, re.M)
    if not host or not port:
        return None
    return host.group(1), int(port.group(1))


# --- media ---------------------------------------------------------------------------------


class Stream(asyncio.DatagramProtocol):
    """One leg's RTP socket: sends a G.711 packet per clock tick, counts what arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.target: tuple[str, int] | None = None
        self.sent = 0
        self.received = 0
        self._seq = random.randrange(65536)
        self._ts = random.randrange(1 << 32)
        self._ssrc = random.randrange(1 << 32)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1

    def error_received(self, exc: Exception) -> None:
        pass  # "port unreachable" after the far end closed: the counts tell

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self) -> None:
        if self.target is None or self.transport is None:
            return
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + 160) & 0xFFFFFFFF
        header = struct.pack("!BBHII", 0x80, 0, self._seq, self._ts, self._ssrc)
        self.transport.sendto(header + PAYLOAD, self.target)
        self.sent += 1

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Clock:
    """One 20 ms tick for every open stream; notes how late each tick ran."""

    def __init__(self) -> None:
        self.streams: set[Stream] = set()
        self.lags: list[float] = []  # seconds late, emptied by the sampler
        self._loop = asyncio.get_running_loop()
        self._next = self._loop.time()
        self._handle = self._loop.call_at(self._next, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        self.lags.append(now - self._next)
        for stream in self.streams:
            stream.send()
        self._next += PTIME
        if self._next < now:  # far behind: skip the missed ticks rather than burst
            self._next = now + PTIME
        self._handle = self._loop.call_at(self._next, self._tick)

    def stop(self) -> None:
        self._handle.cancel()


# --- what the phones saw -------------------------------------------------------------------


@dataclass
class Tally:
    """Counts for the report and the verdict; the lists are emptied as they are read."""

    placed: Counter[str] = field(default_factory=Counter)  # per kind of call
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)  # per reason
    details: list[str] = field(default_factory=list)  # the first failures, word for word
    records: int = 0  # call records the calls made should leave
    registered: int = 0
    refreshed: int = 0
    registration_errors: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)  # requests no phone expected
    retransmissions: int = 0  # of our requests, when an answer was late
    rtp_sent: int = 0
    rtp_received: int = 0
    pdd: list[float] = field(default_factory=list)  # INVITE -> 180, seconds; emptied on read
    no_idle_phone: int = 0  # calls not placed: every phone was busy (the load generator's limit)

    def fail(self, kind: str, reason: str, detail: str) -> None:
        self.failed[reason] += 1
        if len(self.details) < ERROR_DETAILS:
            self.details.append(f"{kind}: {detail}")

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def take_pdd(self) -> list[float]:
        taken, self.pdd = self.pdd, []
        return taken


# --- dialogs -------------------------------------------------------------------------------


@dataclass
class Phone:
    number: str
    secret: str
    register_call_id: str = field(default_factory=lambda: f"{new_id()}@{HOST}")
    register_tag: str = field(default_factory=lambda: new_id()[:10])
    register_cseq: int = 0


class Leg:
    """One phone's side of one call: its dialog with the PBX and its RTP stream."""

    def __init__(self, farm: Farm, phone: Phone, call_id: str, local_tag: str) -> None:
        self.farm = farm
        self.phone = phone
        self.call_id = call_id
        self.local_tag = local_tag
        self.local: str = ""  # our From in requests we send, with our tag
        self.remote: str = ""  # their To in requests we send, with their tag
        self.target: str = ""  # the PBX's Contact: where our in-dialog requests go
        self.cseq = 0
        self.sdp_version = 1
        self.stream = Stream()
        loop = asyncio.get_running_loop()
        self.acked: asyncio.Future[None] = loop.create_future()  # the ACK of our 200
        self.acked.add_done_callback(_retrieved)
        self.ended: asyncio.Future[str] = loop.create_future()  # why: "bye in", "bye out"...
        self._finished = False
        self.notifies: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()  # (sipfrag, final)
        self._ack = b""  # the ACK of the PBX's 200, sent again if the 200 comes again

    async def open_stream(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self.stream, local_addr=(HOST, 0))

    def start_media(self, answer: bytes) -> None:
        self.stream.target = media_address(answer) or self.stream.target
        self.farm.clock.streams.add(self.stream)

    def finish(self, why: str) -> None:
        """The dialog is over: stop the stream, forget the leg."""
        if self._finished:
            return
        self._finished = True
        self.farm.clock.streams.discard(self.stream)
        self.farm.tally.rtp_sent += self.stream.sent
        self.farm.tally.rtp_received += self.stream.received
        self.stream.close()
        self.farm.legs.pop((self.call_id, self.local_tag), None)
        if not self.ended.done():
            self.ended.set_result(why)
        if not self.acked.done():
            self.acked.set_exception(CallFailed(f"the call ended ({why}) before its ACK"))

    # --- requests we send in the dialog ------------------------------------------------

    def _request(self, method: str, extra: tuple[str, ...] = (), body: bytes = b"") -> Request:
        self.cseq += 1
        return Request(
            self.farm,
            method,
            self.target,
            self.local,
            self.remote,
            self.call_id,
            self.cseq,
            (f"Contact: <sip:{self.phone.number}@{HOST}:{self.farm.port}>", *extra),
            body,
        )

    async def bye(self) -> int:
        if self.ended.done():
            return 0
        self.farm.clock.streams.discard(self.stream)
        response = await self._request("BYE").send()
        self.finish("bye out")
        return response.status

    async def reinvite(self, direction: str) -> int:
        self.sdp_version += 1
        body = sdp(self.stream.port, self.sdp_version, direction)
        request = self._request("INVITE", ("Content-Type: application/sdp",), body)
        response = await request.send()
        if 200 <= response.status < 300:
            self.farm.send(request.ack_for_2xx())
            self.start_media(response.body)
        return response.status

    async def refer(self, number: str) -> int:
        refer_to = (
            f"Refer-To: <sip:{number}@{HOST}>",
            f"Referred-By: <sip:{self.phone.number}@{HOST}>",
        )
        return (await self._request("REFER", refer_to).send()).status

    async def final_notify(self, timeout: float) -> str:
        """The sipfrag status line of the transfer's last NOTIFY."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            frag, final = await within(self.notifies.get(), left, "the transfer's final NOTIFY")
            if final:
                return frag

    # --- requests the PBX sends in the dialog -------------------------------------------

    def handle(self, request: Message, addr: tuple[str, int]) -> None:
        method, farm = request.method, self.farm
        if method == "ACK":
            if not self.acked.done():
                self.acked.set_result(None)
        elif method == "BYE":
            farm.reply(request, addr, 200, "OK")
            self.finish("bye in")
        elif method in ("INVITE", "UPDATE"):
            if request.body:
                self.stream.target = media_address(request.body) or self.stream.target
            body = sdp(self.stream.port, self.sdp_version) if request.body else b""
            extra = ("Content-Type: application/sdp",) if body else ()
            farm.reply(request, addr, 200, "OK", tag=self.local_tag, extra=extra, body=body)
        elif method == "NOTIFY":
            farm.reply(request, addr, 200, "OK")
            frag = request.body.decode("utf-8", "replace").split("\r\n", 1)[0]
            final = request.get("subscription-state").startswith("terminated")
            self.notifies.put_nowait((frag, final))
        elif method in ("INFO", "OPTIONS"):
            farm.reply(request, addr, 200, "OK")
        else:
            farm.reply(request, addr, 405, "Method Not Allowed")


class Request:
    """A request we send, as a client transaction: retransmitted until answered (UDP)."""

    def __init__(
        self,
        farm: Farm,
        method: str,
        uri: str,
        from_: str,
        to: str,
        call_id: str,
        cseq: int,
        extra: tuple[str, ...] = (),
        body: bytes = b"",
    ) -> None:
        self.farm, self.method, self.uri = farm, method, uri
        self.from_, self.to, self.call_id, self.cseq = from_, to, call_id, cseq
        self.extra, self.body = extra, body
        self.branch = f"z9hG4bK{new_id()[:20]}"
        self.provisional: Callable[[Message], None] | None = None
        self.final: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._got_provisional = False

    def _via(self, branch: str) -> str:
        return f"Via: SIP/2.0/UDP {HOST}:{self.farm.port};branch={branch};rport"

    def encode(self) -> bytes:
        lines = [
            f"{self.method} {self.uri} SIP/2.0",
            self._via(self.branch),
            "Max-Forwards: 70",
            f"From: {self.from_}",
            f"To: {self.to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {self.method}",
            *self.extra,
            "User-Agent: centralino-soak",
            f"Content-Length: {len(self.body)}",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def ack_for(self, response: Message) -> bytes:
        """The ACK of a final response >= 300: same branch, the response's To (RFC 3261 17.1.1.3)."""
        lines = [
            f"ACK {self.uri} SIP/2.0",
            self._via(self.branch),
            "Max-Forwards: 70",
            f"From: {self.from_}",
            f"To: {response.get('to')}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} ACK",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def ack_for_2xx(self, to: str | None = None, uri: str | None = None) -> bytes:
        """The ACK of a 2xx: a transaction of its own, to the dialog's target (RFC 3261 13.2.2.4)."""
        lines = [
            f"ACK {uri or self.uri} SIP/2.0",
            self._via(f"z9hG4bK{new_id()[:20]}"),
            "Max-Forwards: 70",
            f"From: {self.from_}",
            f"To: {to or self.to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} ACK",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def send(self) -> Message:
        """Send and retransmit until a final response; CallFailed after TIMEOUT seconds."""
        farm, data = self.farm, self.encode()
        farm.transactions[self.branch] = self
        farm.send(data)
        started, interval = time.monotonic(), T1
        try:
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(self.final), interval)
                except TimeoutError:
                    pass
                if time.monotonic() - started >= TIMEOUT:
                    raise CallFailed(f"{self.method} timeout") from None
                if not (self.method == "INVITE" and self._got_provisional):
                    farm.send(data)
                    farm.tally.retransmissions += 1
                interval = interval * 2 if self.method == "INVITE" else min(interval * 2, T2)
        finally:
            farm.transactions.pop(self.branch, None)

    def on_response(self, response: Message) -> None:
        if response.status < 200:
            self._got_provisional = True
            if self.provisional is not None:
                self.provisional(response)
            return
        if self.method == "INVITE" and response.status >= 300:
            self.farm.send(self.ack_for(response))
        if not self.final.done():
            self.final.set_result(response)


# --- the phones ----------------------------------------------------------------------------


class Farm(asyncio.DatagramProtocol):
    """Every phone of the soak behind one SIP socket, the PBX at 127.0.0.1:`pbx_port`."""

    def __init__(self, pbx_port: int) -> None:
        self.pbx = (HOST, pbx_port)
        self.domain = HOST
        self.phones: dict[str, Phone] = {}
        self.idle: deque[Phone] = deque()
        self.tally = Tally()
        self.transactions: dict[str, Request] = {}
        self.legs: dict[tuple[str, str], Leg] = {}
        # number -> (its next incoming call, the legs of the call it belongs to)
        self.expected: dict[str, tuple[asyncio.Future[Leg], list[Leg]]] = {}
        self.answers: dict[tuple[str, str, str], tuple[float, bytes]] = {}  # for retransmissions
        self.calls: set[asyncio.Task[Any]] = set()
        self.registering: set[asyncio.Task[Any]] = set()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.clock: Clock
        self._refreshing = False

    @classmethod
    async def start(cls, pbx_port: int) -> Farm:
        """The farm's SIP socket and clock, with no phone yet (see add)."""
        loop = asyncio.get_running_loop()
        transport, farm = await loop.create_datagram_endpoint(
            lambda: cls(pbx_port), local_addr=(HOST, 0)
        )
        farm.port = transport.get_extra_info("sockname")[1]
        farm.clock = Clock()
        farm._sweep()
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            import socket

            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        return farm

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def error_received(self, exc: Exception) -> None:
        pass

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr or self.pbx)

    async def stop(self) -> None:
        self._refreshing = False
        tasks = self.calls | self.registering
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.clock.stop()
        if self.transport is not None:
            self.transport.close()

    # --- what arrives ---------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.strip():
            return  # a keep-alive
        try:
            message = Message.parse(data)
        except (ValueError, IndexError):
            self.tally.unexpected["unparsable message"] += 1
            return
        if message.is_response:
            request = self.transactions.get(message.branch)
            if request is not None:
                request.on_response(message)
            elif message.method == "INVITE" and 200 <= message.status < 300:
                leg = self.legs.get((message.call_id, tag_of(message.get("from"))))
                if leg is not None and leg._ack:  # our ACK was lost: the 200 came again
                    self.send(leg._ack)
            return
        key = (message.call_id, message.get("cseq"), message.branch)
        if message.method != "ACK" and key in self.answers:
            self.send(self.answers[key][1], addr)  # a retransmission: the same answer
            return
        self._request(message, addr)

    def _request(self, request: Message, addr: tuple[str, int]) -> None:
        method = request.method
        to_tag = tag_of(request.get("to"))
        if to_tag:
            leg = self.legs.get((request.call_id, to_tag))
            if leg is not None:
                leg.handle(request, addr)
            elif method != "ACK":
                self.tally.unexpected[f"{method} for no dialog"] += 1
                self.reply(request, addr, 481, "Call/Transaction Does Not Exist")
        elif method == "INVITE":
            self._incoming(request, addr)
        elif method == "CANCEL":
            self.tally.unexpected["CANCEL"] += 1
            self.reply(request, addr, 200, "OK")
        elif method in ("OPTIONS", "NOTIFY"):
            self.reply(request, addr, 200, "OK")
        elif method != "ACK":
            self.reply(request, addr, 405, "Method Not Allowed")

    def _incoming(self, invite: Message, addr: tuple[str, int]) -> None:
        number = invite.target_user
        waiting, legs = self.expected.pop(number, (None, []))
        if waiting is None or waiting.done():
            self.tally.unexpected[f"INVITE to a phone not expecting one ({number})"] += 1
            self.reply(invite, addr, 486, "Busy Here", tag=new_id()[:10])
            return
        leg = Leg(self, self.phones[number], invite.call_id, new_id()[:10])
        leg.local = f"{invite.get('to')};tag={leg.local_tag}"
        leg.remote = invite.get("from")
        leg.target = uri_of(invite.get("contact"))
        self.legs[(leg.call_id, leg.local_tag)] = leg
        legs.append(leg)
        waiting.set_result(leg)
        self._spawn(self._answer(leg, invite, addr))

    async def _answer(self, leg: Leg, invite: Message, addr: tuple[str, int]) -> None:
        """Ring, answer, and send the 200 again until its ACK comes (RFC 3261 13.3.1.4)."""
        await leg.open_stream()
        contact = (f"Contact: <sip:{leg.phone.number}@{HOST}:{self.port}>",)
        self.reply(invite, addr, 180, "Ringing", tag=leg.local_tag, extra=contact)
        await asyncio.sleep(RING_SECONDS)
        if leg.ended.done():
            return
        extra = (*contact, "Content-Type: application/sdp")
        body = sdp(leg.stream.port, leg.sdp_version)
        data = self.reply(invite, addr, 200, "OK", tag=leg.local_tag, extra=extra, body=body)
        leg.stream.target = media_address(invite.body)
        interval, waited = T1, 0.0
        while waited < TIMEOUT:
            done, _ = await asyncio.wait({leg.acked}, timeout=interval)
            if done or leg.ended.done():
                if not leg.ended.done():
                    leg.start_media(invite.body)
                return
            waited += interval
            self.send(data, addr)
            interval = min(interval * 2, T2)
        if not leg.acked.done():
            leg.acked.set_exception(CallFailed("no ACK for the 200"))

    def reply(
        self,
        request: Message,
        addr: tuple[str, int],
        status: int,
        reason: str,
        *,
        tag: str = "",
        extra: tuple[str, ...] = (),
        body: bytes = b"",
    ) -> bytes:
        to = request.get("to")
        if tag and not tag_of(to):
            to = f"{to};tag={tag}"
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {via}" for via in request.all("via")]
        lines += [f"From: {request.get('from')}", f"To: {to}", f"Call-ID: {request.call_id}"]
        lines += [f"CSeq: {request.get('cseq')}", *extra, f"Content-Length: {len(body)}"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.answers[(request.call_id, request.get("cseq"), request.branch)] = (
            time.monotonic(),
            data,
        )
        self.send(data, addr)
        return data

    def _sweep(self) -> None:
        """Drop answers kept for retransmissions once none can come (64*T1), every 10 s."""
        cutoff = time.monotonic() - TIMEOUT - 8
        for key in [k for k, (when, _) in self.answers.items() if when < cutoff]:
            del self.answers[key]
        if self.transport is not None and not self.transport.is_closing():
            asyncio.get_running_loop().call_later(10, self._sweep)

    # --- registrations ----------------------------------------------------------------------

    async def register(self, phone: Phone, expires: int = EXPIRES) -> None:
        """REGISTER (answering the challenge); CallFailed unless the registrar says 200."""
        uri = f"sip:{self.domain}:{self.pbx[1]}"
        aor = f"<sip:{phone.number}@{self.domain}>"
        contact = f"Contact: <sip:{phone.number}@{HOST}:{self.port}>;expires={expires}"
        auth: tuple[str, ...] = ()
        for _ in range(2):
            phone.register_cseq += 1
            request = Request(
                self,
                "REGISTER",
                uri,
                f"{aor};tag={phone.register_tag}",
                aor,
                phone.register_call_id,
                phone.register_cseq,
                (contact, f"Expires: {expires}", *auth),
            )
            response = await request.send()
            if response.status == 401 and not auth:
                value = authorization(
                    md5_challenge(response), phone.number, phone.secret, "REGISTER", uri
                )
                auth = (f"Authorization: {value}",)
                continue
            if response.status != 200:
                raise CallFailed(f"REGISTER answered {response.status}")
            return

    async def add(self, phones: list[Phone], per_second: float = 200.0) -> None:
        """Register `phones` (paced), keep each refreshing on its own, and let them call."""
        results: list[asyncio.Task[None]] = []
        for phone in phones:
            results.append(asyncio.ensure_future(self.register(phone)))
            await asyncio.sleep(1 / per_second)
        outcomes = await asyncio.gather(*results, return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise RuntimeError(f"{len(errors)} phones could not register: {errors[0]!r}")
        self.tally.registered += len(outcomes)
        self._refreshing = True
        loop = asyncio.get_running_loop()
        for phone in phones:
            self.phones[phone.number] = phone
            self.idle.append(phone)
            self._refresh_later(loop, phone)

    def _refresh_later(
        self, loop: asyncio.AbstractEventLoop, phone: Phone, delay: float = 0
    ) -> None:
        loop.call_later(delay or random.uniform(*REFRESH), self._refresh, phone)

    def _refresh(self, phone: Phone) -> None:
        if self._refreshing:
            task = asyncio.ensure_future(self._refresh_once(phone))
            self.registering.add(task)
            task.add_done_callback(self.registering.discard)

    async def _refresh_once(self, phone: Phone) -> None:
        loop = asyncio.get_running_loop()
        try:
            await self.register(phone)
        except CallFailed as error:
            self.tally.registration_errors[str(error)] += 1
            self._refresh_later(loop, phone, 5.0)
            return
        self.tally.refreshed += 1
        self._refresh_later(loop, phone)

    async def unregister_all(self, per_second: float = 200.0) -> int:
        """Expires 0 for every phone; the number that failed."""
        self._refreshing = False
        tasks = []
        for phone in self.phones.values():
            tasks.append(asyncio.ensure_future(self.register(phone, expires=0)))
            await asyncio.sleep(1 / per_second)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        return sum(isinstance(o, BaseException) for o in outcomes)

    # --- calls ------------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.calls.add(task)
        task.add_done_callback(self.calls.discard)
        return task

    def take(self, count: int) -> list[Phone] | None:
        if len(self.idle) < count:
            return None
        return [self.idle.popleft() for _ in range(count)]

    def release(self, phones: list[Phone]) -> None:
        asyncio.get_running_loop().call_later(COOLDOWN, self.idle.extend, phones)

    def expect(self, number: str, legs: list[Leg]) -> asyncio.Future[Leg]:
        """The next call to `number`, whose leg joins `legs` (hung up with them)."""
        future: asyncio.Future[Leg] = asyncio.get_running_loop().create_future()
        self.expected[number] = (future, legs)
        return future

    async def invite(
        self, phone: Phone, number: str, legs: list[Leg], on_ringing: Callable[[], None]
    ) -> Leg:
        """Call `number` from `phone`, answering the challenge; the leg (in `legs`) once
        answered, or CallFailed."""
        uri = f"sip:{number}@{self.domain}:{self.pbx[1]}"
        leg = Leg(self, phone, f"{new_id()}@{HOST}", new_id()[:10])
        leg.local = f"<sip:{phone.number}@{self.domain}>;tag={leg.local_tag}"
        self.legs[(leg.call_id, leg.local_tag)] = leg
        legs.append(leg)
        await leg.open_stream()
        body = sdp(leg.stream.port, leg.sdp_version)
        headers = (
            f"Contact: <sip:{phone.number}@{HOST}:{self.port}>",
            "Content-Type: application/sdp",
        )
        auth: tuple[str, ...] = ()
        for _ in range(2):
            leg.cseq += 1
            request = Request(
                self,
                "INVITE",
                uri,
                leg.local,
                f"<sip:{number}@{self.domain}>",
                leg.call_id,
                leg.cseq,
                (*headers, *auth),
                body,
            )
            request.provisional = lambda r: on_ringing() if r.status in (180, 183) else None
            response = await request.send()
            if response.status == 401 and not auth:
                value = authorization(
                    md5_challenge(response), phone.number, phone.secret, "INVITE", uri
                )
                auth = (f"Authorization: {value}",)
                continue
            break
        if not 200 <= response.status < 300:
            leg.finish("refused")  # a final answer ends the INVITE: no BYE to send
            raise CallFailed(f"INVITE answered {response.status}")
        leg.remote = response.get("to")
        leg.target = uri_of(response.get("contact")) or uri
        leg._ack = request.ack_for_2xx(leg.remote, leg.target)
        self.send(leg._ack)
        leg.start_media(response.body)
        return leg


# --- the calls the soak makes ------------------------------------------------------------


KINDS = ("plain", "plain", "hold", "plain", "transfer", "plain", "hold", "transfer")
TALK_SECONDS = 6.0  # a plain call, answered to hung up
PART_SECONDS = 2.0  # each part of a held or transferred call
RECORDS = {"plain": 1, "hold": 1, "transfer": 2}  # call records each kind leaves (CDR rows)
PHONES_PER_CALL = {"plain": 2, "hold": 2, "transfer": 3}


class Caller:
    """Places the soak's calls, one kind after the other from KINDS, and checks each."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self._count = 0

    def place(self) -> None:
        kind = KINDS[self._count % len(KINDS)]
        phones = self.farm.take(PHONES_PER_CALL[kind])
        if phones is None:
            self.farm.tally.no_idle_phone += 1
            return
        self._count += 1
        self.farm.tally.placed[kind] += 1
        self.farm.tally.records += RECORDS[kind]
        self.farm._spawn(self._run(kind, phones, by_callee=self._count % 4 == 1))

    async def _run(self, kind: str, phones: list[Phone], by_callee: bool) -> None:
        legs: list[Leg] = []
        try:
            if kind == "plain":
                await self._plain(phones, legs, by_callee)
            elif kind == "hold":
                await self._hold(phones, legs)
            else:
                await self._transfer(phones, legs)
            self.farm.tally.ok[kind] += 1
        except CallFailed as error:
            reason = str(error)
            numbers = "->".join(p.number for p in phones)
            self.farm.tally.fail(kind, reason.split(":")[0], f"{numbers}: {reason}")
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug here must not pass for a PBX failure, nor vanish
            self.farm.tally.fail(kind, "soak client error", f"{type(error).__name__}: {error}")
        finally:
            for phone in phones:
                self.farm.expected.pop(phone.number, None)
            for leg in legs:
                if not leg.ended.done():
                    with contextlib.suppress(CallFailed, TimeoutError):
                        await asyncio.wait_for(leg.bye(), 10)
                    leg.finish("cleaned up")
            self.farm.release(phones)

    async def _dial(self, a: Phone, b: Phone, legs: list[Leg]) -> tuple[Leg, Leg]:
        sent = time.monotonic()
        ringing: list[float] = []

        def on_ringing() -> None:
            if not ringing:
                ringing.append(time.monotonic() - sent)

        incoming = self.farm.expect(b.number, legs)
        leg_a = await self.farm.invite(a, b.number, legs, on_ringing)
        if ringing:
            self.farm.tally.pdd.append(ringing[0])
        leg_b = await within(incoming, ENDED_WITHIN, "the callee's INVITE after the 200")
        await within(leg_b.acked, ENDED_WITHIN, "the ACK of the callee's 200")
        return leg_a, leg_b

    async def _talk(self, x: Leg, y: Leg, seconds: float) -> None:
        """Both talk for `seconds`: each must get nearly all the other sent."""
        before = (x.stream.sent, x.stream.received, y.stream.sent, y.stream.received)
        await asyncio.sleep(seconds)
        x_sent, x_got = x.stream.sent - before[0], x.stream.received - before[1]
        y_sent, y_got = y.stream.sent - before[2], y.stream.received - before[3]
        for who, got, sent in ((y, y_got, x_sent), (x, x_got, y_sent)):
            if got < MEDIA_SHARE * sent - MEDIA_SLACK:
                raise CallFailed(f"media lost: {who.phone.number} got {got} of {sent} RTP packets")

    async def _hang_up(self, x: Leg, y: Leg) -> None:
        status = await x.bye()
        if status != 200:
            raise CallFailed(f"BYE answered {status}")
        await within(asyncio.shield(y.ended), ENDED_WITHIN, "the BYE to the other party")

    async def _plain(self, phones: list[Phone], legs: list[Leg], by_callee: bool) -> None:
        a, b = await self._dial(phones[0], phones[1], legs)
        await self._talk(a, b, TALK_SECONDS)
        await (self._hang_up(b, a) if by_callee else self._hang_up(a, b))

    async def _hold(self, phones: list[Phone], legs: list[Leg]) -> None:
        a, b = await self._dial(phones[0], phones[1], legs)
        await self._talk(a, b, PART_SECONDS)
        status = await a.reinvite("sendonly")
        if status != 200:
            raise CallFailed(f"hold re-INVITE answered {status}")
        heard = b.stream.received
        await asyncio.sleep(PART_SECONDS)
        if b.stream.received - heard < MEDIA_SHARE * PART_SECONDS / PTIME / 2:
            raise CallFailed(f"no music on hold: {b.phone.number} got {b.stream.received - heard}")
        status = await a.reinvite("sendrecv")
        if status != 200:
            raise CallFailed(f"resume re-INVITE answered {status}")
        await self._talk(a, b, PART_SECONDS)
        await self._hang_up(a, b)

    async def _transfer(self, phones: list[Phone], legs: list[Leg]) -> None:
        """A calls B, then sends B to C (REFER, blind); B and C talk, C hangs up."""
        a, b = await self._dial(phones[0], phones[1], legs)
        await self._talk(a, b, PART_SECONDS)
        incoming = self.farm.expect(phones[2].number, legs)
        status = await a.refer(phones[2].number)
        if status != 202:
            raise CallFailed(f"REFER answered {status}")
        c = await within(incoming, ENDED_WITHIN, "the transfer target's INVITE")
        await within(c.acked, ENDED_WITHIN, "the ACK of the transfer target's 200")
        frag = await a.final_notify(ENDED_WITHIN)
        if " 200 " not in f"{frag} ":
            raise CallFailed(f"transfer NOTIFY said {frag!r}")
        status = await a.bye()
        if status not in (0, 200):  # 0: the PBX hung up the referrer first
            raise CallFailed(f"referrer's BYE answered {status}")
        await self._talk(b, c, PART_SECONDS)
        await self._hang_up(c, b)
