"""The systemd units of deploy/systemd are real units: `systemd-analyze verify` accepts them
(issue 9), once their install paths point at this checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.processes import skip_loudly

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def test_every_process_of_the_procfile_has_a_unit() -> None:
    procfile = (ROOT / "Procfile").read_text().splitlines()
    names = {line.split(":", 1)[0] for line in procfile if line.strip()}

    assert {unit.stem.removeprefix("centralino-") for unit in UNITS} == names


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_the_unit_is_valid_and_restarts_on_failure(unit: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        skip_loudly("systemd-analyze is missing: the systemd units are not verified")
    text = unit.read_text()
    assert "Restart=on-failure" in text and "EnvironmentFile=/etc/centralino/env" in text
    assert "User=centralino" in text
    assert "${" not in text.replace("${CENTRALINO_", "")  # only plain variables, no shell syntax
    local = (
        text.replace("/opt/centralino", str(ROOT))
        .replace("/etc/centralino/env", str(ROOT / "deploy" / "systemd" / "env.example"))
        .replace("User=centralino", "User=root")
        .replace("Group=centralino", "Group=root")
    )
    (tmp_path / unit.name).write_text(local)

    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
