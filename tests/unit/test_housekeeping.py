"""What `celery beat` sends every night: expired login sessions go, live ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from operator_panel.celery import app
from pbx import tasks


def _session(expires_in: timedelta) -> str:
    store = SessionStore()
    store["user"] = "someone"
    store.create()
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() + expires_in
    )
    return store.session_key


@pytest.mark.django_db
def test_expired_sessions_are_deleted_and_live_ones_kept() -> None:
    live = _session(timedelta(days=3))
    gone = [_session(-timedelta(minutes=1)), _session(-timedelta(days=30))]

    assert tasks.clear_expired_sessions() == 2

    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
    assert not Session.objects.filter(session_key__in=gone).exists()


def test_beat_sends_it_every_night_to_the_jobs_worker() -> None:
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "pbx.clear_expired_sessions"
    ]
    assert entry["schedule"].hour == {3}
    route = app.amqp.router.route({}, "pbx.clear_expired_sessions")
    assert route["queue"].name == "celery"


def test_a_long_redis_outage_never_makes_a_worker_give_its_broker_up() -> None:
    assert app.conf.broker_connection_max_retries is None
