"""An extension's calls, from the call records (stats.CallRecord), as its user sees them.

A call is the extension's when it called (the caller is its number), was called (the dialled
number is its own or a company number routed to it) or answered (a phone of the extension, or
the extension's number, answered). Missed: called, over, and no person answered it: nobody
did, or only the voicemail (it answers as "voicemail"; a message it kept carries the call's id).
"""

from __future__ import annotations

from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet

from pbx.models import Did, DidTarget, Extension, Mailbox
from stats.models import CallRecord, Disposition

VOICEMAIL = "voicemail"  # `answered_by` of a call the voicemail answered (pbx/engine/voicemail.py)


def numbers_of(extension: Extension) -> set[str]:
    """What callers dial to reach the extension: its short number and its company numbers."""
    dids = Did.objects.filter(
        extension=extension, target_kind=DidTarget.EXTENSION, trunk__company=extension.company
    ).values_list("number", flat=True)
    return {extension.number, *dids}


def calls_of(extension: Extension, mailbox: Mailbox) -> QuerySet[CallRecord]:
    """The extension's calls, newest first, each annotated with `outgoing`, `voicemail`
    (a message was left in `mailbox`) and `missed`."""
    devices = set(extension.devices.values_list("username", flat=True))
    called = Q(callee__in=numbers_of(extension))
    mine = Q(caller=extension.number) | called | Q(answered_by__in=devices | {extension.number})
    message = mailbox.messages.filter(call_id=OuterRef("call_id"))
    outgoing = Q(caller=extension.number)
    over = ~Q(disposition=Disposition.IN_PROGRESS)
    return (
        CallRecord.objects.filter(mine, company_id=extension.company_id)
        .annotate(outgoing=_boolean(outgoing), voicemail=Exists(message))
        .annotate(
            missed=_boolean(
                ~outgoing
                & over
                & (Q(voicemail=True) | Q(answered_by=VOICEMAIL) | Q(answered_at__isnull=True))
            )
        )
        .order_by("-started_at", "-pk")
    )


def _boolean(condition: Q) -> ExpressionWrapper:
    return ExpressionWrapper(condition, output_field=BooleanField())
