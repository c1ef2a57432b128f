"""The console's voicemail panel (SPEC B, "Segreteria/Chiamate Perse") and its indicator in the
status bar (B9): the operator's own messages, today's missed calls of the queue and of her
extension, each with what the console needs to play, mark heard and call back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone, translation

from pbx.models import Company, Extension, Membership, Trunk
from stats.models import CallRecord, Disposition
from tests.unit import call_history
from tests.unit.call_history import leave_message

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "accept-language": "en"}
# 08:00 in Rome on 11 January; Rome's midnight was 23:00 UTC on the 10th.
NOW = datetime(2026, 1, 11, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def voicemail_dir(tmp_path: Path, settings: Any) -> Path:
    folder = tmp_path / "voicemail"
    folder.mkdir()
    settings.CENTRALINO_VOICEMAIL_DIR = folder
    return folder


@pytest.fixture(autouse=True)
def language_restored() -> Iterator[None]:
    """The English these tests ask for ends with them: the active language is per thread."""
    yield
    translation.deactivate()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The console's "today" is the one of NOW."""
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    return NOW


@pytest.fixture
def desk(alice: User, company: Company) -> Extension:
    """Alice the operator at 200; the operator queue answers on 9."""
    company.operator_number = "9"
    company.save()
    operator = Extension.objects.create(company=company, number="200", display_name="Centralino")
    Membership.objects.filter(user=alice).update(extension=operator)
    return operator


@pytest.fixture
def bob_at_201(bob: User, company: Company) -> Extension:
    extension = Extension.objects.create(company=company, number="201", display_name="Bob Rossi")
    Membership.objects.filter(user=bob).update(extension=extension)
    return extension


