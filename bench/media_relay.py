"""Relayed G.711 calls: how many the engine's media layer carries with p99 <= 5 ms and no loss.

For each call two "phones" (UDP sockets in this process) send 50 packets/s of 160-byte PCMU RTP
to their leg's port on the relay and receive what the other phone sent. The relay runs in its
own process: the engine's MediaManager with bridged endpoints (`engine_server.py media`), or
the anchor, a bare asyncio UDP forwarder (`bare_relay.py`) on the same loop type. Every payload
carries its send time; the sink takes the difference on arrival (one clock, one process).
The phones are staggered over the 20 ms packet interval, as real calls are.

    .venv/bin/python bench/media_relay.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import select
import shutil
import socket
import struct
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCH,
    HOST,
    Server,
    cpu_seconds,
    percentile,
    raise_nofile,
)

CALLS = (100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1200, 1500)
QUICK_CALLS = (100, 300)
STEP_SECONDS = 6.0
WARMUP_SECONDS = 1.0  # latencies of the first second are not counted (sockets, latching)
DRAIN_SECONDS = 0.5
PTIME_NS = 20_000_000
PAYLOAD = 160
MAX_P99_MS = 5.0
MAX_LAG_MS = 5.0  # a generator later than this at p99 measures itself, not the relay
RTP_RANGE = "40000-47999"
_STAMP = struct.Struct("!qII")  # send time (ns), stream (phone index), sequence
_HEADER = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class MediaStep:
    """One step: N calls for STEP_SECONDS through one relay."""

    relay: str
    calls: int
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    lag_p99_ms: float  # how late the generator sent, at p99
    relay_cpu: float  # CPU the relay process used, in cores (1.0: one core busy)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def generator_bound(self) -> bool:
        return self.lag_p99_ms > MAX_LAG_MS

    @property
    def held(self) -> bool:
        """No packet lost and an added p99 latency within MAX_P99_MS."""
        return self.lost == 0 and self.p99_ms <= MAX_P99_MS and not self.generator_bound


def _phones(count: int) -> list[socket.socket]:
    phones = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        phones.append(sock)
    return phones


def drive(
    phones: list[socket.socket], ports: list[int], seconds: float
) -> tuple[int, int, list[int], list[int]]:
    """Send and receive for `seconds`; return (sent, received, latencies ns, send lags ns)."""
    count = len(phones)
    dests = [(HOST, port) for port in ports]
    offsets = [i * PTIME_NS // count for i in range(count)]
    packets = [bytearray(12 + PAYLOAD) for _ in range(count)]
    for i, packet in enumerate(packets):
        _HEADER.pack_into(packet, 0, 0x80, 0, 0, 0, i + 1)
        packet[12 + _STAMP.size :] = b"\xff" * (PAYLOAD - _STAMP.size)  # µ-law silence
    by_fd = {sock.fileno(): sock for sock in phones}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    ticks = int(seconds * 1000 // 20)
    total = ticks * count
    now_ns = time.monotonic_ns
    start = now_ns() + 50_000_000
    warm = start + int(WARMUP_SECONDS * 1e9)
    latencies: list[int] = []
    lags: list[int] = []
    received = 0
    buf = bytearray(2048)
    pack_stamp, unpack_stamp, pack_header = _STAMP.pack_into, _STAMP.unpack_from, _HEADER.pack_into
    g = 0
    end = start + ticks * PTIME_NS + int(DRAIN_SECONDS * 1e9)
    while True:
        now = now_ns()
        while g < total:
            k, i = divmod(g, count)
            due = start + k * PTIME_NS + offsets[i]
            if due > now:
                break
            packet = packets[i]
            pack_header(packet, 0, 0x80, 0, k & 0xFFFF, (k * 160) & 0xFFFFFFFF, i + 1)
            sent_at = now_ns()
            pack_stamp(packet, 12, sent_at, i, k)
            phones[i].sendto(packet, dests[i])
            if sent_at >= warm:
                lags.append(sent_at - due)
            g += 1
            now = sent_at
        if g >= total and now >= end:
            break
        if g < total:
            k, i = divmod(g, count)
            timeout = max(0.0, (start + k * PTIME_NS + offsets[i] - now) / 1e9)
        else:
            timeout = max(0.0, (end - now) / 1e9)
        for fd, _event in poller.poll(timeout):
            sock = by_fd[fd]
            while True:
                try:
                    size = sock.recv_into(buf)
                except BlockingIOError:
                    break
                arrived = now_ns()
                if size < 12 + _STAMP.size:
                    continue
                sent_at, _stream, _seq = unpack_stamp(buf, 12)
                received += 1
                if sent_at >= warm:
                    latencies.append(arrived - sent_at)
    poller.close()
    return total, received, latencies, lags


def _relay(kind: str, workdir: Path, code: Path | None = None) -> Server:
    """A fresh relay process; an engine one serves the pbx of `code` (a checkout) when given."""
    if kind == "engine":
        cmd = [sys.executable, str(BENCH / "engine_server.py"), "media", "--rtp", RTP_RANGE]
        if code is not None:
            cmd += ["--code", str(code)]
    else:
        cmd = [sys.executable, str(BENCH / "bare_relay.py")]
    return Server(cmd, workdir / f"{kind}.log", stdin=True, cwd=code)


def run_step(
    kind: str,
    calls: int,
    workdir: Path,
    seconds: float = STEP_SECONDS,
    *,
    code: Path | None = None,
) -> MediaStep:
    """N calls through a fresh relay process of `kind` ("engine" or "bare")."""
    phones = _phones(2 * calls)
    relay = _relay(kind, workdir, code)
    try:
        answer = relay.send_line(json.dumps([[HOST, s.getsockname()[1]] for s in phones]))
        if not answer.strip():
            raise RuntimeError(f"{kind} relay gave no ports: {relay.log_tail()}")
        ports = json.loads(answer)
        cpu0, t0 = cpu_seconds(relay.proc.pid), time.monotonic()
        sent, received, latencies, lags = drive(phones, ports, seconds)
        cpu = (cpu_seconds(relay.proc.pid) - cpu0) / (time.monotonic() - t0)
    finally:
        relay.stop()
        for sock in phones:
            sock.close()
    ms = [v / 1e6 for v in latencies]
    return MediaStep(
        kind,
        calls,
        sent,
        received,
        percentile(ms, 50),
        percentile(ms, 99),
        max(ms) if ms else float("nan"),
        percentile([v / 1e6 for v in lags], 99),
        cpu,
    )


def ramp(kind: str, steps: tuple[int, ...], workdir: Path, log: bool = True) -> list[MediaStep]:
    """Raise N until a step loses a packet, passes 5 ms at p99 or outruns the generator."""
    results = []
    for calls in steps:
        step = run_step(kind, calls, workdir)
        results.append(step)
        if log:
            print(
                f"  {kind:6} {calls:5} calls  lost {step.lost}/{step.sent}  latency p50/p99/max "
                f"{step.p50_ms:.2f}/{step.p99_ms:.2f}/{step.max_ms:.1f} ms  generator lag p99 "
                f"{step.lag_p99_ms:.2f} ms  relay CPU {step.relay_cpu:.0%}  "
                f"{'held' if step.held else 'NOT HELD'}",
                flush=True,
            )
        if not step.held:
            break
        time.sleep(0.5)
    return results


def best(steps: list[MediaStep]) -> MediaStep | None:
    """The largest N held."""
    held = [s for s in steps if s.held]
    return max(held, key=lambda s: s.calls) if held else None


def run(steps: tuple[int, ...] = CALLS) -> dict[str, list[MediaStep]]:
    """Both ramps: the engine's media layer, then the bare relay."""
    raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-media-"))
    try:
        return {kind: ramp(kind, steps, workdir) for kind in ("engine", "bare")}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_per_100(step: MediaStep) -> float:
    return step.relay_cpu / step.calls * 100


