"""The REST API of the operator console: what a CRM needs to click-to-dial and transfer.

It is a second door to what the console's socket does, not a second set of rules: each view
builds the command's body from its URL and request, `pbx.control.parse` checks it (who, which
company, which fields) and `pbx.control.command` has the engine carry it out. The lists (calls,
parking, extensions) read the same snapshot the consoles start from (pbx/events.py).

Every error answers `{"error": code, "detail": text}` with the status of `STATUS_OF_CODE`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from pbx import control
from pbx.engine.call import CallState
from pbx.engine.commands import Action, Console
from pbx.engine.events import ExtensionState
from pbx.engine.operator import PARK_SLOTS
from pbx.events import merged
from pbx.models import Extension

# The HTTP status of each refusal (pbx/control.py, the engine's OperationError codes). A code
# not listed is a conflict with the state of the calls: 409.
STATUS_OF_CODE: dict[str, int] = {
    "bad_request": 400,
    "no_such_slot": 400,
    "not_allowed": 403,
    "no_such_call": 404,
    "slot_empty": 404,
    "no_such_number": 404,
    "taken": 409,
    "slot_taken": 409,
    "target_busy": 409,
    "parking_full": 409,
    "not_answered": 409,
    "not_yours": 409,
    "phone_unreachable": 409,
    "target_unavailable": 409,
    "no_extension": 409,
    "engine_unavailable": 503,
    "no_media_port": 503,  # the engine is out of RTP ports: try again later
}
CONFLICT = 409


# --- what the schema documents ---------------------------------------------------------------


class CallSerializer(serializers.Serializer):
    """A live call, as the consoles show it (pbx/events.py). Times are Unix seconds."""

    id = serializers.CharField()
    state = serializers.ChoiceField([s.value for s in CallState if s is not CallState.ENDED])
    direction = serializers.CharField(help_text="inbound, outbound or internal")
    caller = serializers.CharField()
    caller_name = serializers.CharField()
    dialled = serializers.CharField()
    answered_by = serializers.CharField(help_text="the extension that answered, if any")
    operator = serializers.CharField(help_text="the extension of the operator handling it")
    park_slot = serializers.IntegerField(allow_null=True)
    outgoing = serializers.BooleanField(help_text="the operator made it (dialled, retrieved)")
    held = serializers.BooleanField()
    held_since = serializers.FloatField(allow_null=True)
    started_at = serializers.FloatField()
    state_since = serializers.FloatField()
    node = serializers.CharField(help_text="the telephony node that has the call")


class ParkingSlotSerializer(serializers.Serializer):
    slot = serializers.IntegerField(min_value=1, max_value=PARK_SLOTS)
    call = CallSerializer(allow_null=True)


class ExtensionSerializer(serializers.Serializer):
    number = serializers.CharField()
    name = serializers.CharField()
    do_not_disturb = serializers.BooleanField()
    state = serializers.ChoiceField([s.value for s in ExtensionState])
    registered = serializers.BooleanField(help_text="a phone of it is registered")


class AckSerializer(serializers.Serializer):
    """The command was carried out."""

    call_id = serializers.CharField(help_text="the call it acted on, or the call it placed")
    slot = serializers.IntegerField(required=False, help_text="where a parked call went")


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="for programs: not_allowed, no_such_call, ...")
    detail = serializers.CharField(help_text="for people")


class ParkRequestSerializer(serializers.Serializer):
    slot = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=PARK_SLOTS,
        help_text="the first free one if left out",
    )


class TransferRequestSerializer(serializers.Serializer):
    """Either `number` (blind transfer) or `consult_call_id` (attended transfer)."""

    number = serializers.CharField(required=False, help_text="blind: the number to send it to")
    consult_call_id = serializers.CharField(
        required=False, help_text="attended: the answered call to join it with"
    )


class DialRequestSerializer(serializers.Serializer):
    number = serializers.CharField(help_text="an extension, or 0 then an outside number")


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The schema's error responses, each listing the codes it carries."""
    codes = {
        status: [code for code, s in STATUS_OF_CODE.items() if s == status] for status in statuses
    }
    codes.setdefault(401, []).extend(["not_authenticated", "authentication_failed"])
    codes.setdefault(403, []).extend(["not_allowed", "permission_denied (CSRF)"])
    return {
        status: OpenApiResponse(
            ErrorSerializer, description=", ".join(dict.fromkeys(codes[status]))
        )
        for status in sorted(codes)
    }


