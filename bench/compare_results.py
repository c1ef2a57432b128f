"""What bench/compare.py measured, and its section of RESULTS.md.

The records of each step (one engine's try at one rate or call count), which levels held, and
the report: the summary rows (baseline, current, their ratio and each one's ratio to the
anchors) and every step in the order run.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from bench import call_setup, media_relay
from bench.common import machine_facts

HEADING = "## Call layer refactor: before and after"


@dataclass(frozen=True, slots=True)
class Side:
    """One engine under test: "baseline" or "current", and the checkout its pbx comes from."""

    name: str
    code: Path
    label: str  # what it is, for the report


@dataclass(frozen=True, slots=True)
class SetupAttempt:
    """One call set-up step of one server, and the CPU its process used meanwhile."""

    name: str
    step: call_setup.Step
    cpu: float  # CPU seconds
    retry: bool

    @property
    def level(self) -> int:
        return self.step.rate

    @property
    def held(self) -> bool:
        return self.step.held

    @property
    def cpu_ms_per_call(self) -> float:
        return self.cpu * 1000 / self.step.calls if self.step.calls else float("nan")


@dataclass(frozen=True, slots=True)
class MediaAttempt:
    """One media relay step of one relay."""

    name: str
    step: media_relay.MediaStep
    retry: bool

    @property
    def level(self) -> int:
        return self.step.calls

    @property
    def held(self) -> bool:
        return self.step.held


A = TypeVar("A", SetupAttempt, MediaAttempt)


def held(attempts: list[A], name: str) -> dict[int, A]:
    """name's attempts that held, by level (rate or calls)."""
    return {a.level: a for a in attempts if a.name == name and a.held}


def best(attempts: list[A], name: str) -> int:
    """The highest level `name` held, 0 if none."""
    return max(held(attempts, name), default=0)


@dataclass
class SetupResults:
    """Per scenario ("auth", "noauth") the attempts of each round; the sippy anchor's."""

    rounds: dict[str, list[list[SetupAttempt]]] = field(
        default_factory=lambda: {"auth": [], "noauth": []}
    )
    anchor: list[SetupAttempt] | None = None


@dataclass
class MediaResults:
    """The attempts of each round; the bare relay anchor's."""

    rounds: list[list[MediaAttempt]] = field(default_factory=list)
    anchor: list[MediaAttempt] | None = None


