"""What the web side asks of the engine, wherever the engine runs, and who may ask it.

In the embedded default the engine shares this process (and, for the consoles' sockets, this
event loop); in the distributed mode it runs in the telephony worker of the node, reached by
a short-lived Celery task on the node's queue. Callers do not care which: they await these.

Every command of a console or of the REST API comes through `command()`: the body is checked
here (a malformed one is `bad_request`), the user's role and company here (`not_allowed`), and
the engine answers for the call itself (`no_such_call`, `taken`, `slot_taken`, ...). Nothing
is trusted because a page hid a button.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from pbx import worker
from pbx.engine.commands import Action, Console, Done
from pbx.engine.operations import OperationError
from pbx.engine.operator import OPERATOR_RING_SECONDS, PARK_SLOTS
from pbx.events import View, view_of

SNAPSHOT_TIMEOUT = 5.0
# A command that rings the operator's phone waits for it to answer.
COMMAND_TIMEOUT = OPERATOR_RING_SECONDS + 5.0
NUMBER = re.compile(r"^[0-9*#+]{1,32}$")
CALL_ID = re.compile(r"^[0-9a-f]{1,64}$")
# What each action needs besides the acting operator.
NEEDS: dict[Action, tuple[str, ...]] = {
    Action.ANSWER: ("call_id",),
    Action.REJECT: ("call_id",),
    Action.HOLD: ("call_id",),
    Action.RESUME: ("call_id",),
    Action.HANGUP: ("call_id",),
    Action.TRANSFER: ("call_id", "number"),
    Action.ATTENDED_TRANSFER: ("call_id", "consult_call_id"),
    Action.PARK: ("call_id",),
    Action.RETRIEVE: ("slot",),
    Action.DIAL: ("number",),
}


class EngineUnavailable(Exception):
    """No engine answered (it is not running, or its node did not reply in time)."""


class Refused(Exception):
    """A command that was not carried out; `code` for machines, the text for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sends a command: a user's company, role and extension (pbx.models.Membership)."""

    company_id: int
    extension: str  # "" when the user has none
    runs_the_console: bool


def actor_of(user: Any) -> Actor | None:
    """The actor a web user is, or None (not logged in, no company). Touches the database."""
    from pbx.models import Membership

    if user is None or not user.is_authenticated or not user.is_active:
        return None
    membership = Membership.objects.select_related("extension").filter(user=user).first()
    if membership is None:
        return None
    return Actor(
        membership.company_id,
        membership.extension.number if membership.extension else "",
        membership.runs_the_console,
    )


def parse(actor: Actor | None, body: Any) -> Console:
    """The command `body` asks for, on behalf of `actor`, checked.

    Raises:
        Refused: `not_allowed` (no login, not an operator, no extension of their own),
            `bad_request` (unknown action, a missing or malformed field).
    """
    if actor is None or not actor.runs_the_console:
        raise Refused("not_allowed", "only the company's operators may control its calls")
    if not isinstance(body, dict):
        raise Refused("bad_request", "a command is a JSON object")
    try:
        action = Action(body.get("action"))
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise Refused(
            "bad_request", f"unknown action {body.get('action')!r}: one of {known}"
        ) from None
    if not actor.extension:
        raise Refused("not_allowed", "the user has no extension (phone) to handle calls with")
    fields: dict[str, Any] = {}
    for name in ("call_id", "consult_call_id"):
        value = body.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or not CALL_ID.match(value):
            raise Refused("bad_request", f"{name} is not a call id")
        fields[name] = value
    number = body.get("number")
    if number not in (None, ""):
        if not isinstance(number, str) or not NUMBER.match(number.strip()):
            raise Refused("bad_request", "number: digits only (0 first for an outside number)")
        fields["number"] = number.strip()
    slot = body.get("slot")
    if slot not in (None, ""):
        if isinstance(slot, bool) or not isinstance(slot, int | str) or not str(slot).isdigit():
            raise Refused("bad_request", f"slot: a number from 1 to {PARK_SLOTS}")
        fields["slot"] = int(slot)
        if not 1 <= fields["slot"] <= PARK_SLOTS:
            raise Refused("no_such_slot", f"parking slots are 1 to {PARK_SLOTS}")
    node = body.get("node")
    if node not in (None, ""):
        if not isinstance(node, str) or node not in nodes():
            raise Refused("bad_request", f"no telephony node {node!r}")
        fields["node"] = node
    missing = [name for name in NEEDS[action] if name not in fields]
    if missing:
        raise Refused("bad_request", f"{action.value} needs {', '.join(missing)}")
    return Console(action, actor.company_id, actor.extension, **fields)


