"""The bodies that light lamps: RFC 3842 message summaries, RFC 4235 dialog-info documents and
RFC 3863 presence, written byte for byte, read back as the same value, and read from other
implementations."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pbx.sip.event_bodies import (
    ON_THE_PHONE,
    BodyError,
    DialogEntry,
    DialogInfo,
    MessageSummary,
    Participant,
    Presence,
)

# --- message summary (RFC 3842) ---------------------------------------------------------------


def test_a_mailbox_with_new_messages_says_messages_waiting_yes() -> None:
    summary = MessageSummary.of_counts(2, 1, "sip:201@192.0.2.1")

    assert bytes(summary) == (
        b"Messages-Waiting: yes\r\n"
        b"Message-Account: sip:201@192.0.2.1\r\n"
        b"Voice-Message: 2/1 (0/0)\r\n"
    )


def test_a_mailbox_with_only_heard_messages_says_no() -> None:
    summary = MessageSummary.of_counts(0, 4, "sip:201@192.0.2.1")

    assert summary.waiting is False
    assert b"Messages-Waiting: no\r\n" in bytes(summary)
    assert b"Voice-Message: 0/4 (0/0)\r\n" in bytes(summary)


@pytest.mark.parametrize(
    ("new", "old"), [(0, 0), (1, 0), (0, 7), (12, 345)], ids=["empty", "new", "heard", "many"]
)
def test_a_summary_reads_back_as_itself(new: int, old: int) -> None:
    summary = MessageSummary.of_counts(new, old, "sip:203@pbx.example")

    assert MessageSummary.parse(bytes(summary)) == summary
    assert bytes(MessageSummary.parse(bytes(summary))) == bytes(summary)


def test_the_rfc_3842_example_is_read_with_its_urgent_counts_and_other_lines_skipped() -> None:
    body = (
        b"Messages-Waiting: yes\r\n"
        b"Message-Account: sip:alice@vmail.example.com\r\n"
        b"Voice-Message: 4/8 (1/2)\r\n"
        b"\r\n"
        b"To: <alice@atlanta.example.com>\r\n"
        b"From: <bob@biloxi.example.com>\r\n"
    )

    summary = MessageSummary.parse(body)

    assert summary == MessageSummary(True, "sip:alice@vmail.example.com", 4, 8, 1, 2)


def test_a_summary_without_voice_counts_has_none() -> None:
    assert MessageSummary.parse(b"Messages-Waiting: no\r\n") == MessageSummary(False)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Voice-Message: 1/0\r\n",
        b"Messages-Waiting: maybe\r\n",
        b"Messages-Waiting: yes\r\nVoice-Message: one/two\r\n",
    ],
    ids=["empty", "no status", "bad status", "bad counts"],
)
def test_a_broken_summary_is_refused(body: bytes) -> None:
    with pytest.raises(BodyError):
        MessageSummary.parse(body)


# --- dialog info (RFC 4235) -------------------------------------------------------------------

RINGING = DialogEntry(
    id="leg-7",
    state="early",
    direction="recipient",
    call_id="a84b4c76e66710@192.0.2.1",
    local_tag="bob-tag",
    remote_tag="pbx-tag",
    local=Participant("sip:202@192.0.2.1", "Bob", "sip:202@192.0.2.1"),
    remote=Participant("sip:201@192.0.2.1", "Alice & Co", "sip:*8202@192.0.2.1"),
)


def test_an_idle_extension_is_an_empty_full_document() -> None:
    document = DialogInfo("sip:202@192.0.2.1", 0)

    assert bytes(document) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"'
        b' entity="sip:202@192.0.2.1" />\n'
    )


def test_a_ringing_dialog_is_written_in_the_schema_order_with_what_a_pickup_needs() -> None:
    document = DialogInfo("sip:202@192.0.2.1", 3, (RINGING,))

    assert bytes(document) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full"'
        b' entity="sip:202@192.0.2.1">'
        b'<dialog id="leg-7" call-id="a84b4c76e66710@192.0.2.1" local-tag="bob-tag"'
        b' remote-tag="pbx-tag" direction="recipient">'
        b"<state>early</state>"
        b'<local><identity display="Bob">sip:202@192.0.2.1</identity>'
        b'<target uri="sip:202@192.0.2.1" /></local>'
        b'<remote><identity display="Alice &amp; Co">sip:201@192.0.2.1</identity>'
        b'<target uri="sip:*8202@192.0.2.1" /></remote>'
        b"</dialog></dialog-info>\n"
    )


def test_a_held_call_has_rendering_off_on_its_local_target() -> None:
    held = DialogEntry(
        "leg-9",
        "confirmed",
        "initiator",
        local=Participant("sip:202@h", "", "sip:202@h", (("+sip.rendering", "no"),)),
    )

    body = bytes(DialogInfo("sip:202@h", 1, (held,)))

    assert b'<target uri="sip:202@h"><param pname="+sip.rendering" pval="no" /></target>' in body
    assert DialogInfo.parse(body).dialogs[0].local == held.local


@pytest.mark.parametrize(
    "dialogs",
    [(), (RINGING,), (RINGING, DialogEntry("x", "terminated"))],
    ids=["idle", "ringing", "ringing and ended"],
)
def test_a_document_reads_back_as_itself(dialogs: tuple[DialogEntry, ...]) -> None:
    document = DialogInfo("sip:202@192.0.2.1", 12, dialogs)

    assert DialogInfo.parse(bytes(document)) == document
    assert bytes(DialogInfo.parse(bytes(document))) == bytes(document)


def test_the_rfc_4235_example_is_read() -> None:
    body = b"""<?xml version="1.0"?>
      <dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"
                   version="1" state="full" entity="sip:alice@example.com">
        <dialog id="as7d900as8" call-id="a84b4c76e66710"
                local-tag="1928301774" direction="initiator">
          <state>early</state>
        </dialog>
      </dialog-info>"""

    document = DialogInfo.parse(body)

    assert document == DialogInfo(
        "sip:alice@example.com",
        1,
        (DialogEntry("as7d900as8", "early", "initiator", "a84b4c76e66710", "1928301774"),),
    )


def test_an_asterisk_style_ringing_notification_is_read() -> None:
    body = (
        b'<?xml version="1.0"?><dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info"'
        b' version="3" state="full" entity="sip:2621@192.168.50.1"><dialog id="2621"'
        b' call-id="pickup-f790a853@192.168.50.125" local-tag="3890462F" remote-tag="as7f73e479"'
        b' direction="recipient"><remote><identity display="2609 Joe"></identity>'
        b'<target uri="2621;user=phone"/></remote><local><identity display="sip:2621@192.168.50.1">'
        b'</identity><target uri="sip:2630@192.168.50.1;user=phone"/></local>'
        b"<state>early</state></dialog></dialog-info>"
    )

    entry = DialogInfo.parse(body).dialogs[0]

    assert (entry.state, entry.direction, entry.remote_tag) == ("early", "recipient", "as7f73e479")
    assert entry.remote == Participant("", "2609 Joe", "2621;user=phone")


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"/>',
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" entity="x"/>',
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" entity="x">'
        b'<dialog id="1"><state>ringing</state></dialog></dialog-info>',
    ],
    ids=["not xml", "presence", "no version", "unknown state"],
)
def test_a_broken_document_is_refused(body: bytes) -> None:
    with pytest.raises(BodyError):
        DialogInfo.parse(body)


def test_a_state_or_direction_outside_the_schema_is_a_bug() -> None:
    with pytest.raises(ValueError):
        DialogEntry("1", "ringing")
    with pytest.raises(ValueError):
        DialogEntry("1", "early", "caller")


# --- presence (RFC 3863 PIDF with RFC 4480's activities) ---------------------------------------


@pytest.mark.parametrize(
    "presence",
    [
        Presence("sip:201@pbx.example", True),
        Presence("sip:201@pbx.example", True, ON_THE_PHONE, "Al telefono"),
        Presence("sip:201@pbx.example", False, note="Non raggiungibile"),
    ],
)
def test_a_presence_document_reads_back_as_itself(presence: Presence) -> None:
    assert Presence.parse(bytes(presence)) == presence


def test_a_presence_document_has_the_pidf_shape_phones_read() -> None:
    body = bytes(Presence("sip:201@pbx.example", True, ON_THE_PHONE, "Al telefono"))
    root = ET.fromstring(body)
    assert root.tag == "{urn:ietf:params:xml:ns:pidf}presence"
    assert root.attrib["entity"] == "sip:201@pbx.example"
    basic = root.find(
        "{urn:ietf:params:xml:ns:pidf}tuple/{urn:ietf:params:xml:ns:pidf}status"
        "/{urn:ietf:params:xml:ns:pidf}basic"
    )
    assert basic is not None and basic.text == "open"
    assert (
        root.find(
            "{urn:ietf:params:xml:ns:pidf:data-model}person/{urn:ietf:params:xml:ns:pidf:rpid}activities"
            "/{urn:ietf:params:xml:ns:pidf:rpid}on-the-phone"
        )
        is not None
    )
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" entity="x"/>',
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:1@x"><tuple id="t"/></presence>',
        b'<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><status><basic>open</basic>'
        b"</status></tuple></presence>",
    ],
)
def test_a_presence_document_that_is_not_one_is_refused(body: bytes) -> None:
    with pytest.raises(BodyError):
        Presence.parse(body)
