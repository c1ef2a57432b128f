"""Centralino's engine alone in a process, for the benchmarks (SIPp and the engine each get a core).

    python bench/engine_server.py sip --port P --uas-port U --carrier-port C --rtp LO-HI
        Caller extension 201 and --callees extensions from 2000 up, all bound to the SIPp UAS
        at U without REGISTER (an extension takes one call at a time: it is busy while it
        talks), a trunk whose carrier is 127.0.0.1:C and DIDs 029876<ext> -> <ext>.
        Prints "READY <port>".
    python bench/engine_server.py media --rtp LO-HI
        Prints "READY", reads one JSON line [[host, port], ...] (two phones per call), allocates
        and bridges one endpoint per phone, answers with the JSON list of our RTP ports.
Both run until SIGTERM. --profile FILE writes cProfile stats of the whole run on exit;
--no-gc disables the cyclic garbage collector (a diagnostic: how much its pauses cost).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import new_event_loop, raise_nofile  # noqa: E402
from pbx.engine.directory import (  # noqa: E402
    DeviceInfo,
    DidRoute,
    ExtensionInfo,
    MemoryDirectory,
    TrunkInfo,
)
from pbx.engine.media import MediaManager, bridge  # noqa: E402
from pbx.engine.records import MemoryRecorder  # noqa: E402
from pbx.engine.runtime import Engine, EngineConfig  # noqa: E402
from pbx.sip.digest import ha1  # noqa: E402
from pbx.sip.uri import SipUri  # noqa: E402

REALM = "centralino"
COMPANY = 1
CALLER = "201"
CALLER_SECRET = "bench-201-secret"
FIRST_CALLEE = 2000
DID_PREFIX = "029876"


def callee_numbers(count: int) -> list[str]:
    """The callee extensions: 2000, 2001, ..."""
    return [str(FIRST_CALLEE + i) for i in range(count)]


def bench_directory(carrier_port: int, callees: int) -> MemoryDirectory:
    """Caller 201, the callee extensions (one device each) and a carrier trunk with their DIDs."""
    directory = MemoryDirectory()
    for number in [CALLER, *callee_numbers(callees)]:
        secret = CALLER_SECRET if number == CALLER else f"bench-{number}"
        directory.devices[number] = DeviceInfo(
            number,
            REALM,
            ha1(number, REALM, secret, "MD5"),
            ha1(number, REALM, secret, "SHA-256"),
            COMPANY,
            number,
        )
        directory.extensions[(COMPANY, number)] = ExtensionInfo(
            COMPANY, number, f"Bench {number}", (number,)
        )
    directory.trunk_list.append(TrunkInfo(1, COMPANY, "carrier", "127.0.0.1", carrier_port))
    for number in callee_numbers(callees):
        did = DID_PREFIX + number
        directory.dids[did] = DidRoute(did, COMPANY, 1, "extension", number)
    return directory


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_sip(args: argparse.Namespace) -> None:
    """Start the engine with the bench directory and serve until SIGTERM."""
    config = EngineConfig(bind="127.0.0.1", sip_port=args.port, rtp_ports=args.rtp, realm=REALM)
    engine = Engine(config, bench_directory(args.carrier_port, args.callees), MemoryRecorder())
    await engine.start()
    address = f"127.0.0.1:{args.uas_port}"
    for number in callee_numbers(args.callees):
        engine.registrar.bind(
            number,
            SipUri.parse(f"sip:{number}@{address}"),
            ("127.0.0.1", args.uas_port),
            "udp",
            engine.stack.now(),
        )
    print(f"READY {engine.sip_port}", flush=True)
    try:
        await _until_terminated()
    finally:
        await engine.stop()


async def serve_media(args: argparse.Namespace) -> None:
    """Bridge pairs of engine endpoints between the phones named on stdin."""
    manager = MediaManager("127.0.0.1", args.rtp)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    phones = [(host, int(port)) for host, port in json.loads(line)]
    endpoints = []
    for phone in phones:
        endpoint = await manager.allocate()
        endpoint.set_remote(phone, 0, "PCMU", None)
        endpoints.append(endpoint)
    for a, b in zip(endpoints[::2], endpoints[1::2], strict=True):
        bridge(a, b)
    print(json.dumps([e.port for e in endpoints]), flush=True)
    try:
        await _until_terminated()
    finally:
        for endpoint in endpoints:
            endpoint.close()


def _port_range(text: str) -> tuple[int, int]:
    low, high = text.split("-")
    return int(low), int(high)


def main(argv: list[str] | None = None) -> None:
    """Parse the mode and run it on a uvloop loop when available."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("sip", "media"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uas-port", type=int, default=0)
    parser.add_argument("--carrier-port", type=int, default=0)
    parser.add_argument("--callees", type=int, default=4000)
    parser.add_argument("--rtp", type=_port_range, default=(40000, 49999))
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--no-gc", action="store_true")
    args = parser.parse_args(argv)
    if args.no_gc:
        gc.disable()
    raise_nofile()
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    try:
        loop.run_until_complete(serve_sip(args) if args.mode == "sip" else serve_media(args))
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        loop.close()


if __name__ == "__main__":
    main()
