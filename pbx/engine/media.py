"""RTP media anchored in the engine: one UDP socket per leg, relayed between bridged legs.

The hot path (a packet in, a packet out) does no parsing beyond the fixed header: latch check,
payload-type mapping, µ-law/A-law translation by table when the legs differ, and a rewrite of
SSRC/sequence/timestamp so that each far end sees one continuous stream even when what feeds it
changes (the other party, music on hold, another party after a transfer).
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable

import numpy as np

from pbx.media import g711
from pbx.media.player import Player

log = logging.getLogger(__name__)

Addr = tuple[str, int]
_SEQ_TS_SSRC = struct.Struct("!HII")
_TRANSLATE = {("PCMU", "PCMA"): g711.ulaw_to_alaw, ("PCMA", "PCMU"): g711.alaw_to_ulaw}
PTIME = 0.02


def _payload_offset(data: bytes | bytearray) -> int:
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
    return offset


class MediaEndpoint(asyncio.DatagramProtocol):
    """Our RTP socket facing one party. What it receives goes to its bridged peer."""

    def __init__(self, manager: MediaManager, port: int) -> None:
        self.manager = manager
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: Addr | None = None
        self.latched: Addr | None = None
        self.pt = 0
        self.codec = "PCMU"
        self.te_pt: int | None = None
        self.peer: MediaEndpoint | None = None  # whose packets we receive go to
        self.feeder: object | None = None  # what we currently send: a peer endpoint or a player
        self.ssrc = random.getrandbits(32)
        self._src: int | None = None  # SSRC of the stream we are relaying out
        self._seq_off = 0
        self._ts_off = 0
        self._last_seq = random.getrandbits(16)
        self._last_ts = random.getrandbits(32)
        self._player_task: asyncio.TimerHandle | None = None
        self.received = 0
        self.sent = 0
        self.ignored = 0
        self.closed = False
        self.tap: Callable[[bytes], None] | None = None  # sees every accepted packet (tests)

    # --- configuration ------------------------------------------------------------------

    def set_remote(self, remote: Addr, pt: int, codec: str, te_pt: int | None) -> None:
        """Where the party wants our RTP, and what it agreed to receive."""
        if remote != self.remote:
            self.latched = None
        self.remote = remote
        self.pt, self.codec, self.te_pt = pt, codec, te_pt

    # --- input --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:  # type: ignore[override]
        latched = self.latched
        if latched is None:
            # Symmetric RTP (RFC 4961): the first packet fixes the source, so that a phone
            # behind NAT is reached where it really sends from.
            if self.remote is None:
                self.ignored += 1
                return
            self.latched = latched = (addr[0], addr[1])
        elif addr[0] != latched[0] or addr[1] != latched[1]:
            self.ignored += 1
            return
        if len(data) < 12 or data[0] & 0xC0 != 0x80 or 72 <= (data[1] & 0x7F) <= 76:
            return  # not RTP, or RTCP multiplexed on the RTP port (RFC 5761): not relayed
        self.received += 1
        if self.tap is not None:
            self.tap(data)
        peer = self.peer
        if peer is not None and peer.feeder is self:
            peer.relay_from(self, data)

    # --- output -------------------------------------------------------------------------

    def relay_from(self, source: MediaEndpoint, data: bytes) -> None:
        """Send a packet received by the bridged `source` out to our party."""
        dest = self.latched or self.remote
        if dest is None or self.transport is None:
            return
        pt = data[1] & 0x7F
        buf = bytearray(data)
        if pt == source.pt:
            out_pt = self.pt
            if source.codec != self.codec:
                offset = _payload_offset(buf)
                buf[offset:] = _TRANSLATE[(source.codec, self.codec)](bytes(buf[offset:]))
        elif pt == source.te_pt and source.te_pt is not None:
            if self.te_pt is None:
                return
            out_pt = self.te_pt
        else:
            return  # comfort noise or a codec not negotiated on this leg
        self._emit(buf, out_pt, dest)

    def _emit(self, buf: bytearray, out_pt: int, dest: Addr) -> None:
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(buf, 2)
        marker = buf[1] & 0x80
        if ssrc != self._src:
            # A new stream feeds this leg: continue our numbering from where it was.
            self._src = ssrc
            self._seq_off = (self._last_seq + 1 - seq) & 0xFFFF
            self._ts_off = (self._last_ts + 160 - ts) & 0xFFFFFFFF
            marker = 0x80
        seq = (seq + self._seq_off) & 0xFFFF
        ts = (ts + self._ts_off) & 0xFFFFFFFF
        self._last_seq, self._last_ts = seq, ts
        buf[1] = marker | out_pt
        _SEQ_TS_SSRC.pack_into(buf, 2, seq, ts, self.ssrc)
        self.transport.sendto(buf, dest)  # type: ignore[union-attr]
        self.sent += 1

    # --- what feeds this leg ------------------------------------------------------------

    def listen_to(self, source: MediaEndpoint | None) -> None:
        """Relay what `source` receives to our party (None: silence)."""
        self._stop_player()
        self.feeder = source

    def play(self, samples: np.ndarray, *, loop: bool = True) -> None:
        """Feed our party from a recording (music on hold) until told otherwise."""
        self._stop_player()
        player = Player(samples, self.codec if self.codec in ("PCMU", "PCMA") else "PCMU",
                        loop=loop, ssrc=random.getrandbits(32))
        self.feeder = player
        loop_ = asyncio.get_running_loop()
        start = loop_.time()

        def tick(n: int) -> None:
            if self.feeder is not player or self.closed:
                return
            dest = self.latched or self.remote
            packet = player.next_packet()
            if packet is None:
                self.feeder = None
                return
            if dest is not None and self.transport is not None:
                self._emit(bytearray(packet), self.pt if player.codec == self.codec else player.pt, dest)
            self._player_task = loop_.call_at(start + (n + 1) * PTIME, tick, n + 1)

        tick(0)

    def _stop_player(self) -> None:
        if self._player_task is not None:
            self._player_task.cancel()
            self._player_task = None

    @property
    def playing(self) -> bool:
        return isinstance(self.feeder, Player)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop_player()
        self.feeder = None
        if self.peer is not None and self.peer.peer is self:
            self.peer.peer = None
        self.peer = None
        if self.transport is not None:
            self.transport.close()
        self.manager.release(self.port)


def bridge(a: MediaEndpoint, b: MediaEndpoint) -> None:
    """Join two legs both ways: each hears what the other sends."""
    a.peer, b.peer = b, a
    a.listen_to(b)
    b.listen_to(a)


class MediaManager:
    """Allocates RTP ports (even numbers, RFC 3550 11) and owns the hold music."""

    def __init__(self, host: str, port_range: tuple[int, int], moh: np.ndarray | None = None) -> None:
        self.host = host
        low, high = port_range
        self._free = list(range(low + (low % 2), high, 2))
        random.shuffle(self._free)  # a port is not reused at once: stray late packets fade
        self._used: set[int] = set()
        self.moh = moh if moh is not None else np.zeros(8000, dtype=np.int16)

    async def allocate(self) -> MediaEndpoint:
        loop = asyncio.get_running_loop()
        for _ in range(len(self._free)):
            if not self._free:
                break
            port = self._free.pop(0)
            try:
                _, endpoint = await loop.create_datagram_endpoint(
                    lambda port=port: MediaEndpoint(self, port), local_addr=(self.host, port)
                )
            except OSError:
                self._free.append(port)  # taken by someone else: try it again later
                continue
            self._used.add(port)
            return endpoint
        raise RuntimeError("no free RTP port")

    def release(self, port: int) -> None:
        if port in self._used:
            self._used.discard(port)
            self._free.append(port)

    @property
    def in_use(self) -> int:
        return len(self._used)
