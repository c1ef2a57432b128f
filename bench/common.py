"""Shared bits of the benchmarks: paths, the event loop, server processes, machine facts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
HOST = "127.0.0.1"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is importable, else the default one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def loop_name() -> str:
    """Which loop new_event_loop() gives: "uvloop" or "asyncio"."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def raise_nofile() -> None:
    """Lift the soft open-files limit to the hard one: big runs hold thousands of sockets."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def udp_port_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound on UDP and TCP right now."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_ports(n: int, start: int = 21000, stop: int = 30000) -> list[int]:
    """n distinct free ports (UDP and TCP) below the ephemeral range."""
    found: list[int] = []
    port = start
    while len(found) < n and port < stop:
        if udp_port_free(port):
            found.append(port)
        port += 2
    if len(found) < n:
        raise RuntimeError(f"no {n} free ports in {start}-{stop}")
    return found


def free_block(n: int, start: int = 30000, stop: int = 32700) -> int:
    """The first of n consecutive free ports (SIPp's -mp uses a few ports from its base)."""
    for base in range(start, stop - n, n):
        if all(udp_port_free(p) for p in range(base, base + n)):
            return base
    raise RuntimeError(f"no {n} consecutive free ports in {start}-{stop}")


class Server:
    """A benchmark server in its own process: started, waited for ("READY ..."), killed."""

    def __init__(
        self,
        cmd: Sequence[str],
        log_path: Path,
        *,
        ready: str | None = "READY",
        stdin: bool = False,
        cwd: Path | None = None,
    ) -> None:
        self.cmd = list(cmd)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if ready else self._log,
            stderr=self._log,
            cwd=cwd or ROOT,
            start_new_session=True,
            text=True,
        )
        self.ready_line = ""
        if ready:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line.startswith(ready):
                self.stop()
                raise RuntimeError(f"{self.cmd[:3]} did not start: {self.log_tail()}")
            self.ready_line = line.strip()

    def send_line(self, line: str) -> str:
        """Write one line to the server's stdin and read its one-line answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def log_tail(self, chars: int = 2000) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; only our own process."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()


def wait_udp_bound(port: int, timeout: float = 10.0) -> None:
    """Wait until something has bound 127.0.0.1:port on UDP."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing bound UDP port {port} within {timeout} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, str]:
    """nproc, CPU model, Python version, event loop, OS: the context of every figure."""
    out = subprocess.run(["sipp", "-v"], capture_output=True, text=True)
    sipp = out.stdout + out.stderr
    sipp_version = next((w for w in sipp.split() if w.startswith("v3")), "?").rstrip(".")
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "python": sys.version.split()[0],
        "loop": loop_name(),
        "os": f"{platform.system()} {platform.release()}",
        "sipp": sipp_version,
    }


def replace_section(text: str, heading: str, section: str) -> str:
    """`text` with its "## heading" section (up to the next "## ") replaced by `section`,
    or with `section` appended when there is none; an empty `section` removes it."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        if not section:
            return text
        return text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    head, tail = "".join(lines[:start]).rstrip("\n"), "".join(lines[end:])
    middle = "\n\n" + section.rstrip("\n") + "\n" if section else "\n"
    return head + middle + ("\n" + tail if tail else "")


def get_section(text: str, heading: str) -> str:
    """The "## heading" section of `text` (up to the next "## "), or ""."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "".join(lines[start:end]).rstrip("\n") + "\n"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]