def markdown(results: dict[str, list[MediaStep]]) -> str:
    """The media section of RESULTS.md."""
    engine, bare = best(results["engine"]), best(results["bare"])
    lines = [
        "## Media relay (N concurrent G.711 calls, 2 x 50 packets/s each)",
        "",
        f"Steps of {STEP_SECONDS:g} s (latency counted after {WARMUP_SECONDS:g} s); a step "
        "holds with no packet lost and p99 one-way latency (phone -> relay -> phone, "
        f"loopback, generator included) <= {MAX_P99_MS:g} ms, while the generator keeps its "
        f"schedule (send lag p99 <= {MAX_LAG_MS:g} ms). The generator is Python in one "
        "process and shares the 2 cores with the relay: when it falls behind, the step "
        "measures the machine, not the relay, so the relay's CPU per call is given too.",
        "",
        "| relay | most calls held | ratio to bare relay | p50 / p99 latency (ms) | "
        "relay CPU at that N | CPU per 100 calls | CPU cost vs bare |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, kind, step in (
        ("engine MediaManager", "engine", engine),
        ("bare asyncio relay", "bare", bare),
    ):
        if step is None or bare is None:
            lines.append(f"| {name} | 0 | n/a | n/a | n/a | n/a | n/a |")
            continue
        last = results[kind][-1]
        limit = " (then generator-bound)" if last.generator_bound else ""
        lines.append(
            f"| {name} | {step.calls}{limit} | {step.calls / bare.calls:.2f} | "
            f"{step.p50_ms:.2f} / {step.p99_ms:.2f} | {step.relay_cpu:.0%} | "
            f"{_cpu_per_100(step):.1%} | {_cpu_per_100(step) / _cpu_per_100(bare):.2f} |"
        )
    lines += [
        "",
        "Every step:",
        "",
        "| relay | calls | packets lost | p50 / p99 / max (ms) | generator lag p99 (ms) | "
        "relay CPU | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("engine", "bare"):
        for s in results[kind]:
            verdict = (
                "yes" if s.held else "no" + (" (generator-bound)" if s.generator_bound else "")
            )
            lines.append(
                f"| {kind} | {s.calls} | {s.lost}/{s.sent} | {s.p50_ms:.2f} / {s.p99_ms:.2f} / "
                f"{s.max_ms:.1f} | {s.lag_p99_ms:.2f} | {s.relay_cpu:.0%} | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run both ramps and print the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"N in {QUICK_CALLS} only")
    args = parser.parse_args()
    print(markdown(run(QUICK_CALLS if args.quick else CALLS)))


if __name__ == "__main__":
    main()
