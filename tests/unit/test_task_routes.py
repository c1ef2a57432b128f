"""Telephony tasks go to the queue of a telephony worker, the mail to Celery's default queue."""

from __future__ import annotations

from typing import Any

from celery import Task

from operator_panel.celery import app
from pbx import tasks, worker


def _queue(name: str, **options: Any) -> str:
    route = app.amqp.router.route(dict(options), name)
    return route["queue"].name


def test_every_engine_task_is_routed_to_this_nodes_queue(settings: Any) -> None:
    settings.CENTRALINO_NODE = "rome"
    engine_tasks = {
        task.name for task in vars(tasks).values() if isinstance(task, Task) and task.expires == 10
    }
    assert engine_tasks == worker.TELEPHONY_TASKS
    for name in engine_tasks:
        assert _queue(name) == "telephony.rome", name


def test_a_queue_named_by_the_caller_wins(settings: Any) -> None:
    settings.CENTRALINO_NODE = "rome"
    assert _queue("pbx.unblock_source", queue="telephony.milan") == "telephony.milan"


def test_the_voicemail_mail_is_not_sent_to_a_telephony_worker() -> None:
    assert not _queue(tasks.email_voicemail.name).startswith(worker.TELEPHONY_QUEUE_PREFIX)
