"""Before and after: a baseline commit's engine and the working tree's, measured in one run.

    .venv/bin/python bench/compare.py --baseline REF [--quick] [--rounds N] [--retries N]
                                      [--no-anchors] [--current DIR] [--results FILE]

The baseline is checked out in a temporary `git worktree add --detach` (removed afterwards,
even on error or SIGTERM; one left by a SIGKILL is removed by the next run). Both engines run
under this tree's harness (bench/engine_server.py --code: only the `pbx` package differs, each
imported from its own checkout by the same venv python) and face this tree's load generators,
scenarios and thresholds:

  call set-up, authenticated and not   both engines stay up through a ramp, each with its own
                                       SIPp UAS, ports and RTP range; the steps alternate
                                       baseline/current, the order swapped at every rate;
  media relay                          a fresh relay process per step, same alternation;

so that machine noise hits both alike. A step that does not hold is run once more (--retries)
before that side's ramp ends. Besides the best rate held, each engine's CPU time per call is
summed over the steps both held: much finer than the ramps' steps. The anchors of `make bench`
(sippy, the bare relay) run once, for each side's ratio to them. --rounds N repeats the
interleaved ramps (medians reported). A full run writes the section "Call layer refactor:
before and after" into bench/RESULTS.md (replaced when there, appended otherwise; `make bench`
keeps it); --quick only prints, unless --results FILE is given. Nothing asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import call_setup, media_relay  # noqa: E402
from bench.common import (  # noqa: E402
    BENCH,
    HOST,
    ROOT,
    Server,
    cpu_seconds,
    free_block,
    free_ports,
    raise_nofile,
    replace_section,
)
from bench.compare_results import (  # noqa: E402
    HEADING,
    A,
    MediaAttempt,
    MediaResults,
    SetupAttempt,
    SetupResults,
    Side,
    markdown,
)
from bench.engine_server import DID_PREFIX, callee_numbers  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
WORKTREE_PREFIX = "centralino-bench-baseline-"
# Both engines are up through a set-up ramp: one RTP range each (8000 ports, as make bench).
SETUP_RTP = ("40000-47999", "48000-55999")


# --- git ------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip()


def describe_commit(repo: Path, ref: str) -> tuple[str, str]:
    """(full sha, "shortsha subject") of a ref."""
    sha = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    return sha, _short(_git(repo, "log", "-1", "--format=%h %s", sha))


def _short(line: str, width: int = 80) -> str:
    return line if len(line) <= width else line[: width - 3].rstrip() + "..."


def describe_tree(tree: Path) -> str:
    """The working tree: its HEAD and how many files differ from it."""
    head = _short(_git(tree, "log", "-1", "--format=%h %s"))
    changed = [line for line in _git(tree, "status", "--porcelain").splitlines() if line]
    where = (
        "pbx/ included" if any(line[3:].startswith("pbx/") for line in changed) else "none in pbx/"
    )
    return f"{tree} at {head}, {len(changed)} uncommitted file(s) ({where})"


def _remove_worktree(repo: Path, path: Path) -> None:
    with contextlib.suppress(RuntimeError):
        _git(repo, "worktree", "remove", "--force", str(path))
    shutil.rmtree(path.parent if path.parent.name.startswith(WORKTREE_PREFIX) else path, True)


def remove_stale_worktrees(repo: Path) -> None:
    """Remove the baseline worktrees an earlier run could not (SIGKILL): ours only."""
    tmp = Path(tempfile.gettempdir()).resolve()
    for line in _git(repo, "worktree", "list", "--porcelain").splitlines():
        if not line.startswith("worktree "):
            continue
        path = Path(line.split(" ", 1)[1])
        if path.parent.name.startswith(WORKTREE_PREFIX) and path.parent.parent == tmp:
            print(f"removing a stale baseline worktree: {path}", flush=True)
            _remove_worktree(repo, path)
    _git(repo, "worktree", "prune")


@contextlib.contextmanager
def baseline_worktree(repo: Path, sha: str) -> Iterator[Path]:
    """A detached checkout of `sha` in a temporary folder, removed (and pruned) on the way out."""
    remove_stale_worktrees(repo)
    path = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX)).resolve() / "tree"
    try:
        _git(repo, "worktree", "add", "--detach", str(path), sha)
        yield path
    finally:
        _remove_worktree(repo, path)
        with contextlib.suppress(RuntimeError):
            _git(repo, "worktree", "prune")


# --- checks ---------------------------------------------------------------------------------


def _served_from(server: Server) -> Path | None:
    for line in server.log_tail(100_000).splitlines():
        if line.startswith("engine_server: pbx from "):
            return Path(line.split(" from ", 1)[1].strip())
    return None


def log_errors(text: str) -> tuple[int, str]:
    """(how many tracebacks, the last exception line) in a server's log."""
    lines = text.splitlines()
    count = sum(1 for line in lines if line.startswith("Traceback"))
    last = next(
        (
            line.strip()
            for line in reversed(lines)
            if line
            and not line[0].isspace()
            and ":" in line
            and line.split(":", 1)[0].rsplit(".", 1)[-1].endswith(("Error", "Exception"))
        ),
        "",
    )
    return count, last


