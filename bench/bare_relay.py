"""The anchor for the media benchmark: the least an asyncio UDP relay can do.

Same protocol as `engine_server.py media`: prints "READY", reads one JSON line of phone
addresses (two per call), opens one socket per phone and answers with the JSON list of their
ports. A packet arriving on one leg's socket leaves, untouched, from the other leg's socket
toward the other phone. No latching, no header rewrite: a floor, not a PBX.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import HOST, new_event_loop, raise_nofile  # noqa: E402

Addr = tuple[str, int]


class Leg(asyncio.DatagramProtocol):
    """One socket facing one phone; what it receives goes out of its peer leg."""

    def __init__(self, phone: Addr) -> None:
        self.phone = phone
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: Leg | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.sendto(data, peer.phone)


async def serve() -> None:
    """Open and pair the legs, then relay until SIGTERM."""
    loop = asyncio.get_running_loop()
    print("READY", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    legs: list[Leg] = []
    for host, port in json.loads(line):
        _, leg = await loop.create_datagram_endpoint(
            lambda host=host, port=port: Leg((host, int(port))), local_addr=(HOST, 0)
        )
        legs.append(leg)
    for a, b in zip(legs[::2], legs[1::2], strict=True):
        a.peer, b.peer = b, a
    ports = [leg.transport.get_extra_info("sockname")[1] for leg in legs]  # type: ignore[union-attr]
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for leg in legs:
        if leg.transport is not None:
            leg.transport.close()


def main() -> None:
    """Run the relay on the same loop type as the engine server."""
    raise_nofile()
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()


if __name__ == "__main__":
    main()
