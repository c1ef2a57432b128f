"""/me/calls/: the user's call log (F1), in the company's time zone, searched and paginated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from pbx.models import (
    Company,
    Did,
    DidTarget,
    Extension,
    Trunk,
)
from stats.models import CallRecord, Disposition
from tests.unit.me.helpers import call, leave_message, page

pytestmark = pytest.mark.django_db

# --- call log ---------------------------------------------------------------------------------

ROME = datetime(2026, 1, 10, 23, 30, tzinfo=UTC) - timedelta(hours=1)  # 23:30 in Rome (CET)


def test_the_call_log_lists_the_users_calls_only_newest_first(
    me: Client, company: Company, bob_at_201: Extension, dave_at_202: Extension
) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    at = timezone.now() - timedelta(hours=3)
    call(company, "201", "0611111111", at, answered_by="0611111111")  # Bob calls out
    call(company, "0622222222", "201", at + timedelta(minutes=1), answered_by="201")
    call(company, "202", "0633333333", at + timedelta(minutes=2), answered_by="x")  # Dave's
    call(other, "201", "0644444444", at + timedelta(minutes=3), answered_by="x")  # another 201
    call(company, "0655555555", "600", at + timedelta(minutes=4), answered_by="201")  # hunt group

    html = page(me, "/me/calls/")

    assert "0633333333" not in html
    assert "0644444444" not in html
    assert html.index("0655555555") < html.index("0622222222") < html.index("0611111111")
    assert "to 600" in html


def test_a_call_to_a_company_number_routed_to_the_user_is_listed(
    me: Client, company: Company, bob_at_201: Extension
) -> None:
    trunk = Trunk.objects.create(company=company, name="Carrier", host="192.0.2.9")
    Did.objects.create(
        trunk=trunk, number="0298765432", target_kind=DidTarget.EXTENSION, extension=bob_at_201
    )
    call(company, "0612345678", "0298765432", timezone.now(), disposition=Disposition.NO_ANSWER)

    html = page(me, "/me/calls/")

    assert "0612345678" in html
    assert "to 0298765432" in html


def test_missed_calls_are_marked_and_can_be_listed_alone(
    me: Client, company: Company, bob_at_201: Extension, voicemail_dir: Path
) -> None:
    at = timezone.now() - timedelta(hours=1)
    call(company, "0611111111", "201", at, disposition=Disposition.CANCELLED)
    call(company, "0622222222", "201", at + timedelta(minutes=1), answered_by="201")
    call(
        company,
        "0633333333",
        "201",
        at + timedelta(minutes=2),
        answered_by="voicemail",
        call_id="vm1",
    )
    leave_message(bob_at_201, voicemail_dir, "0633333333", call_id="vm1")
    call(company, "201", "0644444444", at + timedelta(minutes=3), disposition=Disposition.NO_ANSWER)
    # The voicemail answered, the caller hung up during the greeting.
    call(company, "0655555555", "201", at + timedelta(minutes=4), answered_by="voicemail")

    html = page(me, "/me/calls/")
    missed = page(me, "/me/calls/", missed="on")

    assert html.count('<tr role="row" class="missed">') == 3
    assert "Voice message" in html
    assert "0611111111" in missed and "0633333333" in missed and "0655555555" in missed
    assert "0622222222" not in missed and "0644444444" not in missed
    assert "1 new message" in page(me, "/me/")
    assert "Missed calls today" in page(me, "/me/")


def test_the_date_range_is_in_the_companys_time_zone_across_midnight(
    me: Client, company: Company, bob_at_201: Extension
) -> None:
    before_midnight = ROME  # 10 January 23:30 in Rome, 22:30 UTC
    after_midnight = ROME + timedelta(hours=1)  # 11 January 00:30 in Rome, still 10 January in UTC
    call(company, "0611111111", "201", before_midnight, answered_by="201")
    call(company, "0622222222", "201", after_midnight, answered_by="201")

    eleventh = page(me, "/me/calls/", since="2026-01-11", until="2026-01-11")
    tenth = page(me, "/me/calls/", until="2026-01-10")
    both = page(me, "/me/calls/", since="2026-01-10", until="2026-01-11")

    assert "0622222222" in eleventh and "0611111111" not in eleventh
    assert "0611111111" in tenth and "0622222222" not in tenth
    assert "0611111111" in both and "0622222222" in both
    assert "00:30" in eleventh  # shown in Rome's time too


def test_the_call_log_is_searched_by_the_other_partys_number_or_name(
    me: Client, company: Company, bob_at_201: Extension
) -> None:
    at = timezone.now() - timedelta(hours=1)
    call(company, "201", "0611111111", at, answered_by="0611111111")
    call(company, "0622222222", "201", at + timedelta(minutes=1), answered_by="201")
    CallRecord.objects.filter(caller="0622222222").update(caller_name="Studio Bianchi")

    by_number = page(me, "/me/calls/", number="061 111")
    by_name = page(me, "/me/calls/", number="bianchi")
    by_own_number = page(me, "/me/calls/", number="201")

    assert "0611111111" in by_number and "0622222222" not in by_number
    assert "0622222222" in by_name and "0611111111" not in by_name
    assert "No call matches the search." in by_own_number


def test_a_reversed_date_range_is_reported(me: Client) -> None:
    html = page(me, "/me/calls/", since="2026-01-11", until="2026-01-10")

    assert "The first day comes after the last one." in html


def test_the_call_log_is_paginated(me: Client, company: Company, bob_at_201: Extension) -> None:
    start = timezone.now() - timedelta(days=1)
    for i in range(30):
        call(company, f"06000000{i:02d}", "201", start + timedelta(minutes=i), answered_by="201")

    first = page(me, "/me/calls/")
    second = page(me, "/me/calls/", page=2)

    assert "0600000029" in first and "0600000004" not in first
    assert "0600000004" in second and "Page 2 of 2" in second