def note_errors(notes: list[str], where: str, text: str) -> None:
    """Add a line to `notes` when a server's log holds tracebacks."""
    count, last = log_errors(text)
    if count:
        notes.append(f"{where}: {count} traceback(s) in the server log, the last: `{last}`")


def preflight(side: Side, workdir: Path) -> None:
    """Start the engine server of `side` in both modes: it must come up, with the right pbx."""
    expected = (side.code / "pbx").resolve()
    port, uas_port, carrier_port = free_ports(3)
    servers: list[Server] = []
    try:
        servers.append(call_setup._engine(workdir, port, uas_port, carrier_port, code=side.code))
        media = media_relay._relay("engine", workdir, side.code)
        servers.append(media)
        answer = media.send_line("[]").strip()
        if answer != "[]":
            raise RuntimeError(f"{side.name} media relay answered {answer!r}: {media.log_tail()}")
        for server in servers:
            served = _served_from(server)
            if served != expected:
                raise RuntimeError(f"{side.name}: served pbx from {served}, not {expected}")
    finally:
        for server in servers:
            server.stop()
    print(f"  {side.name:8} engine server starts (sip and media), pbx from {expected}", flush=True)


# --- interleaving ---------------------------------------------------------------------------


def interleaved_ramp(
    names: list[str], levels: tuple[int, ...], run: Callable[[str, int, bool], A], retries: int
) -> list[A]:
    """Every name's ramp at once: at each level one step each, the order swapped at every level.

    A step that does not hold is run again (up to `retries` times, after the others' steps at
    that level): the last try counts. A name's ramp ends at a level it does not hold; the
    others go on. The attempts are returned in the order they ran.
    """
    attempts: list[A] = []
    alive = list(names)
    for i, level in enumerate(levels):
        pending = alive if i % 2 == 0 else alive[::-1]
        for attempt in range(1 + retries):
            failed = []
            for name in pending:
                result = run(name, level, attempt > 0)
                attempts.append(result)
                if not result.held:
                    failed.append(name)
            pending = failed
            if not pending:
                break
        alive = [name for name in alive if name not in pending]
        if not alive:
            break
    return attempts


# --- call set-up ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contender:
    """A B2BUA under test: the engine of one side, or sippy; its own ports, UAS and RTP range."""

    name: str
    code: Path | None  # the checkout whose pbx the engine serves; None: sippy
    rtp: str
    server_port: int
    uas_port: int
    carrier_port: int  # calls without auth come from here (the trunk's carrier)
    caller_port: int  # the authenticated caller's (201) calls come from here
    media_port: int  # SIPp's -mp: the UAC's block, the UAS's ten above

    @property
    def target(self) -> str:
        return f"{HOST}:{self.server_port}"

    def start(self, workdir: Path) -> tuple[Server, Server]:
        """(the SIPp UAS, the B2BUA), both started."""
        uas = call_setup._uas(self.uas_port, self.media_port + 10, workdir)
        try:
            if self.code is None:
                return uas, call_setup._sippy(workdir, self.server_port, self.uas_port)
            server = call_setup._engine(
                workdir,
                self.server_port,
                self.uas_port,
                self.carrier_port,
                code=self.code,
                rtp=self.rtp,
            )
        except BaseException:
            uas.stop()
            raise
        return uas, server


