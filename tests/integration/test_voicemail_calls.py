"""Voicemail with real phones (SPEC A4): baresip leaves a message with a tone and the WAV on
disk has the tone, with its row and its e-mail; the owner listens by phone with the PIN (the
tone measured at the phone) and deletes it; and `manage.py serve` killed mid-recording keeps
what was said: after a restart the message exists and plays.

The engines run on the test's database (pbx/runtime.build_engine: the ORM store, espeak-ng for
the prompts); mailboxes have a short greeting of their own so that the calls are quick.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pbx.media.tone import sine
from pbx.media.wav import parse_wav, write_pcm8k
from tests.integration.engine_fixture import RunningEngine, start_engine
from tests.integration.peers.audio import assert_tone, trim_silence
from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.ports import free_port_range, free_udp_port
from tests.integration.peers.waiting import wait_for
from tests.integration.processes import (
    HOST,
    ROOT,
    SERVE,
    Child,
    base_env,
    manage,
    sip_options,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]

CALLER_HZ = 440  # what the caller says
GREETING_HZ = 700  # the owner's greeting
MESSAGE_HZ = 1000  # a message already in the mailbox
PIN = "2468"
RECORDED = 2.0  # seconds of message the tests wait for
WAV_HEADER = 44


def pending_seconds(folder: Path) -> float:
    """How much the recording in progress holds, as far as its header says."""
    wavs = list(folder.glob("pending/*/*.wav"))
    if not wavs:
        return 0.0
    return max(0, wavs[0].stat().st_size - WAV_HEADER) / 16000


def assert_has_tone(path: Path, hz: float) -> None:
    samples = parse_wav(path.read_bytes()).samples
    assert_tone(trim_silence(samples)[800:-800], hz)  # the edges may hold a key's noise


# --- an engine on the test's database --------------------------------------------------------


@dataclass
class Office:
    engine: RunningEngine
    folder: Path
    secrets: dict[str, str]


@pytest.fixture
def office(settings: object, tmp_path: Path, db: None) -> Iterator[Office]:
    """Extensions 201 and 202; 202's mailbox has a PIN, a one-second greeting of its own, and
    sends each message to its owner's e-mail."""
    from pbx.actions import add_extension, default_company
    from pbx.models import Extension, Mailbox
    from pbx.runtime import build_engine

    folder = tmp_path / "voicemail"
    folder.mkdir()
    settings.CENTRALINO_VOICEMAIL_DIR = folder  # type: ignore[attr-defined]
    write_pcm8k(folder / "greeting.wav", sine(GREETING_HZ, 1.0))
    company = default_company()
    secrets = {n: add_extension(company, n, f"Ext {n}").secret for n in ("201", "202")}
    Extension.objects.filter(number="202").update(email="giulia@example.com")
    box = Mailbox.objects.get(extension__number="202")
    box.set_pin(PIN)
    box.greeting_file = "greeting.wav"
    box.email_messages = True
    box.save()
    rtp = free_port_range(200)
    engine = start_engine(
        lambda: build_engine(
            sip_port=free_port_range(1), rtp_ports=(rtp, rtp + 199), node="voicemail-test"
        )
    )
    try:
        yield Office(engine, folder, secrets)
    finally:
        engine.stop()


@pytest.mark.django_db(transaction=True)
def test_a_caller_leaves_a_message_with_a_tone_kept_on_disk_and_emailed(office: Office) -> None:
    from django.core import mail

    from pbx.models import VoiceMessage

    engine = office.engine
    with Baresip(
        "201", password=office.secrets["201"], registrar=engine.address, tone_hz=CALLER_HZ
    ) as caller:
        caller.wait_registered()
        caller.dial(f"sip:202@{engine.address}")  # 202 has no phone: its mailbox answers
        caller.wait_established()
        caller.wait_hearing(GREETING_HZ, seconds=0.4)
        wait_for(
            lambda: pending_seconds(office.folder) >= RECORDED,
            10,
            what=f"{RECORDED} s recorded",
            seen=lambda: pending_seconds(office.folder),
        )
        caller.send_dtmf("#")
        caller.wait_closed(timeout=15)  # thanked, then hung up by the PBX
    engine.wait_no_calls()

    message = wait_for(lambda: VoiceMessage.objects.first(), 5, what="the message's row")
    assert (message.mailbox.extension.number, message.caller) == ("202", "201")
    assert message.duration >= RECORDED and not message.heard
    assert_has_tone(message.path, CALLER_HZ)
    assert list(office.folder.glob("pending/*/*")) == []  # moved, its JSON gone

    [sent] = wait_for(lambda: mail.outbox, 10, what="the e-mail of the message")
    assert sent.to == ["giulia@example.com"]
    [(_, attached, kind)] = sent.attachments
    assert kind == "audio/wav" and attached == message.path.read_bytes()


