"""Drive SIPp 3.6 (package sip-tester): scripted SIP flows and load, on 127.0.0.1 only.

run_sipp() runs a UAC scenario to the end and returns a SippResult. SippBackground runs a
scenario (usually a UAS) in the background: start it, point the engine at its port, then
wait() or stop() for its result. Every run gets its own temp dir (error log, stats, screen,
message trace) that is read into the result and removed.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .ports import HOST, free_port_range, free_udp_port

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
G711A_PCAP = Path("/usr/share/sip-tester/g711a.pcap")


def sipp_binary() -> str | None:
    """Path of the sipp binary, or None when it is not installed."""
    return shutil.which("sipp")


def scenario_path(scenario: str | Path) -> Path:
    """Resolve "uac_call", "uac_call.xml" or a path to an existing scenario file."""
    path = Path(scenario)
    if path.is_file():
        return path.resolve()
    name = path.name if path.suffix == ".xml" else f"{path.name}.xml"
    candidate = SCENARIOS / name
    if not candidate.is_file():
        raise FileNotFoundError(f"no SIPp scenario {scenario!r} (looked in {SCENARIOS})")
    return candidate


@dataclass(frozen=True, slots=True)
class SippResult:
    """What a SIPp run left behind."""

    returncode: int
    successful: int
    failed: int
    stdout: str
    stderr: str
    error_log: str
    messages: str = ""
    screen: str = ""
    command: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Every call succeeded and there was at least one."""
        return self.returncode == 0 and self.failed == 0 and self.successful > 0

    def explain(self) -> str:
        """A readable summary for assertion messages."""
        return (
            f"sipp rc={self.returncode} successful={self.successful} failed={self.failed}\n"
            f"command: {' '.join(self.command)}\n"
            f"--- error log ---\n{self.error_log[-4000:]}\n"
            f"--- stderr ---\n{self.stderr[-2000:]}\n"
            f"--- messages (tail) ---\n{self.messages[-6000:]}"
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _read_glob(folder: Path, pattern: str) -> str:
    return "".join(_read(p) for p in sorted(folder.glob(pattern)))


def _parse_counts(stat_csv: Path, screen: str) -> tuple[int, int]:
    """(successful, failed) cumulative counts from the stats CSV, else from the screen dump."""
    text = _read(stat_csv)
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    if len(rows) >= 2:
        header, last = rows[0], rows[-1]
        try:
            return int(last[header.index("SuccessfulCall(C)")]), int(
                last[header.index("FailedCall(C)")]
            )
        except (ValueError, IndexError):
            pass
    ok = failed = 0
    for line in screen.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) == 3 and cells[0] in ("Successful call", "Failed call"):
            with contextlib.suppress(ValueError):
                value = int(cells[2])
                if cells[0] == "Successful call":
                    ok = value
                else:
                    failed = value
    return ok, failed


def _command(
    scenario: Path,
    target: str | None,
    workdir: Path,
    *,
    calls: int | None,
    rate: float | None,
    limit: int | None,
    keys: Mapping[str, str] | None,
    auth: tuple[str, str] | None,
    local_port: int,
    media_port: int,
    timeout: float,
    duration_ms: int | None,
    play_audio: bool,
    rtp_echo: bool,
    trace_msg: bool,
    recv_timeout_ms: int,
    extra_args: Sequence[str],
) -> list[str]:
    binary = sipp_binary()
    if binary is None:
        raise FileNotFoundError("sipp is not installed (apt-get install sip-tester)")
    cmd = [binary]
    if target:
        cmd.append(target)
    cmd += ["-sf", str(scenario), "-nostdin", "-i", HOST, "-bind_local"]
    cmd += ["-p", str(local_port), "-mp", str(media_port)]
    # Fail fast when nobody answers instead of 32 s of retransmissions per call.
    cmd += ["-max_retrans", "2", "-recv_timeout", str(recv_timeout_ms)]
    cmd += ["-timeout", f"{max(1, int(timeout))}s", "-timeout_error"]
    cmd += ["-trace_err", "-error_file", str(workdir / "errors.log")]
    cmd += ["-trace_stat", "-stf", str(workdir / "stat.csv")]
    cmd += ["-trace_screen", "-screen_file", str(workdir / "screen.log")]
    if trace_msg:
        cmd += ["-trace_msg", "-message_file", str(workdir / "messages.log")]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if rate is not None:
        cmd += ["-r", str(rate)]
    if limit is not None:
        cmd += ["-l", str(limit)]
    if duration_ms is not None:
        cmd += ["-d", str(duration_ms)]
    if auth is not None:
        cmd += ["-au", auth[0], "-ap", auth[1]]
    if play_audio:
        cmd += ["-set", "PLAY", "1"]
    if rtp_echo:
        cmd.append("-rtp_echo")
    host = target.rsplit(":", 1)[0] if target else HOST
    # SIPp refuses a scenario that uses an undefined [key]: give every key a default.
    merged = {
        "user": auth[0] if auth else "sipp",
        "domain": host,
        "expires": "3600",
    }
    merged.update(keys or {})
    # [service] is a SIPp keyword fed by -s: "-key service" would be silently ignored.
    cmd += ["-s", str(merged.pop("service", "100"))]
    for key, value in merged.items():
        cmd += ["-key", key, str(value)]
    cmd += list(extra_args)
    return cmd