@dataclass(frozen=True, slots=True)
class SetupRun:
    """What one ramp needs: scenario, auth, rates, the -inf file, where SIPp works."""

    scenario: str
    auth: bool
    rates: tuple[int, ...]
    inf: Path
    workdir: Path
    label: str
    retries: int


def setup_ramps(contenders: list[Contender], run: SetupRun, notes: list[str]) -> list[SetupAttempt]:
    """The contenders' ramps, interleaved; every server stays up until they all end."""
    running: dict[str, tuple[Server, Server]] = {}
    by_name = {c.name: c for c in contenders}

    def step(name: str, rate: int, retry: bool) -> SetupAttempt:
        contender, pid = by_name[name], running[name][1].proc.pid
        cpu0 = cpu_seconds(pid)
        result = call_setup.run_step(
            contender.target,
            run.scenario,
            rate,
            local_port=contender.caller_port if run.auth else contender.carrier_port,
            media_port=contender.media_port,
            inf=run.inf,
            workdir=run.workdir,
            auth=run.auth,
        )
        attempt = SetupAttempt(name, result, cpu_seconds(pid) - cpu0, retry)
        p50, p95, p99 = result.pdd_ms
        print(
            f"  {run.label:7} {name:8} {rate:5}/s offered {result.achieved_rate:6.1f}/s  "
            f"failed {result.failed}/{result.calls}  PDD p50/p95/p99 {p50:.0f}/{p95:.0f}/"
            f"{p99:.0f} ms  CPU {attempt.cpu_ms_per_call:.2f} ms/call  "
            f"{'held' if result.held else 'NOT HELD'}{' (retry)' if retry else ''}"
            + (f"  ({result.causes})" if result.causes else ""),
            flush=True,
        )
        if not result.held and result.errors:
            print("    first errors: " + result.errors[:600].replace("\n", "\n    "))
        time.sleep(2)  # let the last calls' BYEs and the UAS's timewait drain
        return attempt

    try:
        for contender in contenders:
            running[contender.name] = contender.start(run.workdir)
        return interleaved_ramp(list(by_name), run.rates, step, run.retries)
    finally:
        for name, (uas, server) in running.items():
            server.stop()
            uas.stop()
            log = server.log_tail(1_000_000)
            note_errors(notes, f"{name} ({run.label} ramp)", log)
            tail = "\n".join(
                line
                for line in log[-1200:].strip().splitlines()
                if not line.startswith("engine_server: pbx from")
            )
            if tail:
                print(
                    f"  {run.label} {name} server log (tail):\n    " + tail.replace("\n", "\n    ")
                )
        time.sleep(1)


def run_setup(
    sides: list[Side],
    rates: tuple[int, ...],
    workdir: Path,
    args: argparse.Namespace,
    notes: list[str],
) -> SetupResults:
    """The authenticated then unauthenticated interleaved ramps, per round; then sippy, once."""
    numbers = callee_numbers(call_setup.CALLEES)
    extensions = call_setup._write_inf(workdir / "extensions.csv", numbers)
    dids = call_setup._write_inf(workdir / "dids.csv", [DID_PREFIX + n for n in numbers])
    block = free_block(20 * (len(sides) + 1))
    ports = free_ports(4 * (len(sides) + 1))
    contenders = []
    for i, side in enumerate([*sides, None]):
        server_port, uas_port, carrier_port, caller_port = ports[4 * i : 4 * i + 4]
        contenders.append(
            Contender(
                name=side.name if side else "sippy",
                code=side.code if side else None,
                rtp=SETUP_RTP[i % len(SETUP_RTP)],
                server_port=server_port,
                uas_port=uas_port,
                carrier_port=carrier_port,
                caller_port=caller_port,
                media_port=block + 20 * i,
            )
        )
    engines, sippy = contenders[:-1], contenders[-1]
    results = SetupResults()
    for r in range(args.rounds):
        tag = f"r{r + 1} " if args.rounds > 1 else ""
        for kind, scenario, inf, auth in (
            ("auth", "uac_auth", extensions, True),
            ("noauth", "uac_noauth", dids, False),
        ):
            run = SetupRun(scenario, auth, rates, inf, workdir, f"{tag}{kind}", args.retries)
            results.rounds[kind].append(setup_ramps(engines, run, notes))
    if not args.no_anchors:
        run = SetupRun("uac_noauth", False, rates, dids, workdir, "anchor", args.retries)
        results.anchor = setup_ramps([sippy], run, notes)
    return results


