"""The voicemail store over the database (pbx/voicemail_store.py): mailboxes as the engine
sees them, messages kept file first and row second (once, even when saved again after a
crash), PINs with the lock-out, listening, counts, and the e-mail of a new message.

The store runs its work on worker threads: these tests use a transactional database so that
the threads see the rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core import mail
from django.test import override_settings

from pbx.actions import add_extension
from pbx.engine.services import LeftMessage, PinCheck
from pbx.media.tone import sine
from pbx.media.wav import write_pcm8k
from pbx.models import Company, Extension, Mailbox, VoiceMessage
from pbx.voicemail_store import OrmVoicemailStore, email_message, keep_message
from tests.integration.peers.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVED = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    voicemail = tmp_path / "voicemail"
    (voicemail / "pending" / "node1").mkdir(parents=True)
    with override_settings(CENTRALINO_VOICEMAIL_DIR=voicemail):
        yield voicemail


@pytest.fixture
def store(folder: Path) -> OrmVoicemailStore:
    return OrmVoicemailStore(folder)


@pytest.fixture
def mario(company: Company) -> Mailbox:
    """Extension 201, Mario Rossi, with an e-mail address; his mailbox has PIN 1234."""
    extension = add_extension(company, "201", "Mario Rossi", email="mario@example.com").extension
    box = Mailbox.objects.select_related("extension").get(extension=extension)
    box.set_pin("1234")
    box.save()
    return box


def recorded(
    folder: Path, company_id: int, name: str = "a" * 32, *, number: str = "201", **fields: object
) -> LeftMessage:
    """A message the engine recorded for `number`: its WAV in the pending folder."""
    pending = folder / "pending" / "node1" / f"{name}.wav"
    write_pcm8k(pending, sine(440, 2.0))
    values: dict[str, object] = dict(
        caller="0612345678",
        caller_name="Rossi",
        call_id="c1",
        received_at=RECEIVED,
        duration=2.0,
    )
    values.update(fields)
    return LeftMessage(
        company_id=company_id,
        number=number,
        file_name=f"{name}.wav",
        pending=str(pending),
        **values,  # type: ignore[arg-type]
    )


async def test_a_new_extensions_mailbox_is_on_without_a_pin(
    company: Company, store: OrmVoicemailStore
) -> None:
    extension = await _add(company, "202")
    box = await store.mailbox(company.id, "202")
    assert box is not None
    assert (box.number, box.enabled, box.has_pin, box.greeting) == ("202", True, False, "")
    assert box.time_zone == "Europe/Rome"
    assert await store.mailbox(company.id, "299") is None
    await _set(extension.number, greeting_file="g.wav", enabled=False)
    box = await store.mailbox(company.id, "202")
    assert box is not None and not box.enabled and box.greeting == str(store.folder / "g.wav")


async def test_a_message_is_moved_into_the_folder_then_its_row_written(
    mario: Mailbox, store: OrmVoicemailStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emailed: list[int] = []
    monkeypatch.setattr("pbx.voicemail_store._email_later", emailed.append)
    await _set("201", email_messages=True)
    message = recorded(folder, mario.extension.company_id)
    assert await store.saved(message)
    row = await VoiceMessage.objects.aget()
    assert (row.caller, row.caller_name, row.duration, row.call_id) == (
        "0612345678",
        "Rossi",
        2.0,
        "c1",
    )
    assert row.received_at == RECEIVED and row.file_name == message.file_name and not row.heard
    assert (folder / message.file_name).exists() and not Path(message.pending).exists()
    assert emailed == [row.pk]

    assert await store.saved(message)  # again, as after a crash: still one message
    assert await VoiceMessage.objects.acount() == 1


async def test_a_message_moved_just_before_a_crash_gets_its_row(
    mario: Mailbox, store: OrmVoicemailStore, folder: Path
) -> None:
    message = recorded(folder, mario.extension.company_id)
    Path(message.pending).rename(folder / message.file_name)
    assert await store.saved(message)
    assert await VoiceMessage.objects.acount() == 1


async def test_a_message_for_a_mailbox_gone_is_dropped_with_its_file(
    company: Company, store: OrmVoicemailStore, folder: Path
) -> None:
    await _add(company, "202")
    message = recorded(folder, company.id, number="202")
    await Mailbox.objects.filter(extension__number="202").adelete()
    assert not await store.saved(message)
    assert not Path(message.pending).exists()


async def test_a_database_failure_puts_the_file_back_where_a_restart_finds_it(
    mario: Mailbox, store: OrmVoicemailStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database down")

    monkeypatch.setattr(VoiceMessage.objects, "create", broken)
    message = recorded(folder, mario.extension.company_id)
    with pytest.raises(RuntimeError):
        await store.saved(message)
    assert Path(message.pending).exists() and not (folder / message.file_name).exists()


async def test_pins_are_checked_and_repeated_wrong_ones_lock_the_mailbox(
    company: Company, mario: Mailbox, store: OrmVoicemailStore
) -> None:
    await _add(company, "202")
    assert await store.check_pin(company.id, "202", "") is PinCheck.NO_PIN
    assert await store.check_pin(company.id, "201", "1234") is PinCheck.ACCEPTED
    for _ in range(4):
        assert await store.check_pin(company.id, "201", "0000") is PinCheck.WRONG
    assert await store.check_pin(company.id, "201", "0000") is PinCheck.LOCKED  # the fifth
    assert await store.check_pin(company.id, "201", "1234") is PinCheck.LOCKED


async def test_listening_marks_heard_deletes_and_counts(
    mario: Mailbox, store: OrmVoicemailStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pbx.voicemail_store._email_later", lambda message_id: None)
    company_id = mario.extension.company_id
    for name, hour in (("a" * 32, 8), ("b" * 32, 9), ("c" * 32, 10)):
        await store.saved(
            recorded(folder, company_id, name, received_at=RECEIVED.replace(hour=hour))
        )
    assert await store.counts(company_id, "201") == (3, 0)
    first, second, third = await store.messages(company_id, "201")  # newest first
    assert [m.received_at.hour for m in (first, second, third)] == [10, 9, 8]
    assert first.path == str(folder / ("c" * 32 + ".wav"))

    await store.mark_heard(company_id, "201", first.id)
    assert await store.counts(company_id, "201") == (2, 1)
    assert [m.id for m in await store.messages(company_id, "201")] == [
        second.id,
        third.id,
        first.id,
    ]

    await store.delete(company_id, "201", second.id)
    assert await store.counts(company_id, "201") == (1, 1)
    assert not Path(second.path).exists()
    await store.delete(company_id, "999", third.id)  # another mailbox's number: nothing
    assert await store.counts(company_id, "201") == (1, 1)


def test_a_new_message_is_emailed_with_its_recording(
    mario: Mailbox, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pbx.voicemail_store._email_later", lambda message_id: None)
    mario.email_messages = True
    mario.save()
    row = keep_message(recorded(folder, mario.extension.company_id), folder)
    assert row is not None

    assert email_message(row.pk)
    [sent] = mail.outbox
    assert sent.to == ["mario@example.com"]
    assert sent.subject == "Nuovo messaggio vocale da Rossi (0612345678) per il 201"
    assert "02/03/2026 09:15" in sent.body
    [(name, content, kind)] = sent.attachments
    assert (name, kind) == ("messaggio-20260302-0915.wav", "audio/wav")
    assert content == (folder / row.file_name).read_bytes()


def test_no_email_when_the_mailbox_does_not_ask_for_it(mario: Mailbox, folder: Path) -> None:
    row = keep_message(recorded(folder, mario.extension.company_id), folder)
    assert row is not None
    assert not email_message(row.pk)
    assert not email_message(row.pk + 1)  # gone
    assert mail.outbox == []


def test_in_the_embedded_mode_the_email_is_sent_on_a_thread_of_its_own(
    mario: Mailbox, folder: Path
) -> None:
    mario.email_messages = True
    mario.save()
    row = keep_message(recorded(folder, mario.extension.company_id), folder)
    assert row is not None
    wait_for(lambda: not _sending(), 10, what="the e-mail's thread to end")
    assert [m.to for m in mail.outbox] == [["mario@example.com"]]


def test_the_email_task_runs_on_the_default_queue_not_a_telephony_one() -> None:
    from operator_panel.celery import app
    from pbx.tasks import email_voicemail

    route = app.amqp.router.route({}, email_voicemail.name, args=(1,), kwargs={})
    assert route["queue"].name == "celery"


def _sending() -> bool:
    return any(t.name == "voicemail-email" for t in threading.enumerate())


async def _add(company: Company, number: str) -> Extension:
    return (await sync_to_async(add_extension)(company, number, f"Ext {number}")).extension


async def _set(number: str, **fields: object) -> None:
    await Mailbox.objects.filter(extension__number=number).aupdate(**fields)


def test_email_prints_on_the_console_unless_a_mail_server_is_named() -> None:
    probe = (
        "import json; from operator_panel import settings as s; "
        "print(json.dumps([s.EMAIL_BACKEND, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.DEFAULT_FROM_EMAIL]))"
    )

    def settings_with(**env: str) -> list[object]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "DEFAULT_"))}
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=Path(__file__).resolve().parents[2],
            env={**clean, **env},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(done.stdout)

    assert settings_with() == [
        "django.core.mail.backends.console.EmailBackend",
        25,
        False,
        "centralino@localhost",
    ]
    assert settings_with(
        EMAIL_HOST="smtp.example.com",
        EMAIL_PORT="587",
        EMAIL_USE_TLS="true",
        DEFAULT_FROM_EMAIL="pbx@example.com",
    ) == ["django.core.mail.backends.smtp.EmailBackend", 587, True, "pbx@example.com"]
