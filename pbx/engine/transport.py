"""UDP and TCP SIP transports: bytes in and out, nothing else.

Each received datagram or framed stream message goes to one callback with its source address
and transport name; `send` picks the socket. Over TCP a reply reuses the connection its request
came on (RFC 3261 18.2.2), and a request to a new address opens a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from pbx.sip.errors import SipParseError
from pbx.sip.framing import StreamFramer

log = logging.getLogger(__name__)

Addr = tuple[str, int]
OnMessage = Callable[[bytes, Addr, str], None]

UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(
        self, on_message: OnMessage, on_closed: Callable[[Addr], None] | None = None
    ) -> None:
        self.on_message = on_message
        self.on_closed = on_closed  # a TCP connection went away
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        if data.strip(b"\r\n") == b"":
            return  # keep-alive (RFC 5626 CRLF ping on UDP)
        try:
            self.on_message(data, (addr[0], addr[1]), "udp")
        except Exception:  # one bad packet must never stop the transport
            log.exception("error handling datagram from %s", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransports) -> None:
        self.owner = owner
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Addr | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        self.owner._tcp[self.peer] = self

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except SipParseError as error:
            log.info("closing TCP connection from %s: %s", self.peer, error.reason)
            if self.transport:
                self.transport.close()
            return
        for message in messages:
            try:
                assert self.peer is not None
                self.owner.on_message(message, self.peer, "tcp")
            except Exception:
                log.exception("error handling TCP message from %s", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer and self.owner._tcp.get(self.peer) is self:
            del self.owner._tcp[self.peer]
            if self.owner.on_closed is not None:
                self.owner.on_closed(self.peer)

    def write(self, data: bytes) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)


class SipTransports:
    """The SIP listeners of one engine: UDP and TCP on the same address and port."""

    def __init__(
        self,
        on_message: OnMessage,
        on_closed: Callable[[Addr], None] | None = None,
        on_failed: Callable[[Addr], None] | None = None,
    ) -> None:
        self.on_message = on_message
        self.on_closed = on_closed  # a TCP connection went away
        self.on_failed = on_failed  # a TCP connection we opened could not be made
        self._udp: _UdpProtocol | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tcp: dict[Addr, _TcpConnection] = {}
        self._connecting: dict[Addr, list[bytes]] = {}
        self._connects: set[asyncio.Task[None]] = set()
        self.port = 0
        self.host = ""

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.on_message), local_addr=(host, port)
        )
        self._udp = protocol
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Bursts of hundreds of call set-ups a second overflow the default buffer (about
            # 200 KB) while the loop is busy: a dropped INVITE costs the caller a 500 ms
            # retransmission. The kernel caps this at net.core.rmem_max.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        self.host, self.port = transport.get_extra_info("sockname")[:2]
        self._server = await loop.create_server(
            lambda: _TcpConnection(self), host, self.port, reuse_address=True
        )

    def connected(self, addr: Addr) -> bool:
        """Whether a TCP connection with `addr` (either side opened it) is open."""
        conn = self._tcp.get(addr)
        return conn is not None and conn.transport is not None and not conn.transport.is_closing()

    def send(self, data: bytes, addr: Addr, transport: str = "udp") -> None:
        """Send one message; over TCP open a connection to `addr` when there is none."""
        if transport == "tcp":
            conn = self._tcp.get(addr)
            if conn is not None:
                conn.write(data)
                return
            pending = self._connecting.get(addr)
            if pending is not None:
                pending.append(data)
                return
            self._connecting[addr] = [data]
            task = asyncio.get_running_loop().create_task(self._connect(addr))
            self._connects.add(task)  # kept until done: a task nobody holds may be collected
            task.add_done_callback(self._connects.discard)
            return
        if self._udp and self._udp.transport:
            self._udp.transport.sendto(data, addr)

    async def _connect(self, addr: Addr) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _TcpConnection(self), addr[0], addr[1])
        except OSError as error:
            log.warning("TCP connection to %s:%s failed: %s", addr[0], addr[1], error)
            self._connecting.pop(addr, None)
            if self.on_closed is not None:
                self.on_closed(addr)
            if self.on_failed is not None:
                self.on_failed(addr)
            return
        for data in self._connecting.pop(addr, []):
            conn.write(data)

    async def close(self) -> None:
        if self._server:
            self._server.close()
        for conn in list(self._tcp.values()):
            if conn.transport:
                conn.transport.close()
        if self._udp and self._udp.transport:
            self._udp.transport.close()
        if self._server:
            await self._server.wait_closed()
