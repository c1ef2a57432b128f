"""Call set-up rate: SIPp UAC -> B2BUA -> SIPp UAS, ramped until more than 0.1 % of calls fail.

Three ramps in one run, each against a fresh server process:
  engine-auth     our engine, the caller (201) answers a digest challenge on every INVITE;
  engine-noauth   our engine, calls from the trunk's carrier address to DIDs (no auth);
  sippy-noauth    the anchor: sippy's b2bua_simple on the same unauthenticated scenario.
Each step runs `rate` calls/s for STEP_SECONDS with calls of CALL_MS; post-dial delay (PDD) is
SIPp's response-time timer from the first INVITE sent to the first 180/183/200 received.

    .venv/bin/python bench/call_setup.py [--quick] [--profile RATE] [--no-gc]
"""

from __future__ import annotations

import argparse
import csv
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCH,
    HOST,
    Server,
    free_block,
    free_ports,
    percentile,
    wait_udp_bound,
)
from bench.engine_server import (  # noqa: E402
    CALLER,
    CALLER_SECRET,
    DID_PREFIX,
    callee_numbers,
)

SCENARIOS = BENCH / "scenarios"
RATES = (50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000)
QUICK_RATES = (50, 100, 200)
STEP_SECONDS = 10
CALL_MS = 1000
MAX_FAILED = 0.001  # a step holds when at most 0.1 % of its calls fail
CALLEES = 4000  # an extension is busy while it talks: spread the calls over many
RTP_RANGE = "40000-47999"


@dataclass(frozen=True, slots=True)
class Step:
    """One rate held (or not) for STEP_SECONDS."""

    rate: int
    calls: int
    successful: int
    achieved_rate: float
    pdd_ms: tuple[float, float, float]  # p50, p95, p99
    causes: str = ""  # SIPp's failure counters that are not zero
    stray: int = 0  # unexpected messages ignored (late provisionals, retransmissions)
    errors: str = ""

    @property
    def failed(self) -> int:
        return self.calls - self.successful

    @property
    def failed_ratio(self) -> float:
        return self.failed / self.calls if self.calls else 1.0

    @property
    def held(self) -> bool:
        """At most 0.1 % failed and SIPp really offered the rate (within 10 %)."""
        return self.failed_ratio <= MAX_FAILED and self.achieved_rate >= 0.9 * self.rate


@dataclass
class Ramp:
    """A server's ramp: the steps run and the best one held."""

    name: str
    steps: list[Step] = field(default_factory=list)

    @property
    def best(self) -> Step | None:
        held = [s for s in self.steps if s.held]
        return max(held, key=lambda s: s.rate) if held else None

    @property
    def best_rate(self) -> int:
        best = self.best
        return best.rate if best else 0


def _write_inf(path: Path, numbers: list[str]) -> Path:
    path.write_text("SEQUENTIAL\n" + "".join(f"{n};\n" for n in numbers))
    return path


def _uas(port: int, media_port: int, workdir: Path) -> Server:
    cmd = ["sipp", "-sf", str(SCENARIOS / "uas_answer.xml")]
    cmd += f"-nostdin -i {HOST} -p {port} -bind_local -mp {media_port} -l 100000".split()
    cmd += ["-recv_timeout", "20000", "-timeout", "3600s"]
    server = Server(cmd, workdir / f"uas-{port}.log", ready=None)
    wait_udp_bound(port)
    return server