# --- report ---------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "n/a"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _per_round(values: list[float], digits: int) -> str:
    return " (" + ", ".join(f"{v:.{digits}f}" for v in values) + ")" if len(values) > 1 else ""


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the summary: a figure for each side and how it reads."""

    what: str
    baseline: float | None
    current: float | None
    better: str  # "higher" or "lower"
    digits: int = 0
    detail: tuple[str, str] = ("", "")  # per-round figures of baseline, current
    anchor: float | None = None  # the anchor's figure, same unit, when there is one

    def markdown(self) -> str:
        return (
            f"| {self.what} | {_fmt(self.baseline, self.digits)}{self.detail[0]} | "
            f"{_fmt(self.current, self.digits)}{self.detail[1]} | "
            f"{_ratio(self.current, self.baseline)} | {self.better} | "
            f"{_ratio(self.baseline, self.anchor)} | {_ratio(self.current, self.anchor)} |"
        )


SIDES = ("baseline", "current")


def _headline(what: str, rounds: list[list[A]], anchor: list[A] | None) -> Row:
    tops = {name: [float(best(r, name)) for r in rounds] for name in SIDES}
    return Row(
        what,
        _median(tops["baseline"]),
        _median(tops["current"]),
        "higher",
        detail=(_per_round(tops["baseline"], 0), _per_round(tops["current"], 0)),
        anchor=float(best(anchor, anchor[0].name)) if anchor else None,
    )


def setup_rows(
    kind: str, rounds: list[list[SetupAttempt]], anchor: list[SetupAttempt] | None
) -> list[Row]:
    """Best rate held, engine CPU per call and PDD p95, baseline against current."""
    rows = [_headline(f"call set-up {kind}: best rate held (calls/s)", rounds, anchor)]
    cpu = dict.fromkeys(SIDES, 0.0)
    calls = 0
    common: set[int] = set()
    pdd: dict[str, list[float]] = {name: [] for name in SIDES}
    tops: set[int] = set()
    for r in rounds:
        by_side = {name: held(r, name) for name in SIDES}
        both = sorted(set(by_side["baseline"]) & set(by_side["current"]))
        common.update(both)
        for rate in both:
            calls += by_side["baseline"][rate].step.calls
            for name in SIDES:
                cpu[name] += by_side[name][rate].cpu
        if both:
            tops.add(both[-1])
            for name in SIDES:
                pdd[name].append(by_side[name][both[-1]].step.pdd_ms[1])
    steps = ", ".join(map(str, sorted(common))) or "none"
    rows.append(
        Row(
            f"call set-up {kind}: engine CPU per call (ms), over the steps both held ({steps}/s)",
            cpu["baseline"] * 1000 / calls if calls else None,
            cpu["current"] * 1000 / calls if calls else None,
            "lower",
            digits=2,
        )
    )
    top = "/".join(map(str, sorted(tops))) or "n/a"
    rows.append(
        Row(
            f"call set-up {kind}: PDD p95 (ms) at the top rate both held ({top}/s)",
            _median(pdd["baseline"]),
            _median(pdd["current"]),
            "lower",
            detail=(_per_round(pdd["baseline"], 0), _per_round(pdd["current"], 0)),
        )
    )
    return rows


def media_rows(rounds: list[list[MediaAttempt]], anchor: list[MediaAttempt] | None) -> list[Row]:
    """Most calls held, relay CPU per 100 calls and p99 latency, baseline against current."""
    rows = [_headline("media relay: most calls held", rounds, anchor)]
    cpu = dict.fromkeys(SIDES, 0.0)
    calls = 0
    common: set[int] = set()
    p99: dict[str, list[float]] = {name: [] for name in SIDES}
    tops: set[int] = set()
    for r in rounds:
        by_side = {name: held(r, name) for name in SIDES}
        both = sorted(set(by_side["baseline"]) & set(by_side["current"]))
        common.update(both)
        for n in both:
            calls += n
            for name in SIDES:
                cpu[name] += by_side[name][n].step.relay_cpu
        if both:
            tops.add(both[-1])
            for name in SIDES:
                p99[name].append(by_side[name][both[-1]].step.p99_ms)
    steps = ", ".join(map(str, sorted(common))) or "none"
    rows.append(
        Row(
            f"media relay: relay CPU per 100 calls (% of a core), over the steps both held "
            f"({steps} calls)",
            cpu["baseline"] * 100 * 100 / calls if calls else None,
            cpu["current"] * 100 * 100 / calls if calls else None,
            "lower",
            digits=2,
        )
    )
    top = "/".join(map(str, sorted(tops))) or "n/a"
    rows.append(
        Row(
            f"media relay: p99 latency (ms) at the most calls both held ({top})",
            _median(p99["baseline"]),
            _median(p99["current"]),
            "lower",
            digits=2,
            detail=(_per_round(p99["baseline"], 2), _per_round(p99["current"], 2)),
        )
    )
    return rows


def _held_cell(held_: bool, retry: bool, extra: str = "") -> str:
    return ("yes" if held_ else "no" + extra) + (" (retry)" if retry else "")


def markdown(
    sides: list[Side],
    setup: SetupResults,
    media: MediaResults,
    notes: list[str],
    *,
    started: datetime,
    seconds: float,
    args: argparse.Namespace,
) -> str:
    """The section of RESULTS.md: what was compared, the summary, every step."""
    facts = machine_facts()
    by_name = {side.name: side for side in sides}
    rows = [
        *setup_rows("auth", setup.rounds["auth"], setup.anchor),
        *setup_rows("noauth", setup.rounds["noauth"], setup.anchor),
        *media_rows(media.rounds, media.anchor),
    ]
    rounds = args.rounds
    anchors = (
        "none (--no-anchors)"
        if args.no_anchors
        else "sippy's b2bua_simple for call set-up (its figure divides both the authenticated and "
        "the unauthenticated rates, as in the table above), the bare asyncio relay for media"
    )
    lines = [
        HEADING,
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC (whole run {seconds / 60:.1f} min)"
        + (", **--quick: a smoke run, not a measurement**" if args.quick else ""),
        f"- baseline: {by_name['baseline'].label}",
        f"- current: {by_name['current'].label}",
        f"- machine: nproc {facts['nproc']}, {facts['cpu']}, {facts['os']}, loopback only; "
        f"Python {facts['python']}, {facts['loop']}, SIPp {facts['sipp']}",
        f"- produced by `bench/compare.py --baseline {args.baseline}"
        + (" --quick" if args.quick else "")
        + (f" --rounds {rounds}" if rounds != 1 else "")
        + (f" --retries {args.retries}" if args.retries != 1 else "")
        + "`"
        + (" (medians over the rounds; each round's figure in brackets)" if rounds > 1 else ""),
        "",
        "Both engines run under this tree's harness (`bench/engine_server.py --code`: only "
        "the `pbx` package differs), against the same load generators, scenarios and "
        "thresholds as the sections above. Their steps alternate (baseline then current, the "
        "order swapped at every step) so that machine noise hits both alike; during a call "
        "set-up ramp both engines stay up, each with its own SIPp UAS, ports and RTP range, "
        "and a media step starts a fresh relay. A step that does not hold is run once more "
        f"(--retries {args.retries}) before that side's ramp ends: one burst from another "
        "process does not end a ramp. The ramps' steps are coarse: the engine's CPU time per "
        "call, summed over the steps both held, is the finer figure. A ratio current/baseline "
        ">= 1 where higher is better, <= 1 where lower is better, means no slower. "
        f"Anchors, run once: {anchors}.",
        "",
        "| figure | baseline | current | current / baseline | better | baseline / anchor | "
        "current / anchor |",
        "|---|---|---|---|---|---|---|",
        *(row.markdown() for row in rows),
        "",
        *([*(f"- {note}" for note in notes), ""] if notes else []),
        "Every call set-up step, in the order run:",
        "",
        "| ramp | server | offered/s | achieved/s | failed | stray msgs ignored | "
        "PDD p50/p95/p99 ms | server CPU ms/call | held |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    setup_runs = [
        (f"{kind} r{r + 1}" if rounds > 1 else kind, attempts)
        for kind in ("auth", "noauth")
        for r, attempts in enumerate(setup.rounds[kind])
    ]
    if setup.anchor is not None:
        setup_runs.append(("noauth (anchor)", setup.anchor))
    for tag, setup_attempts in setup_runs:
        for a in setup_attempts:
            s = a.step
            lines.append(
                f"| {tag} | {a.name} | {s.rate} | {s.achieved_rate:.0f} | {s.failed}/{s.calls}"
                + (f" ({s.causes})" if s.causes else "")
                + f" | {s.stray} | "
                + "/".join(f"{v:.0f}" for v in s.pdd_ms)
                + f" | {a.cpu_ms_per_call:.2f} | {_held_cell(s.held, a.retry)} |"
            )
    lines += [
        "",
        "Every media step, in the order run:",
        "",
        "| round | relay | calls | packets lost | p50 / p99 / max (ms) | generator lag p99 (ms) "
        "| relay CPU | held |",
        "|---|---|---|---|---|---|---|---|",
    ]
    media_runs = [(f"r{r + 1}" if rounds > 1 else "1", a) for r, a in enumerate(media.rounds)]
    if media.anchor is not None:
        media_runs.append(("anchor", media.anchor))
    for tag, media_attempts in media_runs:
        for m in media_attempts:
            t = m.step
            bound = " (generator-bound)" if t.generator_bound else ""
            lines.append(
                f"| {tag} | {m.name} | {t.calls} | {t.lost}/{t.sent} | {t.p50_ms:.2f} / "
                f"{t.p99_ms:.2f} / {t.max_ms:.1f} | {t.lag_p99_ms:.2f} | {t.relay_cpu:.0%} | "
                f"{_held_cell(t.held, m.retry, bound)} |"
            )
    return "\n".join(lines) + "\n"
