"""`make bench`: call set-up, media relay, console latency and auto-attendant, to bench/RESULTS.md.

Each figure is printed next to its anchor measured in the same run (sippy's B2BUA for call
set-up, a bare asyncio relay for media, one console for the consoles' latency, a bridged call's
relay hop on the same engine for the attendant's key to next prompt), so that the ratio, not the
absolute figure, is what compares across machines. Nothing here asserts a timing.

    .venv/bin/python bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import attendant_latency, call_setup, console_latency, media_relay  # noqa: E402
from bench.common import BENCH, get_section, machine_facts  # noqa: E402
from bench.compare import HEADING as COMPARE_HEADING  # noqa: E402
from bench.soak import HEADING as SOAK_HEADING  # noqa: E402

RESULTS = BENCH / "RESULTS.md"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def header(started: datetime, seconds: float) -> str:
    """Date, machine and versions: the context of every figure below."""
    facts = machine_facts()
    return "\n".join(
        [
            "# Centralino benchmarks",
            "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC (whole run {seconds / 60:.1f} min)",
            f"- machine: nproc {facts['nproc']}, {facts['cpu']}, {facts['os']}, loopback only",
            f"- Python {facts['python']}, event loop {facts['loop']} "
            f"(uvloop {_version('uvloop')}), SIPp {facts['sipp']}, sippy {_version('sippy')}",
            "- every server runs in its own process; the load generators run beside it on the "
            "same cores",
            "- produced by `make bench` (bench/run_all.py); ratios are the figures to compare",
            "",
        ]
    )


def kept_sections() -> str:
    """The sections of RESULTS.md that runs of their own write (bench/compare.py, `make soak`)."""
    old = RESULTS.read_text() if RESULTS.exists() else ""
    kept = [get_section(old, heading) for heading in (COMPARE_HEADING, SOAK_HEADING)]
    return "".join("\n" + section for section in kept if section)


def main() -> None:
    """Run the benchmarks, write RESULTS.md and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short steps (smoke run)")
    args = parser.parse_args()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    print("call set-up rate:", flush=True)
    ramps = call_setup.run(call_setup.QUICK_RATES if args.quick else call_setup.RATES)
    print("media relay:", flush=True)
    media = media_relay.run(media_relay.QUICK_CALLS if args.quick else media_relay.CALLS)
    print("console latency:", flush=True)
    if args.quick:
        rates, seconds = console_latency.QUICK_RATES, console_latency.QUICK_STEP_SECONDS
    else:
        rates, seconds = console_latency.RATES, console_latency.STEP_SECONDS
    consoles = console_latency.run(rates, seconds)
    print("auto-attendant key to next prompt:", flush=True)
    attendant = attendant_latency.run(
        attendant_latency.QUICK_STEPS if args.quick else attendant_latency.STEPS
    )
    text = "\n".join(
        [
            header(started, time.monotonic() - t0),
            call_setup.markdown(ramps),
            media_relay.markdown(media),
            console_latency.markdown(consoles, seconds),
            attendant_latency.markdown(attendant, args.quick),
        ]
    )
    if not args.quick:
        RESULTS.write_text(text + kept_sections())
    print(text)


if __name__ == "__main__":
    main()
