"""RFC 4475 torture messages sent to the running engine: it answers or drops, and keeps serving."""

from __future__ import annotations

import socket
import time
import uuid
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


def _barrier(port: int, local_port: int, call_id: str) -> bytes:
    """An OPTIONS the engine answers at once: sent after a message, its answer comes after."""
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag={call_id}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _answers_to(pbx: Pbx, path: Path, timeout: float = 5.0) -> list[int]:
    """Send one message over UDP (from a socket of its own); the statuses it got back.

    An OPTIONS follows it: once that is answered, the message has been dealt with (what is
    refused is refused before the next datagram is read). A message that must be refused is
    waited for until a final answer comes, in case the engine answers it later.
    """
    expected = EXPECTED.get(path.stem)
    wants_final = (
        expected is not None and expected.kind in ("rejected", "refused") and expected.answerable
    )
    call_id = f"barrier-{uuid.uuid4().hex}"
    statuses: list[int] = []
    barrier_answered = False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(path.read_bytes()[:65000], ("127.0.0.1", pbx.port))
        sock.sendto(_barrier(pbx.port, sock.getsockname()[1], call_id), ("127.0.0.1", pbx.port))
        deadline = time.monotonic() + timeout
        while not barrier_answered or (wants_final and not any(s >= 200 for s in statuses)):
            sock.settimeout(max(0.0, deadline - time.monotonic()))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                break  # the assertions say what was missing
            if call_id.encode() in data:
                barrier_answered = True
            elif data.startswith(b"SIP/2.0 "):
                # Only the status line: a 400 echoes the broken headers it complains of.
                statuses.append(int(data[8:11]))
    assert barrier_answered, f"{path.stem}: the engine stopped answering"
    return statuses


def test_after_every_torture_message_a_normal_call_still_completes(pbx: Pbx) -> None:
    assert len(TORTURE) == 49
    answers = {path.stem: _answers_to(pbx, path) for path in TORTURE}
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
    assert pbx.is_running()