@pytest.mark.django_db(transaction=True)
def test_the_owner_hears_the_message_by_phone_with_the_pin_and_deletes_it(
    office: Office,
) -> None:
    from pbx.models import Mailbox, VoiceMessage

    write_pcm8k(office.folder / "m1.wav", sine(MESSAGE_HZ, 4.0))
    message = VoiceMessage.objects.create(
        mailbox=Mailbox.objects.get(extension__number="202"),
        caller="0612345678",
        received_at=datetime.now(UTC),
        duration=4.0,
        file_name="m1.wav",
    )
    engine = office.engine
    with Baresip(
        "202", password=office.secrets["202"], registrar=engine.address, tone_hz=None
    ) as owner:
        owner.wait_registered()
        owner.dial(f"sip:*98@{engine.address}")
        owner.wait_established()
        owner.send_dtmf(f"{PIN}#0", gap=0.1)  # 0: no need to hear how many there are
        owner.wait_hearing(MESSAGE_HZ, seconds=1.0, timeout=20)  # when and who, then it
        wait_for(lambda: VoiceMessage.objects.get(pk=message.pk).heard, 5, what="the message heard")
        owner.send_dtmf("7")
        wait_for(
            lambda: not VoiceMessage.objects.filter(pk=message.pk).exists(),
            5,
            what="the message deleted",
        )
        assert not (office.folder / "m1.wav").exists()
        owner.hangup()
        owner.wait_closed()
    engine.wait_no_calls()


# --- a crash mid-recording ---------------------------------------------------------------------

PROVISION = """
from pbx.actions import add_extension, default_company
from pbx.models import Mailbox
company = default_company()
add_extension(company, "201", "Mario Rossi", secret="crash-secret-201")
add_extension(company, "202", "Giulia Bianchi", secret="crash-secret-202")
Mailbox.objects.filter(extension__number="202").update(greeting_file="greeting.wav")
"""
MESSAGES = """
import json
from pbx.models import VoiceMessage
print(json.dumps([
    {"number": m.mailbox.extension.number, "caller": m.caller, "duration": m.duration,
     "path": str(m.path)}
    for m in VoiceMessage.objects.all()
]))
"""


def shell(env: dict[str, str], script: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


def test_a_message_being_recorded_when_the_server_is_killed_exists_after_a_restart(
    tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    env = base_env(tmp_path)
    env["CENTRALINO_HTTP_PORT"] = str(free_udp_port())
    sip_port = int(env["CENTRALINO_SIP_PORT"])
    folder = tmp_path / "voicemail"
    folder.mkdir()
    write_pcm8k(folder / "greeting.wav", sine(GREETING_HZ, 1.0))
    manage(env, "migrate", "--noinput")
    shell(env, PROVISION)

    def serve(log: str) -> Child:
        child = spawn(SERVE, env, tmp_path / log)
        child.wait_until(lambda: sip_options(sip_port) is not None, "serve (SIP)")
        return child

    first = serve("first.log")
    registrar = f"{HOST}:{sip_port}"
    with ExitStack() as stack:
        caller = stack.enter_context(
            Baresip("201", password="crash-secret-201", registrar=registrar, tone_hz=CALLER_HZ)
        )
        caller.wait_registered()
        caller.dial(f"sip:202@{registrar}")
        caller.wait_established()
        wait_for(
            lambda: pending_seconds(folder) >= RECORDED,
            15,
            what=f"{RECORDED} s recorded",
            seen=lambda: pending_seconds(folder),
        )
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(5)
    assert list(folder.glob("pending/*/*.json")), "the JSON of the message was not written"

    second = serve("second.log")
    messages = wait_for(
        lambda: json.loads(shell(env, MESSAGES)),
        20,
        what="the message recovered",
        seen=second.output,
    )
    [message] = messages
    assert (message["number"], message["caller"]) == ("202", "201")
    assert message["duration"] >= RECORDED
    assert_has_tone(Path(message["path"]), CALLER_HZ)
    assert list(folder.glob("pending/*/*")) == []
    assert np.isclose(
        len(parse_wav(Path(message["path"]).read_bytes()).samples) / 8000,
        message["duration"],
        atol=0.01,
    )
    second.stop(signal.SIGINT, timeout=10)