def run_step(
    target: str,
    scenario: str,
    rate: int,
    *,
    local_port: int,
    media_port: int,
    inf: Path,
    workdir: Path,
    auth: bool,
    seconds: int = STEP_SECONDS,
) -> Step:
    """Run `rate` calls/s for `seconds` through `target` and measure what came back."""
    calls = rate * seconds
    step_dir = Path(tempfile.mkdtemp(prefix=f"{scenario}-{rate}-", dir=workdir))
    cmd = ["sipp", target, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-inf", str(inf)]
    cmd += f"-nostdin -i {HOST} -p {local_port} -bind_local -mp {media_port}".split()
    cmd += f"-r {rate} -m {calls} -l {rate * 6} -d {CALL_MS} -key domain {HOST}".split()
    cmd += ["-key", "user", CALLER if auth else "0611111111"]
    cmd += f"-recv_timeout 8000 -timeout {seconds + 40}s -trace_err".split()
    cmd += ["-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-stf", "stat.csv"]
    # A stray message (sippy's 180 sent after its 200 from another thread, a 401 retransmitted
    # under load) is ignored as a phone would, not a reason to abort the call. A call that gets
    # no final answer still fails, on -recv_timeout.
    cmd += ["-default_behaviors", "bye,pingreply"]
    if auth:
        cmd += ["-au", CALLER, "-ap", CALLER_SECRET]
    subprocess.run(
        cmd,
        cwd=step_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds + 60,
        check=False,
    )
    successful, causes = _counts(step_dir / "stat.csv")
    dates, pdds = _rtt(step_dir)
    span = (max(dates) - min(dates)) / 1000 if len(dates) > 1 else 0.0
    achieved = (len(dates) - 1) / span if span > 0 else 0.0
    p50, p95, p99 = (percentile(pdds, q) for q in (50, 95, 99))
    error_log = "".join(p.read_text(errors="replace") for p in step_dir.glob("*_errors.log"))
    stray = error_log.count("Continuing call on unexpected message")
    shutil.rmtree(step_dir, ignore_errors=True)
    pdd = (p50, p95, p99)
    return Step(rate, calls, successful, achieved, pdd, causes, stray, error_log[:1500])


def _counts(stat_csv: Path) -> tuple[int, str]:
    """(successful calls, the non-zero failure causes) from SIPp's cumulative stats."""
    try:
        rows = list(csv.reader(stat_csv.read_text().splitlines(), delimiter=";"))
    except FileNotFoundError:
        return 0, "no stats"
    if len(rows) < 2:
        return 0, "no stats"
    header, last = rows[0], rows[-1]
    causes = [
        f"{name[6:-3]}={value}"
        for name, value in zip(header, last, strict=False)
        if name.startswith("Failed")
        and name.endswith("(C)")
        and name != "FailedCall(C)"
        and value.strip() not in ("", "0")
    ]
    return int(last[header.index("SuccessfulCall(C)")]), ", ".join(causes)


def _rtt(step_dir: Path) -> tuple[list[float], list[float]]:
    """(time into the run, PDD) in ms of every call that rang or answered."""
    dates: list[float] = []
    pdds: list[float] = []
    for path in step_dir.glob("*_rtt.csv"):
        for row in csv.reader(path.read_text().splitlines()[1:], delimiter=";"):
            if len(row) >= 3 and row[2] == "1":
                dates.append(float(row[0]))
                pdds.append(float(row[1]))
    return dates, pdds


def ramp(
    name: str,
    target: str,
    scenario: str,
    rates: tuple[int, ...],
    *,
    local_port: int,
    media_port: int,
    inf: Path,
    workdir: Path,
    auth: bool,
    log: bool = True,
) -> Ramp:
    """Raise the rate step by step until a step does not hold."""
    result = Ramp(name)
    for rate in rates:
        step = run_step(
            target,
            scenario,
            rate,
            local_port=local_port,
            media_port=media_port,
            inf=inf,
            workdir=workdir,
            auth=auth,
        )
        result.steps.append(step)
        if log:
            p50, p95, p99 = step.pdd_ms
            print(
                f"  {name:14} {rate:5}/s offered {step.achieved_rate:6.1f}/s  "
                f"failed {step.failed}/{step.calls}  PDD p50/p95/p99 {p50:.0f}/{p95:.0f}/"
                f"{p99:.0f} ms  {'held' if step.held else 'NOT HELD'}"
                + (f"  ({step.causes})" if step.causes else ""),
                flush=True,
            )
        if not step.held:
            if step.errors and log:
                print("    first errors: " + step.errors[:600].replace("\n", "\n    "))
            break
        time.sleep(2)  # let the last calls' BYEs and the UAS's timewait drain
    return result


def _engine(
    workdir: Path,
    port: int,
    uas_port: int,
    carrier_port: int,
    profile: Path | None = None,
    no_gc: bool = False,
    *,
    code: Path | None = None,
    rtp: str = RTP_RANGE,
) -> Server:
    """The engine server of this tree, serving the pbx of `code` (a checkout) when given."""
    cmd = [sys.executable, str(BENCH / "engine_server.py"), "sip", "--rtp", rtp]
    cmd += f"--port {port} --uas-port {uas_port} --carrier-port {carrier_port}".split()
    cmd += ["--callees", str(CALLEES)]
    if profile:
        cmd += ["--profile", str(profile)]
    if no_gc:
        cmd.append("--no-gc")
    if code is not None:
        cmd += ["--code", str(code)]
    return Server(cmd, workdir / f"engine-{port}.log", cwd=code)


def _sippy(workdir: Path, port: int, uas_port: int) -> Server:
    # b2bua_simple has no auth and forwards every INVITE to -n; -f stays in the foreground.
    env_cmd = ["env", "SIPLOG_LVL=WARN", "SIPLOG_BEND=stderr", sys.executable, "-m"]
    env_cmd += f"sippy.b2bua_simple -f -l {HOST} -p {port} -n {HOST}:{uas_port}".split()
    server = Server(env_cmd, workdir / f"sippy-{port}.log", ready=None)
    wait_udp_bound(port)
    return server


def run(
    rates: tuple[int, ...] = RATES, workdir: Path | None = None, *, engine_no_gc: bool = False
) -> list[Ramp]:
    """The three ramps: engine with auth, engine without, sippy without.

    engine_no_gc runs the engine with the cyclic GC off and only its authenticated ramp.
    """
    own = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bench-setup-"))
    server_port, uas_port, carrier_port, caller_port = free_ports(4)
    media_a = free_block(20)
    media_b = media_a + 10
    extensions = _write_inf(workdir / "extensions.csv", callee_numbers(CALLEES))
    dids = _write_inf(workdir / "dids.csv", [DID_PREFIX + n for n in callee_numbers(CALLEES)])
    target = f"{HOST}:{server_port}"
    ramps: list[Ramp] = []
    plans = [
        ("engine-auth", "uac_auth", extensions, caller_port, True),
        ("engine-noauth", "uac_noauth", dids, carrier_port, False),
        ("sippy-noauth", "uac_noauth", dids, carrier_port, False),
    ]
    if engine_no_gc:
        plans = [("engine-auth-nogc", "uac_auth", extensions, caller_port, True)]
    try:
        for name, scenario, inf, local_port, auth in plans:
            uas = _uas(uas_port, media_b, workdir)
            if name.startswith("sippy"):
                server = _sippy(workdir, server_port, uas_port)
            else:
                server = _engine(workdir, server_port, uas_port, carrier_port, no_gc=engine_no_gc)
            try:
                ramps.append(
                    ramp(
                        name,
                        target,
                        scenario,
                        rates,
                        local_port=local_port,
                        media_port=media_a,
                        inf=inf,
                        workdir=workdir,
                        auth=auth,
                    )
                )
            finally:
                server.stop()
                uas.stop()
                tail = server.log_tail(1200).strip()
                if tail:
                    print(f"  {name} server log (tail):\n    " + tail.replace("\n", "\n    "))
                time.sleep(1)
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return ramps


def profile_engine(rate: int, top: int = 12) -> str:
    """Run one authenticated step under cProfile in the engine and return the top functions."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    server_port, uas_port, carrier_port, caller_port = free_ports(4)
    media_a = free_block(20)
    media_b = media_a + 10
    prof = workdir / "engine.prof"
    inf = _write_inf(workdir / "extensions.csv", callee_numbers(CALLEES))
    uas = _uas(uas_port, media_b, workdir)
    server = _engine(workdir, server_port, uas_port, carrier_port, profile=prof)
    try:
        step = run_step(
            f"{HOST}:{server_port}",
            "uac_auth",
            rate,
            local_port=caller_port,
            media_port=media_a,
            inf=inf,
            workdir=workdir,
            auth=True,
        )
    finally:
        server.stop(grace=20)
        uas.stop()
    out = Path(workdir / "top.txt")
    with open(out, "w") as stream:
        stats = pstats.Stats(str(prof), stream=stream)
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top * 2)
    text = f"profiled step: {rate}/s, failed {step.failed}/{step.calls}\n" + out.read_text()
    shutil.rmtree(workdir, ignore_errors=True)
    return text


def markdown(ramps: list[Ramp]) -> str:
    """The call set-up section of RESULTS.md."""
    by_name = {r.name: r for r in ramps}
    anchor = by_name.get("sippy-noauth")
    lines = [
        "## Call set-up rate (SIPp UAC -> B2BUA -> SIPp UAS)",
        "",
        f"Steps of {STEP_SECONDS} s, calls of {CALL_MS / 1000:g} s, a step holds when <= "
        f"{MAX_FAILED:.1%} of its calls fail. PDD: first INVITE sent -> first 180/200 "
        "received (SIPp rtd; its clock moves in ~4 ms ticks), at the best rate held. The "
        "caller and the callee are SIPp (C++) on the same 2 cores. sippy passes the SDP "
        "through; our engine anchors the media (two RTP sockets opened per call).",
        "",
        "| server | best rate held (calls/s) | ratio to sippy | PDD p50 / p95 / p99 (ms) |",
        "|---|---|---|---|",
    ]
    for r in ramps:
        best = r.best
        ratio = f"{r.best_rate / anchor.best_rate:.2f}" if anchor and anchor.best_rate else "n/a"
        pdd = "/".join(f"{v:.0f}" for v in best.pdd_ms) if best else "n/a"
        lines.append(f"| {r.name} | {r.best_rate} | {ratio} | {pdd} |")
    lines += [
        "",
        "Every step:",
        "",
        "| server | offered/s | achieved/s | failed | stray msgs ignored | PDD p50/p95/p99 ms | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ramps:
        for s in r.steps:
            lines.append(
                f"| {r.name} | {s.rate} | {s.achieved_rate:.0f} | {s.failed}/{s.calls}"
                + (f" ({s.causes})" if s.causes else "")
                + f" | {s.stray} | "
                + "/".join(f"{v:.0f}" for v in s.pdd_ms)
                + f" | {'yes' if s.held else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run the ramps (or one profiled step) and print the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"rates {QUICK_RATES} only")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="RATE",
        default=0,
        help="profile the engine at RATE authenticated calls/s instead",
    )
    parser.add_argument(
        "--no-gc", action="store_true", help="diagnostic: engine-auth ramp with the GC off"
    )
    args = parser.parse_args()
    if args.profile:
        print(profile_engine(args.profile))
        return
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print(markdown(run(QUICK_RATES if args.quick else RATES, engine_no_gc=args.no_gc)))


if __name__ == "__main__":
    main()
