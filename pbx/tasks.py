"""Celery tasks of the telephony domain.

Call-control tasks run on the telephony worker of the node that owns the call (queue
``telephony.<node>``), against the engine attached to that process. They are short-lived and
never replayed: they expire after 10 s, are acknowledged on receipt and never retried, because
a stale command (a transfer for a call that has moved on) must be dropped, not executed late.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from pbx import worker

# Their queue, when a caller names none, is this node's: settings.CELERY_TASK_ROUTES routes every
# name in worker.TELEPHONY_TASKS (Celery 6 drops the task attribute `queue`).
CONTROL_OPTIONS: dict[str, Any] = {
    "expires": 10,
    "acks_late": False,
    "max_retries": 0,
}


@shared_task(name="pbx.console_snapshot", **CONTROL_OPTIONS)
def console_snapshot(company_id: int) -> dict[str, Any]:
    """What the consoles of `company_id` show now, from this node's engine (pbx/events.py)."""

    async def snapshot(engine: Any) -> dict[str, Any]:
        return engine.console.snapshot(company_id)

    return worker.call_engine(snapshot, timeout=5)


@shared_task(name="pbx.console_command", **CONTROL_OPTIONS)
def console_command(data: dict[str, Any]) -> dict[str, Any]:
    """Carry out a console's command (checked by pbx/control.py) on this node's engine; the
    acknowledgement, or {"error": code, "detail": why} (errors travel as values)."""
    from pbx.control import COMMAND_TIMEOUT, acknowledgement
    from pbx.engine.commands import Console
    from pbx.engine.operations import OperationError

    try:
        done = worker.execute(Console.from_dict(data), timeout=COMMAND_TIMEOUT)
    except OperationError as error:
        return {"error": error.code, "detail": str(error)}
    return acknowledgement(done)


@shared_task(name="pbx.engine_status", **CONTROL_OPTIONS)
def engine_status() -> dict[str, Any]:
    """The status of the engine of this node: node, SIP port, and what the engine reports."""
    return worker.call_engine(worker.describe, timeout=5)


@shared_task(name="pbx.blocked_sources", **CONTROL_OPTIONS)
def blocked_sources() -> dict[str, Any]:
    """The SIP sources this node's engine blocks now, and its rule (pbx/security.py)."""
    from pbx.security import listing

    return worker.call_engine(listing, timeout=5)


@shared_task(name="pbx.unblock_source", **CONTROL_OPTIONS)
def unblock_source(ip: str, by: str = "") -> bool:
    """Let `ip` (checked: an IP address, else ValueError) in again on this node's engine;
    False when it was not blocked. `by` names the administrator in the log line."""
    from pbx.security import checked_ip, unblocking

    async def unblock(engine: Any) -> bool:
        return await unblocking(engine, checked_ip(ip), str(by))

    return worker.call_engine(unblock, timeout=5)


@shared_task(name="pbx.mailbox_changed", ignore_result=True, **CONTROL_OPTIONS)
def mailbox_changed(company_id: int, number: str) -> None:
    """An extension's voicemail changed in the portal: this node's lamps follow (pbx/mwi.py)."""

    async def tell(engine: Any) -> None:
        engine.mailbox_changed(int(company_id), str(number))

    worker.call_engine(tell, timeout=5)


@shared_task(
    name="pbx.email_voicemail",
    ignore_result=True,
    autoretry_for=(OSError,),  # smtplib's errors are OSErrors: the server may come back
    retry_backoff=60,
    max_retries=5,
)
def email_voicemail(message_id: int) -> bool:
    """E-mail a new voice message, its recording attached, to its extension's address
    (pbx/voicemail_store.py). On the default queue, not a telephony one: a slow mail server
    never holds back call control."""
    from pbx.voicemail_store import email_message

    return email_message(int(message_id))


@shared_task(name="pbx.clear_expired_sessions", ignore_result=True)
def clear_expired_sessions() -> int:
    """Delete the login sessions that have expired (what `manage.py clearsessions` does), every
    night from `celery beat` (settings.CELERY_BEAT_SCHEDULE): the table would otherwise keep
    every login ever made. How many went."""
    import logging

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    logging.getLogger(__name__).info("%d expired login sessions deleted", deleted)
    return deleted