READ_ERRORS = {
    **_errors(),
    503: OpenApiResponse(ErrorSerializer, description="engine_unavailable"),
}
COMMAND_ERRORS = _errors(400, 403, 404, 409, 503)


# --- errors ----------------------------------------------------------------------------------


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error of the API as `{"error": code, "detail": text}` (REST_FRAMEWORK setting)."""
    if isinstance(exc, control.Refused):
        return _error(exc.code, exc.detail)
    if isinstance(exc, control.EngineUnavailable):
        return _error("engine_unavailable", str(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = "bad_request" if isinstance(exc, exceptions.ParseError) else exc.default_code
    detail = exc.detail.get("detail", exc.detail) if isinstance(exc.detail, dict) else exc.detail
    response.data = {"error": code, "detail": str(detail)}
    return response


def _error(code: str, detail: str) -> Response:
    return Response({"error": code, "detail": detail}, status=STATUS_OF_CODE.get(code, CONFLICT))


# --- access ----------------------------------------------------------------------------------


def _console_actor(request: Request) -> control.Actor:
    """The operator (or administrator) the request acts for; anyone else is refused."""
    actor = control.actor_of(request.user)
    if actor is None or not actor.runs_the_console:
        raise control.Refused(
            "not_allowed", "only the operators and administrators of a company may use its console"
        )
    return actor


def _view(actor: control.Actor) -> dict[str, Any]:
    """What the consoles of the actor's company show now, node by node (pbx/events.py)."""
    view: dict[str, Any] = async_to_sync(control.console_snapshot)(actor.company_id)
    return view


def _snapshot(actor: control.Actor) -> dict[str, Any]:
    """The same, every node's calls and extensions together."""
    return merged(_view(actor))


def _command(request: Request, body: dict[str, Any]) -> Response:
    """Check the command `body` on behalf of the user, have the engine carry it out on the
    telephony node that has the call (several nodes: found in their snapshots)."""
    actor = _console_actor(request)
    console = control.parse(actor, body)
    if len(control.nodes()) > 1 and not console.node:
        console = replace(console, node=_node_for(actor, console))
    return Response(async_to_sync(control.command)(console))


def _node_for(actor: control.Actor, console: Console) -> str:
    view = _view(actor)  # asked once: every node answers a task for it
    snapshot = merged(view)
    if console.call_id:
        call = snapshot["calls"].get(console.call_id)
        if call is None:
            raise control.Refused("no_such_call", "the call has ended or never was")
        return str(call["node"])
    if console.action is Action.RETRIEVE:
        for call in snapshot["calls"].values():
            if call["state"] == CallState.PARKED.value and call["park_slot"] == console.slot:
                return str(call["node"])
        raise control.Refused("slot_empty", f"nothing is parked in slot {console.slot}")
    for node, node_snapshot in view["nodes"].items():
        if actor.extension in node_snapshot["registered"]:
            return str(node)  # dial from where the operator's phone is registered
    return ""


def _body(request: Request) -> dict[str, Any]:
    """The request's body: a JSON object, or nothing."""
    if not isinstance(request.data, dict):
        raise control.Refused("bad_request", "the body is a JSON object")
    return request.data


def _given(body: dict[str, Any], name: str) -> bool:
    return body.get(name) not in (None, "")


# --- calls -----------------------------------------------------------------------------------


@extend_schema(responses={200: CallSerializer(many=True), **READ_ERRORS})
@api_view(["GET"])
def calls(request: Request) -> Response:
    """The company's live calls, oldest first."""
    live = _snapshot(_console_actor(request))["calls"].values()
    return Response(sorted(live, key=lambda call: call["started_at"]))