# --- media relay ----------------------------------------------------------------------------


def run_media(
    sides: list[Side],
    steps: tuple[int, ...],
    workdir: Path,
    args: argparse.Namespace,
    notes: list[str],
) -> MediaResults:
    """The engine relays' interleaved ramps, per round; then the bare relay's, once."""
    code = {side.name: side.code for side in sides}

    def step(label: str) -> Callable[[str, int, bool], MediaAttempt]:
        def run(name: str, calls: int, retry: bool) -> MediaAttempt:
            side_dir = workdir / name
            side_dir.mkdir(exist_ok=True)
            if name == "bare":
                result = media_relay.run_step("bare", calls, side_dir)
            else:
                result = media_relay.run_step("engine", calls, side_dir, code=code[name])
                log = (side_dir / "engine.log").read_text("utf-8", "replace")
                note_errors(notes, f"{name} (media, {calls} calls)", log)
            print(
                f"  {label:7} {name:8} {calls:5} calls  lost {result.lost}/{result.sent}  "
                f"latency p50/p99/max {result.p50_ms:.2f}/{result.p99_ms:.2f}/"
                f"{result.max_ms:.1f} ms  generator lag p99 {result.lag_p99_ms:.2f} ms  "
                f"relay CPU {result.relay_cpu:.0%}  {'held' if result.held else 'NOT HELD'}"
                + (" (retry)" if retry else ""),
                flush=True,
            )
            time.sleep(0.5)
            return MediaAttempt(name, result, retry)

        return run

    results = MediaResults()
    for r in range(args.rounds):
        label = f"r{r + 1} media" if args.rounds > 1 else "media"
        results.rounds.append(
            interleaved_ramp([s.name for s in sides], steps, step(label), args.retries)
        )
    if not args.no_anchors:
        results.anchor = interleaved_ramp(["bare"], steps, step("anchor"), args.retries)
    return results


# --- main -----------------------------------------------------------------------------------


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the finally blocks: servers and worktree go


def main() -> None:
    """Check out the baseline, check both engine servers, run the benchmarks, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the git ref to compare against")
    parser.add_argument(
        "--current", type=Path, default=ROOT, help="the checkout under test (default: this one)"
    )
    parser.add_argument("--quick", action="store_true", help="a few short steps (smoke run)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved ramps per benchmark")
    parser.add_argument(
        "--retries", type=int, default=1, help="runs again of a step that does not hold"
    )
    parser.add_argument("--no-anchors", action="store_true", help="skip sippy and the bare relay")
    parser.add_argument(
        "--results", type=Path, default=None, help=f"write the section here (default {RESULTS})"
    )
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise_nofile()
    current = args.current.resolve()
    sha, commit = describe_commit(current, args.baseline)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    notes: list[str] = []
    try:
        with baseline_worktree(current, sha) as tree:
            sides = [
                Side("baseline", tree, f"`{args.baseline}` = {commit}"),
                Side("current", current, describe_tree(current)),
            ]
            print(f"baseline {commit} in {tree}\ncurrent  {sides[1].label}", flush=True)
            print("engine servers:", flush=True)
            for side in sides:
                preflight(side, workdir)
            rates = call_setup.QUICK_RATES if args.quick else call_setup.RATES
            print("call set-up rate:", flush=True)
            setup = run_setup(sides, rates, workdir, args, notes)
            print("media relay:", flush=True)
            steps = media_relay.QUICK_CALLS if args.quick else media_relay.CALLS
            media = run_media(sides, steps, workdir, args, notes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - t0
    text = markdown(sides, setup, media, notes, started=started, seconds=seconds, args=args)
    print()
    print(text)
    if args.results or not args.quick:
        path = args.results or RESULTS
        old = path.read_text() if path.exists() else "# Centralino benchmarks\n"
        path.write_text(replace_section(old, HEADING, text))
        print(f"written to {path}")


if __name__ == "__main__":
    main()