@pytest.fixture
def lamps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """The mailboxes whose message lamps the engines were told about (pbx.mwi.mailbox_changed)."""
    told: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "selfcare.actions.mailbox_changed",
        lambda company_id, number: told.append((company_id, number)),
    )
    return told


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def panel(user: User) -> str:
    response = logged_in(user).get("/console/voicemail/", headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


# The queue's calls that nobody answered, unless a test says otherwise.
call = partial(call_history.call, disposition=Disposition.NO_ANSWER)


# --- the messages -----------------------------------------------------------------------------


def test_the_operators_messages_are_listed_new_first_with_a_player_and_a_button(
    alice: User, desk: Extension, voicemail_dir: Path
) -> None:
    now = timezone.now()
    heard = leave_message(desk, voicemail_dir, "0611111111", heard=True, at=now, duration=75)
    new = leave_message(
        desk,
        voicemail_dir,
        "0622222222",
        name="Studio Bianchi",
        at=now - timedelta(hours=2),
        duration=75,
    )

    html = panel(alice)

    assert html.index("Studio Bianchi") < html.index("0611111111")
    assert f'src="/me/voicemail/{new.pk}/audio/"' in html
    assert f'src="/me/voicemail/{heard.pk}/audio/"' in html
    assert 'aria-label="Message from Studio Bianchi, ' in html
    assert "75 s" in html  # its duration
    assert f'hx-post="/console/voicemail/{new.pk}/heard/"' in html
    assert 'aria-label="Mark the message from Studio Bianchi, ' in html


def test_the_operator_plays_her_message_through_her_own_portal(
    alice: User, desk: Extension, voicemail_dir: Path
) -> None:
    message = leave_message(desk, voicemail_dir, "0611111111")

    played = logged_in(alice).get(f"/me/voicemail/{message.pk}/audio/")

    assert played.status_code == 200 and played["Content-Type"] == "audio/wav"


def test_another_users_messages_are_never_shown(
    alice: User, company: Company, desk: Extension, bob_at_201: Extension, voicemail_dir: Path
) -> None:
    leave_message(desk, voicemail_dir, "0611111111")
    leave_message(bob_at_201, voicemail_dir, "0699999999")
    other = Company.objects.create(name="Other S.r.l.")
    elsewhere = Extension.objects.create(company=other, number="200", display_name="Elsewhere")
    leave_message(elsewhere, voicemail_dir, "0688888888")

    html = panel(alice)

    assert "0611111111" in html
    assert "0699999999" not in html and "0688888888" not in html
    assert 'aria-label="1 new voice message"' in html


def test_the_indicator_counts_the_new_messages(
    alice: User, desk: Extension, voicemail_dir: Path
) -> None:
    assert 'aria-label="No new voice messages"' in panel(alice)
    for caller in ("0611111111", "0622222222", "0633333333"):
        leave_message(desk, voicemail_dir, caller)
    leave_message(desk, voicemail_dir, "0644444444", heard=True)

    html = panel(alice)

    assert 'id="status-voicemail" hx-swap-oob="true"' in html
    assert 'aria-label="3 new voice messages"' in html


def test_the_board_loads_the_panel_and_has_a_place_for_the_indicator(
    alice: User, desk: Extension
) -> None:
    html = logged_in(alice).get("/console/", headers={"accept-language": "en"}).content.decode()

    assert 'hx-get="/console/voicemail/"' in html
    assert 'id="status-voicemail"' in html
    assert "Voicemail / Missed calls" in html


# --- mark heard -------------------------------------------------------------------------------


def test_marking_heard_saves_it_tells_the_lamps_and_returns_the_panel(
    alice: User,
    desk: Extension,
    voicemail_dir: Path,
    lamps: list[tuple[int, str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    message = leave_message(desk, voicemail_dir, "0611111111")
    client = logged_in(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/console/voicemail/{message.pk}/heard/", {"heard": "1"}, headers=HTMX
        )

    message.refresh_from_db()
    assert response.status_code == 200
    assert message.heard
    html = response.content.decode()
    assert "Mark as new" in html and 'aria-label="No new voice messages"' in html
    assert lamps == [(desk.company_id, "200")]

    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(f"/console/voicemail/{message.pk}/heard/", {"heard": "0"})
    message.refresh_from_db()
    assert again.status_code == 302 and again["Location"] == "/console/"  # without htmx
    assert not message.heard
    assert lamps == [(desk.company_id, "200")] * 2


def test_another_users_message_cannot_be_marked(
    alice: User,
    desk: Extension,
    bob_at_201: Extension,
    voicemail_dir: Path,
    lamps: list[tuple[int, str]],
) -> None:
    bobs = leave_message(bob_at_201, voicemail_dir, "0699999999")

    response = logged_in(alice).post(f"/console/voicemail/{bobs.pk}/heard/", {"heard": "1"})

    bobs.refresh_from_db()
    assert response.status_code == 404
    assert not bobs.heard and lamps == []


def test_marking_heard_needs_a_post(alice: User, desk: Extension, voicemail_dir: Path) -> None:
    message = leave_message(desk, voicemail_dir, "0611111111")

    assert logged_in(alice).get(f"/console/voicemail/{message.pk}/heard/").status_code == 405


# --- who may see it ---------------------------------------------------------------------------


def test_an_end_user_is_refused(
    bob: User, bob_at_201: Extension, desk: Extension, voicemail_dir: Path
) -> None:
    message = leave_message(bob_at_201, voicemail_dir, "0611111111")
    client = logged_in(bob)

    assert client.get("/console/voicemail/").status_code == 403
    assert client.post(f"/console/voicemail/{message.pk}/heard/", {"heard": "1"}).status_code == 403
    message.refresh_from_db()
    assert not message.heard


def test_without_a_login_the_panel_sends_to_the_login_page(desk: Extension) -> None:
    response = Client().get("/console/voicemail/")

    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_operator_without_an_extension_sees_the_queues_missed_calls_but_no_mailbox(
    alice: User, company: Company, desk: Extension, clock: datetime
) -> None:
    Membership.objects.filter(user=alice).update(extension=None)
    call(company, "201", "9", clock - timedelta(hours=1))

    html = panel(alice)

    assert "You have no extension of your own, so no mailbox." in html
    assert '<span id="status-voicemail" hx-swap-oob="true" hidden></span>' in html
    assert "→ 9" in html
    assert "data-call-back" not in html  # she has no phone to call back from


# --- missed calls -----------------------------------------------------------------------------


def test_missed_calls_are_those_of_the_queue_and_of_her_extension_that_no_person_answered(
    alice: User,
    company: Company,
    desk: Extension,
    bob_at_201: Extension,
    voicemail_dir: Path,
    clock: datetime,
) -> None:
    at = clock - timedelta(hours=2)
    call(company, "0611000001", "9", at, disposition=Disposition.CANCELLED)
    call(company, "0611000002", "200", at, disposition=Disposition.BUSY)
    call(company, "0611000003", "200", at, answered_by="voicemail", call_id="vm1")
    leave_message(desk, voicemail_dir, "0611000003", call_id="vm1")
    call(company, "0611000004", "200", at, answered_by="voicemail")  # hung up at the greeting
    call(company, "0622000001", "9", at, answered_by="200")  # answered by the operator
    call(company, "0622000002", "201", at)  # bob's
    call(company, "0622000003", "9", at, disposition=Disposition.IN_PROGRESS)
    call(company, "200", "0622000004", at)  # her own call out, not answered
    other = Company.objects.create(name="Other S.r.l.", operator_number="9")
    call(other, "0622000005", "9", at)

    html = panel(alice).split('id="vm-missed-title"')[1]

    for missed in ("0611000001", "0611000002", "0611000003", "0611000004"):
        assert missed in html
    assert "0622" not in html
    assert "Voice message" in html and "Busy" in html and "Cancelled" in html


def test_missed_calls_are_todays_in_the_companys_time_zone(
    alice: User, company: Company, desk: Extension, clock: datetime
) -> None:
    # 00:30 on 11 January in Rome, though still the 10th in UTC; and 23:30 on the 10th in Rome.
    call(company, "0611111111", "9", datetime(2026, 1, 10, 23, 30, tzinfo=UTC))
    call(company, "0622222222", "9", datetime(2026, 1, 10, 22, 30, tzinfo=UTC))

    html = panel(alice)

    assert "0611111111" in html and "0622222222" not in html
    assert ">00:30</time>" in html  # shown in Rome's time


def test_missed_calls_are_newest_first_with_a_number_to_call_back(
    alice: User, company: Company, desk: Extension, clock: datetime
) -> None:
    Trunk.objects.create(company=company, name="Carrier", host="192.0.2.9", outbound_prefix="0")
    at = clock - timedelta(hours=3)
    call(company, "201", "9", at)
    outside = call(company, "0612345678", "9", at + timedelta(hours=1), direction="inbound")
    CallRecord.objects.filter(pk=outside.pk).update(caller_name="Studio Bianchi")
    call(company, "anonymous", "9", at + timedelta(hours=2), direction="inbound")
    call(company, "+41441234567", "9", at + timedelta(hours=2), direction="inbound")

    html = panel(alice)

    assert (
        html.index("anonymous")
        < html.index('data-call-back="00612345678"')  # out through the trunk's prefix
        < html.index('data-call-back="201"')
    )
    assert 'aria-label="Call back Studio Bianchi on 0612345678"' in html
    assert 'aria-label="Call back 201"' in html
    # Nobody to call back for an anonymous caller; the trunk's prefix takes no "+".
    assert html.count("data-call-back") == 2


def test_an_outside_caller_is_not_offered_a_call_back_without_a_trunk(
    alice: User, company: Company, desk: Extension, clock: datetime
) -> None:
    call(company, "0612345678", "9", clock - timedelta(hours=1), direction="inbound")

    html = panel(alice)

    assert "0612345678" in html and "data-call-back" not in html


def test_the_status_bars_missed_counter_counts_the_calls_the_panel_lists(
    alice: User, company: Company, desk: Extension, bob_at_201: Extension, clock: datetime
) -> None:
    at = clock - timedelta(hours=1)
    call(company, "0611000001", "9", at, disposition=Disposition.CANCELLED)
    call(company, "0611000002", "200", at, disposition=Disposition.BUSY)
    call(company, "0611000003", "200", at, answered_by="voicemail")
    call(company, "0622000001", "9", at, answered_by="200", disposition=Disposition.ANSWERED)
    call(company, "0622000002", "201", at)  # bob's

    counters = logged_in(alice).get("/console/counters/").content.decode()
    numbers = [part.split("</strong>")[0] for part in counters.split("<strong>")[1:]]
    listed = panel(alice).count('class="missed-call"')

    assert numbers[:2] == ["3", "4"]  # missed, incoming: the queue's and her extension's
    assert listed == 3
