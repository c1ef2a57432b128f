"""`make bench` rewrites bench/RESULTS.md but keeps the sections that runs of their own write."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run_all
from bench.common import get_section, replace_section

OLD = """# Benchmarks

## Call set-up rate (SIPp UAC -> B2BUA -> SIPp UAS)

old figures

## Call layer refactor: before and after

compare figures

## Soak

- 30 minutes, 32,550 calls

## Auto-attendant: key to next prompt

old attendant figures
"""


def test_the_compare_and_soak_sections_survive_a_bench_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(OLD)
    monkeypatch.setattr(run_all, "RESULTS", results)
    kept = run_all.kept_sections()
    assert "compare figures" in kept
    assert "32,550 calls" in kept
    assert "old figures" not in kept and "old attendant figures" not in kept


def test_nothing_is_kept_from_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_all, "RESULTS", tmp_path / "RESULTS.md")
    assert run_all.kept_sections() == ""


def test_a_section_is_read_and_replaced_up_to_the_next_heading() -> None:
    assert get_section(OLD, "## Soak") == "## Soak\n\n- 30 minutes, 32,550 calls\n"
    assert get_section(OLD, "## Nothing") == ""
    replaced = replace_section(OLD, "## Soak", "## Soak\n\nnew soak\n")
    assert "new soak" in replaced and "32,550" not in replaced
    assert "old attendant figures" in replaced and "compare figures" in replaced
    assert replace_section(OLD, "## Soak", "").count("## ") == OLD.count("## ") - 1
