"""RFC 4475 torture messages sent to the running engine: it answers or drops, and keeps serving."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.sipp import sipp_binary, sipp_uas
from tests.unit.test_rfc4475 import EXPECTED

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]

TORTURE = sorted((Path(__file__).resolve().parents[1] / "testdata" / "rfc4475").glob("*.dat"))


def _send_all(pbx: Pbx) -> dict[str, list[int]]:
    """Send every message over UDP and collect the status codes each one got back."""
    answers: dict[str, list[int]] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.12)
        for path in TORTURE:
            sock.sendto(path.read_bytes()[:65000], ("127.0.0.1", pbx.port))
            statuses: list[int] = []
            try:
                while True:
                    data, _ = sock.recvfrom(65535)
                    # Only the status line: a 400 echoes the broken headers it complains of.
                    if data.startswith(b"SIP/2.0 "):
                        statuses.append(int(data[8:11]))
            except TimeoutError:
                pass
            answers[path.stem] = statuses
    return answers


def test_after_every_torture_message_a_normal_call_still_completes(pbx: Pbx) -> None:
    assert len(TORTURE) == 49
    answers = _send_all(pbx)
    # Every message the parser or the UAS checks refuse is answered, with the status the unit
    # table (RFC 4475 section by section) expects, at the address it came from; responses
    # among them (scalarlg, bigcode) are dropped, never answered.
    for name, outcome in EXPECTED.items():
        if outcome.kind in ("rejected", "refused") and outcome.answerable:
            assert outcome.status in answers[name], (name, answers[name])
        if not outcome.answerable:
            assert answers[name] == [], (name, answers[name])
    assert not answers["bcast"]  # a response that is not ours: dropped
    with sipp_uas("uas_answer") as callee:
        pbx.bind("202", callee.address)
        result = pbx.dial(
            "202",
            duration_ms=300,
        )
        assert result.ok, result.explain()
    assert pbx.engine.running