async def command(console: Console) -> dict[str, Any]:
    """Carry out a checked command on the engine that has its calls; the acknowledgement.

    Raises:
        Refused: the engine said no (its code), or no engine answered (`engine_unavailable`).
    """
    current = worker.attached()
    try:
        if current is not None:
            if current.loop is asyncio.get_running_loop():
                done = await current.engine.execute(console)
            else:
                done = await sync_to_async(worker.execute)(console, COMMAND_TIMEOUT)
            return acknowledgement(done)
    except OperationError as error:
        raise Refused(error.code, str(error)) from error
    except Exception as error:
        raise Refused("engine_unavailable", str(error) or type(error).__name__) from error
    from django.conf import settings

    if not settings.REDIS_URL:
        raise Refused("engine_unavailable", "no telephony engine runs in this process")
    from pbx.tasks import console_command as task

    node = console.node or nodes()[0]

    def ask_the_node() -> dict[str, Any]:
        result = task.apply_async(args=(console.as_dict(),), queue=worker.telephony_queue(node))
        try:
            answer: dict[str, Any] = result.get(timeout=COMMAND_TIMEOUT)
        finally:
            result.forget()  # read once: not kept in Redis for a day (result_expires)
        return answer

    try:
        answer = await sync_to_async(ask_the_node, thread_sensitive=False)()
    except Exception as error:
        raise Refused("engine_unavailable", str(error) or type(error).__name__) from error
    if "error" in answer:
        raise Refused(answer["error"], answer.get("detail", ""))
    return answer


def acknowledgement(done: Done) -> dict[str, Any]:
    """What a command's sender is told when it was carried out."""
    answer: dict[str, Any] = {"call_id": done.call_id}
    if done.slot is not None:
        answer["slot"] = done.slot
    return answer


def nodes() -> list[str]:
    """The telephony nodes the web knows: the in-process engine's, or CENTRALINO_NODES."""
    current = worker.attached()
    if current is not None:
        return [current.engine.console.node]
    from django.conf import settings

    return list(settings.CENTRALINO_NODES)


async def console_snapshot(company_id: int) -> View:
    """What the consoles of `company_id` show now: one snapshot per node (pbx/events.py).

    A node that does not answer is left out and named in the view's "unreachable".

    Raises:
        EngineUnavailable: no engine to ask, or none answered.
    """
    current = worker.attached()
    if current is not None:
        if current.loop is asyncio.get_running_loop():
            return view_of([current.engine.console.snapshot(company_id)])

        async def ask(engine: Any) -> dict[str, Any]:
            return engine.console.snapshot(company_id)

        try:
            return view_of([await sync_to_async(worker.call_engine)(ask, SNAPSHOT_TIMEOUT)])
        except Exception as error:
            raise EngineUnavailable(str(error) or type(error).__name__) from error
    from django.conf import settings

    if not settings.REDIS_URL:
        raise EngineUnavailable("no telephony engine runs in this process")
    known = nodes()
    answers = await asyncio.gather(
        *(_node_snapshot(node, company_id) for node in known), return_exceptions=True
    )
    snapshots = [a for a in answers if isinstance(a, dict)]
    if not snapshots:
        raise EngineUnavailable("; ".join(str(a) or type(a).__name__ for a in answers))
    view = view_of(snapshots)
    view["unreachable"] = [
        node for node, answer in zip(known, answers, strict=True) if not isinstance(answer, dict)
    ]
    return view


async def _node_snapshot(node: str, company_id: int) -> dict[str, Any]:
    """One node's snapshot, by a task on its queue."""
    from pbx.tasks import console_snapshot as task

    def ask_the_node() -> dict[str, Any]:
        result = task.apply_async(args=(company_id,), queue=worker.telephony_queue(node))
        try:
            answer: dict[str, Any] = result.get(timeout=SNAPSHOT_TIMEOUT)
        finally:
            result.forget()  # a whole call list per console (re)connect: not kept for a day
        return answer

    return await sync_to_async(ask_the_node, thread_sensitive=False)()
