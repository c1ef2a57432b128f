"""What the engine says it takes (Allow) is what its SIP stack lets through to it."""

from __future__ import annotations

from pbx.engine.legs import ALLOW_OUTSIDE_DIALOGS
from pbx.engine.stack import IMPLEMENTED


def test_the_methods_allowed_are_the_methods_the_stack_lets_through_with_a_require() -> None:
    assert {method.strip() for method in ALLOW_OUTSIDE_DIALOGS.split(",")} == IMPLEMENTED
