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
--code DIR serves the `pbx` package of another checkout (bench/compare.py runs a baseline
commit's engine under this same harness); the path of the pbx served goes to stderr.

What this harness needs from pbx (keep it when the engine's API changes, or adapt here):
  pbx.engine.runtime   EngineConfig(bind=, sip_port=, rtp_ports=, realm=) and
                       Engine(config, directory[, recorder=]) with async start()/stop(),
                       .registrar.bind(username, contact, source, transport, now),
                       .sip_port (else --port is assumed) and .stack.now() (else loop.time())
  pbx.engine.directory MemoryDirectory() with the dicts devices, extensions, dids and the list
                       trunk_list; DeviceInfo, ExtensionInfo, TrunkInfo, DidRoute by field name
  pbx.engine.records   MemoryRecorder() (optional: left out when missing)
  pbx.engine.media     MediaManager(host, (low, high)), await .allocate() -> endpoint with
                       .set_remote(addr, pt, codec, te_pt), .port, .close(); bridge(a, b)
  pbx.sip.digest.ha1(user, realm, secret, algorithm), pbx.sip.uri.SipUri.parse(text)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib
import inspect
import json
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import new_event_loop, raise_nofile  # noqa: E402

REALM = "centralino"
COMPANY = 1
CALLER = "201"
CALLER_SECRET = "bench-201-secret"
FIRST_CALLEE = 2000
DID_PREFIX = "029876"


def callee_numbers(count: int) -> list[str]:
    """The callee extensions: 2000, 2001, ..."""
    return [str(FIRST_CALLEE + i) for i in range(count)]


def use_code(code: Path | None) -> Path:
    """Import pbx from `code` (a checkout) instead of this tree; return where pbx came from.

    bench is imported first, from this tree: only pbx is taken from the other checkout.
    """
    if code is not None and code.resolve() != ROOT:
        sys.path.insert(0, str(code.resolve()))
    pbx = importlib.import_module("pbx")
    return Path(pbx.__file__ or "").resolve().parent


def _api(module: str, *names: str) -> list[Any]:
    """Names from a pbx module, failing with what this harness relies on."""
    try:
        mod = importlib.import_module(module)
        return [getattr(mod, name) for name in names]
    except (ImportError, AttributeError) as error:
        raise RuntimeError(
            f"bench/engine_server.py needs {', '.join(names)} from {module}: {error} "
            "(see the module docstring for the engine API it relies on)"
        ) from error


def bench_directory(carrier_port: int, callees: int) -> Any:
    """Caller 201, the callee extensions (one device each) and a carrier trunk with their DIDs."""
    memory_directory, device_info, extension_info, trunk_info, did_route = _api(
        "pbx.engine.directory",
        "MemoryDirectory",
        "DeviceInfo",
        "ExtensionInfo",
        "TrunkInfo",
        "DidRoute",
    )
    (ha1,) = _api("pbx.sip.digest", "ha1")
    directory = memory_directory()
    for number in [CALLER, *callee_numbers(callees)]:
        secret = CALLER_SECRET if number == CALLER else f"bench-{number}"
        directory.devices[number] = device_info(
            username=number,
            realm=REALM,
            ha1_md5=ha1(number, REALM, secret, "MD5"),
            ha1_sha256=ha1(number, REALM, secret, "SHA-256"),
            company_id=COMPANY,
            extension=number,
        )
        directory.extensions[(COMPANY, number)] = extension_info(
            company_id=COMPANY, number=number, display_name=f"Bench {number}", devices=(number,)
        )
    directory.trunk_list.append(
        trunk_info(id=1, company_id=COMPANY, name="carrier", host="127.0.0.1", port=carrier_port)
    )
    for number in callee_numbers(callees):
        did = DID_PREFIX + number
        directory.dids[did] = did_route(
            number=did, company_id=COMPANY, trunk_id=1, kind="extension", target=number
        )
    return directory


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_sip(args: argparse.Namespace) -> None:
    """Start the engine with the bench directory and serve until SIGTERM."""
    engine_config, engine_class = _api("pbx.engine.runtime", "EngineConfig", "Engine")
    (sip_uri,) = _api("pbx.sip.uri", "SipUri")
    config = engine_config(bind="127.0.0.1", sip_port=args.port, rtp_ports=args.rtp, realm=REALM)
    directory = bench_directory(args.carrier_port, args.callees)
    extra: dict[str, Any] = {}
    if "recorder" in inspect.signature(engine_class).parameters:
        try:
            (memory_recorder,) = _api("pbx.engine.records", "MemoryRecorder")
        except RuntimeError:
            pass  # the engine's own default recorder then
        else:
            extra["recorder"] = memory_recorder()
    engine = engine_class(config, directory, **extra)
    await engine.start()
    loop = asyncio.get_running_loop()
    clock = getattr(getattr(engine, "stack", None), "now", None)
    now = clock() if clock is not None else loop.time()
    address = f"127.0.0.1:{args.uas_port}"
    for number in callee_numbers(args.callees):
        engine.registrar.bind(
            number,
            sip_uri.parse(f"sip:{number}@{address}"),
            ("127.0.0.1", args.uas_port),
            "udp",
            now,
        )
    print(f"READY {getattr(engine, 'sip_port', args.port)}", flush=True)
    try:
        await _until_terminated()
    finally:
        await engine.stop()


async def serve_media(args: argparse.Namespace) -> None:
    """Bridge pairs of engine endpoints between the phones named on stdin."""
    media_manager, bridge = _api("pbx.engine.media", "MediaManager", "bridge")
    manager = media_manager("127.0.0.1", args.rtp)
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
    parser.add_argument("--code", type=Path, default=None, help="the checkout whose pbx to serve")
    args = parser.parse_args(argv)
    print(f"engine_server: pbx from {use_code(args.code)}", file=sys.stderr, flush=True)
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
