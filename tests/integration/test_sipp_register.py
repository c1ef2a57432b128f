"""A2/A1 against SIPp: registration with digest, and what wrong credentials get."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.sipp import run_sipp, sipp_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


def test_a_phone_registers_after_answering_the_challenge(pbx: Pbx) -> None:
    result = run_sipp(
        "register_auth", pbx.address, keys={"user": "201"}, auth=("201", pbx.secrets["201"])
    )
    assert result.ok, result.explain()
    assert pbx.registered("201")


def test_a_wrong_password_is_refused(pbx: Pbx) -> None:
    result = run_sipp(
        "register_wrong_password", pbx.address, keys={"user": "201"}, auth=("201", "not-the-secret")
    )
    assert result.ok, result.explain()
    assert not pbx.registered("201")


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(pbx: Pbx) -> None:
    result = run_sipp(
        "register_unknown_user", pbx.address, keys={"user": "999"}, auth=("999", "whatever")
    )
    assert result.ok, result.explain()


def test_a_source_that_keeps_failing_is_blocked_for_a_while(
    make_pbx: Callable[..., Pbx],
) -> None:
    server = make_pbx(
        auth_fail_limit=2, auth_fail_window=60, auth_block_seconds=300, extensions=("201",)
    )
    for _ in range(2):
        run_sipp(
            "register_wrong_password",
            server.address,
            keys={"user": "201"},
            auth=("201", "wrong"),
        )
    # A blocked source gets no answer at all: only a timeout tells.
    blocked = run_sipp(
        "register_auth",
        server.address,
        keys={"user": "201"},
        auth=("201", server.secrets["201"]),
        recv_timeout_ms=1500,
        timeout=5,
    )
    assert not blocked.ok
    assert not server.registered("201")