def _result(proc_rc: int, workdir: Path, cmd: Sequence[str]) -> SippResult:
    screen = _read(workdir / "screen.log")
    successful, failed = _parse_counts(workdir / "stat.csv", screen)
    return SippResult(
        returncode=proc_rc,
        successful=successful,
        failed=failed,
        stdout=_read(workdir / "stdout.log"),
        stderr=_read(workdir / "stderr.log"),
        error_log=_read(workdir / "errors.log") + _read_glob(workdir, "*_errors.log"),
        messages=_read(workdir / "messages.log"),
        screen=screen,
        command=tuple(cmd),
    )


def _kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class SippBackground:
    """A SIPp run in the background (typically a UAS waiting for calls).

    Use as a context manager; on exit the process is stopped and its temp dir removed.
    port is the SIP port it listens on, address "127.0.0.1:port".
    """

    def __init__(
        self,
        scenario: str | Path,
        target: str | None = None,
        *,
        calls: int | None = 1,
        rate: float | None = None,
        limit: int | None = None,
        keys: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        local_port: int | None = None,
        timeout: float = 60,
        duration_ms: int | None = None,
        play_audio: bool = False,
        rtp_echo: bool = False,
        trace_msg: bool | None = None,
        recv_timeout_ms: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.scenario = scenario_path(scenario)
        self.port = local_port or free_udp_port()
        self.media_port = free_port_range(4)
        self.timeout = timeout
        self._workdir = Path(tempfile.mkdtemp(prefix="sipp-"))
        self._cmd = _command(
            self.scenario,
            target,
            self._workdir,
            calls=calls,
            rate=rate,
            limit=limit,
            keys=keys,
            auth=auth,
            local_port=self.port,
            media_port=self.media_port,
            timeout=timeout,
            duration_ms=duration_ms,
            play_audio=play_audio,
            rtp_echo=rtp_echo,
            trace_msg=trace_msg if trace_msg is not None else (calls or 0) <= 20,
            # A UAS waits for the caller: give it the whole run by default.
            recv_timeout_ms=recv_timeout_ms or int(timeout * 1000),
            extra_args=extra_args,
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._result: SippResult | None = None

    @property
    def address(self) -> str:
        """host:port to send SIP to."""
        return f"{HOST}:{self.port}"

    def start(self, ready_timeout: float = 5.0) -> SippBackground:
        """Start SIPp and wait until its SIP port is bound."""
        with (
            open(self._workdir / "stdout.log", "wb") as out,
            open(self._workdir / "stderr.log", "wb") as err,
        ):
            self._proc = subprocess.Popen(
                self._cmd,
                cwd=self._workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                if self._proc.returncode == 0:
                    return self  # a short run (over TCP nothing binds UDP) already done
                raise RuntimeError(f"sipp exited at start:\n{self._finish().explain()}")
            if _udp_port_taken(self.port):
                return self
            time.sleep(0.02)
        raise RuntimeError(f"sipp did not bind {self.address} in {ready_timeout} s")

    def running(self) -> bool:
        """Whether the SIPp process is still alive."""
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to finish its calls (-m) and return the result."""
        if self._proc is None:
            raise RuntimeError("not started")
        try:
            self._proc.wait(timeout=timeout if timeout is not None else self.timeout + 5)
        except subprocess.TimeoutExpired:
            return self.stop()
        return self._finish()

    def stop(self, grace: float = 2.0) -> SippResult:
        """Ask SIPp to quit (SIGUSR1 dumps its stats), SIGKILL after grace seconds."""
        if self._proc is None:
            raise RuntimeError("not started")
        if self._proc.poll() is None:
            _kill_group(self._proc, signal.SIGUSR1)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill_group(self._proc)
                self._proc.wait()
        return self._finish()

    def _finish(self) -> SippResult:
        if self._result is None:
            assert self._proc is not None
            rc = self._proc.poll()
            self._result = _result(rc if rc is not None else -9, self._workdir, self._cmd)
        return self._result

    @property
    def result(self) -> SippResult | None:
        """The result once SIPp has finished."""
        return self._result

    def close(self) -> None:
        """Kill the process if needed and remove the temp dir."""
        if self._proc is not None and self._proc.poll() is None:
            self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> SippBackground:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def run_sipp(
    scenario: str | Path,
    target: str,
    *,
    calls: int = 1,
    rate: float | None = None,
    limit: int | None = None,
    keys: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    local_port: int | None = None,
    timeout: float = 30,
    extra_args: Sequence[str] = (),
    duration_ms: int | None = None,
    play_audio: bool = False,
    trace_msg: bool | None = None,
    recv_timeout_ms: int = 5000,
) -> SippResult:
    """Run a scenario against target ("127.0.0.1:5060") to completion.

    Args:
        scenario: a name in tests/integration/scenarios ("uac_call") or a path.
        keys: values for [key] in the scenario; service/user/domain/expires have defaults.
        auth: (username, password) for [authentication].
        duration_ms: the length of <pause/> (-d): call length, ring time.
        play_audio: -set PLAY 1, which uac_call/uac_noauth_call use to play g711a.pcap.
    """
    with SippBackground(
        scenario,
        target,
        calls=calls,
        rate=rate,
        limit=limit,
        keys=keys,
        auth=auth,
        local_port=local_port,
        timeout=timeout,
        duration_ms=duration_ms,
        play_audio=play_audio,
        trace_msg=trace_msg,
        recv_timeout_ms=recv_timeout_ms,
        extra_args=extra_args,
    ) as sipp:
        return sipp.wait(timeout + 5)


@contextlib.contextmanager
def sipp_uas(scenario: str | Path = "uas_answer", **kwargs: object) -> Iterator[SippBackground]:
    """A background SIPp UAS for the duration of a with-block (kwargs as SippBackground)."""
    with SippBackground(scenario, None, **kwargs) as uas:  # type: ignore[arg-type]
        yield uas