@extend_schema(request=None, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def answer(request: Request, call_id: str) -> Response:
    """Answer a call: the operator's phone rings, then joins it."""
    return _command(request, {"action": Action.ANSWER.value, "call_id": call_id})


@extend_schema(request=None, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def reject(request: Request, call_id: str) -> Response:
    """Refuse a call waiting in the operator queue."""
    return _command(request, {"action": Action.REJECT.value, "call_id": call_id})


@extend_schema(request=None, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def hold(request: Request, call_id: str) -> Response:
    """Put the operator's call on hold: the other side hears music."""
    return _command(request, {"action": Action.HOLD.value, "call_id": call_id})


@extend_schema(request=None, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def resume(request: Request, call_id: str) -> Response:
    """Take the operator's call off hold."""
    return _command(request, {"action": Action.RESUME.value, "call_id": call_id})


@extend_schema(request=None, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def hangup(request: Request, call_id: str) -> Response:
    """Hang up a call."""
    return _command(request, {"action": Action.HANGUP.value, "call_id": call_id})


@extend_schema(request=ParkRequestSerializer, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def park(request: Request, call_id: str) -> Response:
    """Park a call in `slot`, or in the first free slot; the answer says which."""
    body = _body(request)
    return _command(
        request, {"action": Action.PARK.value, "call_id": call_id, "slot": body.get("slot")}
    )


@extend_schema(request=TransferRequestSerializer, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def transfer(request: Request, call_id: str) -> Response:
    """Transfer a call: blind to `number`, or attended to the answered `consult_call_id`."""
    body = _body(request)
    if _given(body, "number") == _given(body, "consult_call_id"):
        raise control.Refused(
            "bad_request", "a transfer needs either number (blind) or consult_call_id (attended)"
        )
    if _given(body, "number"):
        command = {"action": Action.TRANSFER.value, "number": body["number"]}
    else:
        command = {
            "action": Action.ATTENDED_TRANSFER.value,
            "consult_call_id": body["consult_call_id"],
        }
    return _command(request, {**command, "call_id": call_id})


# --- parking ---------------------------------------------------------------------------------


@extend_schema(responses={200: ParkingSlotSerializer(many=True), **READ_ERRORS})
@api_view(["GET"])
def parking(request: Request) -> Response:
    """The company's parking slots, 1 to 10, each with its parked call or null."""
    parked = {
        call["park_slot"]: call
        for call in _snapshot(_console_actor(request))["calls"].values()
        if call["state"] == CallState.PARKED.value and call["park_slot"] is not None
    }
    return Response([{"slot": slot, "call": parked.get(slot)} for slot in range(1, PARK_SLOTS + 1)])


@extend_schema(request=None, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def retrieve(request: Request, slot: int) -> Response:
    """Take back the call parked in `slot`: the operator's phone rings, then joins it."""
    return _command(request, {"action": Action.RETRIEVE.value, "slot": slot})


# --- dialling and extensions -----------------------------------------------------------------


@extend_schema(request=DialRequestSerializer, responses={200: AckSerializer, **COMMAND_ERRORS})
@api_view(["POST"])
def dial(request: Request) -> Response:
    """Click-to-dial: the operator's phone rings, then calls `number`."""
    return _command(request, {"action": Action.DIAL.value, "number": _body(request).get("number")})


@extend_schema(responses={200: ExtensionSerializer(many=True), **READ_ERRORS})
@api_view(["GET"])
def extensions(request: Request) -> Response:
    """The company's extensions by number, with what their phones are doing now."""
    actor = _console_actor(request)
    snapshot = _snapshot(actor)
    registered = set(snapshot["registered"])
    return Response(
        [
            {
                "number": extension.number,
                "name": extension.display_name,
                "do_not_disturb": extension.do_not_disturb,
                "state": snapshot["extensions"].get(extension.number, ExtensionState.IDLE.value),
                "registered": extension.number in registered,
            }
            for extension in Extension.objects.filter(company_id=actor.company_id).order_by(
                "number"
            )
        ]
    )
