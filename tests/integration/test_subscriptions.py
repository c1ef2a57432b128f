"""A6 with real peers: message-waiting and busy lamps, and picking up a ringing extension.

baresip 1.0 (its mwi module) subscribes to its mailbox and is told new counts; SIPp watches
an extension while baresip phones call it, refreshes and ends its subscription, lets one
expire, and is refused what it may not watch; a baresip phone dials *8 and an extension to
answer the call that rings there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pbx.engine.directory import DeviceInfo, ExtensionInfo
from pbx.media.tone import rms
from pbx.sip.event_bodies import DialogInfo, MessageSummary, Presence
from pbx.sip.subscription import Package
from tests.integration.engine_fixture import COMPANY, Pbx
from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.sipp import SippBackground, SippResult, run_sipp, sipp_binary

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
    pytest.mark.skipif(sipp_binary() is None, reason="SIPp (sip-tester) is not installed"),
]


class Counts:
    """The mailboxes' counts the engine asks (`MessageCounts`), set by the test."""

    def __init__(self) -> None:
        self.mailboxes: dict[tuple[int, str], tuple[int, int]] = {}

    async def counts(self, company_id: int, number: str) -> tuple[int, int]:
        return self.mailboxes.get((company_id, number), (0, 0))


def _counts(pbx: Pbx) -> Counts:
    """Give the engine's lamps counts the test sets (the voicemail store's stand-in)."""
    counts = Counts()
    pbx.evaluate(lambda engine: setattr(engine.subscriptions, "counts", counts))
    return counts


@dataclass(frozen=True)
class Notify:
    """A NOTIFY as SIPp received it."""

    state: str  # Subscription-State
    body: str


def _notifies(result: SippResult) -> list[Notify]:
    """The NOTIFYs in SIPp's message trace, in order."""
    notifies = []
    for block in re.split(r"^-{20,}.*$", result.messages, flags=re.M):
        first, _, message = block.strip().replace("\r\n", "\n").partition("\n")
        text = message.strip()
        if "received" not in first or not text.startswith("NOTIFY "):
            continue
        head, _, body = text.partition("\n\n")
        state = re.search(r"^Subscription-State:\s*(.+)$", head, re.M | re.I)
        notifies.append(Notify(state.group(1).strip() if state else "", body.strip()))
    return notifies


def _lamps(notifies: list[Notify]) -> list[list[tuple[str, str]]]:
    """What each dialog-info NOTIFY showed: (state, direction) per dialog."""
    return [
        [(d.state, d.direction) for d in DialogInfo.parse(n.body.encode()).dialogs]
        for n in notifies
    ]


def _watching(pbx: Pbx, number: str) -> Callable[[object], list[object]]:
    def subscriptions(engine: object) -> list[object]:
        return engine.subscriptions.watching(Package.DIALOG, COMPANY, number)  # type: ignore[attr-defined]

    return subscriptions


def _lamp_showed(pbx: Pbx, number: str, state: str) -> None:
    """Wait until the NOTIFYs for `number`'s lamp have shown a dialog `state`."""
    pbx.wait_until(
        lambda engine: any(
            entry.state == state
            for sub in engine.subscriptions.watching(Package.DIALOG, COMPANY, number)
            for entry in sub.shown.values()
        ),
        what=f"a NOTIFY showing {number} {state}",
    )


# --- message waiting --------------------------------------------------------------------------


def test_baresip_is_told_its_mailbox_counts_when_they_change(
    pbx: Pbx, make_baresip: Callable[..., Baresip]
) -> None:
    counts = _counts(pbx)
    phone = make_baresip("201", password=pbx.secrets["201"], registrar=pbx.address, mwi=True)
    phone.wait_registered()
    first = phone.wait_mwi("Messages-Waiting")
    assert MessageSummary.parse(first.encode()) == MessageSummary(False, "sip:201@127.0.0.1")

    counts.mailboxes[(COMPANY, "201")] = (2, 1)  # a message left, another one heard
    pbx.call_soon(pbx.engine.mailbox_changed, COMPANY, "201")

    lit = MessageSummary.parse(phone.wait_mwi("Messages-Waiting: yes").encode())
    assert (lit.new, lit.old, lit.account) == (2, 1, "sip:201@127.0.0.1")
    counts.mailboxes[(COMPANY, "201")] = (0, 3)  # heard in the portal
    pbx.call_soon(pbx.engine.mailbox_changed, COMPANY, "201")
    phone.wait_mwi("Voice-Message: 0/3")
    assert [MessageSummary.parse(b.encode()).waiting for b in phone.mwi_bodies()] == [
        False,
        True,
        False,
    ]


def test_a_phone_that_never_subscribes_is_told_unsolicited_when_configured(
    make_pbx: Callable[..., Pbx],
) -> None:
    server = make_pbx(mwi_unsolicited=True)
    counts = _counts(server)
    with SippBackground("uas_notify", timeout=10) as phone:
        server.bind("204", phone.address)
        counts.mailboxes[(COMPANY, "204")] = (1, 0)
        server.call_soon(server.engine.mailbox_changed, COMPANY, "204")
        result = phone.wait(10)
    assert result.ok, result.explain()
    [notify] = _notifies(result)
    assert "Messages-Waiting: yes" in notify.body and "Voice-Message: 1/0" in notify.body


# --- busy lamps ---------------------------------------------------------------------------------


def test_a_busy_lamp_follows_a_call_and_the_subscription_is_refreshed_and_ended(
    pbx: Pbx, make_phone: Callable[..., Baresip]
) -> None:
    caller, watched = make_phone("201"), make_phone("202", answermode="manual")
    with SippBackground(
        "subscribe_blf",
        pbx.address,
        keys={"service": "202", "user": "203", "expires": "600"},
        auth=("203", pbx.secrets["203"]),
        timeout=30,
        trace_msg=True,
    ) as lamp:
        pbx.wait_until(_watching(pbx, "202"), what="SIPp's subscription to 202")

        caller.dial(f"sip:202@{pbx.address}")
        watched.wait_incoming()
        _lamp_showed(pbx, "202", "early")
        watched.answer()
        caller.wait_established()
        _lamp_showed(pbx, "202", "confirmed")
        caller.hangup()
        watched.wait_closed()

        result = lamp.wait(15)
    assert result.ok, result.explain()
    notifies = _notifies(result)
    lamps = _lamps(notifies)
    # 202 rings: once when we INVITE it, again when its 180 gives its early dialog a tag.
    assert [shown for i, shown in enumerate(lamps) if i == 0 or shown != lamps[i - 1]] == [
        [],  # idle when it subscribed
        [("early", "recipient")],  # 202 rings
        [("confirmed", "recipient")],  # 202 answered
        [("terminated", "recipient")],  # hung up: idle
        [],  # the refresh's NOTIFY, and the final one
    ]
    assert lamps[-2:] == [[], []]
    versions = [DialogInfo.parse(n.body.encode()).version for n in notifies]
    assert versions == list(range(len(notifies)))
    assert notifies[0].state == "active;expires=600"
    assert notifies[-1].state == "terminated;reason=timeout"
    ringing = DialogInfo.parse(
        notifies[lamps.index([("confirmed", "recipient")]) - 1].body.encode()
    )
    [early] = ringing.dialogs  # what a phone needs to pick the call up from its lamp:
    assert early.remote is not None and early.remote.target.startswith("sip:*8202@")
    assert early.call_id and early.remote_tag and early.local_tag  # Replaces of the early dialog
    pbx.wait_until(lambda engine: len(engine.subscriptions) == 0, what="no subscription left")


def test_a_buddy_list_sees_an_extension_go_on_the_phone_and_come_back(
    pbx: Pbx, make_phone: Callable[..., Baresip]
) -> None:
    """Presence (RFC 3856): what a softphone's buddy list shows of 202, as PIDF."""
    caller, watched = make_phone("201"), make_phone("202", answermode="manual")
    with SippBackground(
        "subscribe_presence",
        pbx.address,
        keys={"service": "202", "user": "203", "expires": "600"},
        auth=("203", pbx.secrets["203"]),
        timeout=30,
        trace_msg=True,
    ) as buddy:
        pbx.wait_until(
            lambda engine: engine.subscriptions.watching(Package.PRESENCE, COMPANY, "202"),
            what="SIPp's presence subscription to 202",
        )
        caller.dial(f"sip:202@{pbx.address}")
        watched.wait_incoming()
        watched.answer()
        caller.wait_established()
        caller.hangup()
        watched.wait_closed()
        result = buddy.wait(15)
    assert result.ok, result.explain()
    notifies = _notifies(result)
    said = [Presence.parse(n.body.encode()) for n in notifies]
    assert all(p.entity.startswith("sip:202@") and p.open for p in said)
    shown = [(p.activity, p.note) for p in said]
    assert [s for i, s in enumerate(shown) if i == 0 or s != shown[i - 1]] == [
        ("", "Available"),  # when it subscribed
        ("on-the-phone", "Ringing"),
        ("on-the-phone", "On the phone"),
        ("", "Available"),  # hung up; the final NOTIFY says it once more
    ]
    assert notifies[0].state == "active;expires=600"
    assert notifies[-1].state == "terminated;reason=timeout"
    pbx.wait_until(lambda engine: len(engine.subscriptions) == 0, what="no subscription left")


def test_a_subscription_not_refreshed_expires_and_its_refresh_is_481(
    make_pbx: Callable[..., Pbx],
) -> None:
    server = make_pbx(subscribe_min_expires=1)
    result = run_sipp(
        "subscribe_expiry",
        server.address,
        keys={"service": "202", "user": "201", "event": "dialog", "expires": "2"},
        auth=("201", server.secrets["201"]),
        timeout=15,
        trace_msg=True,
    )
    assert result.ok, result.explain()
    first, last = _notifies(result)
    assert first.state == "active;expires=2"
    assert last.state == "terminated;reason=timeout"


@dataclass(frozen=True)
class Refusal:
    service: str
    event: str
    expires: str
    status: int
    header: str  # a header the refusal must carry ("" for none)


REFUSALS = {
    "conference is a bad event": Refusal(
        "202", "conference", "600", 489, "Allow-Events: message-summary, dialog, presence"
    ),
    "another company's extension": Refusal("acme-301", "dialog", "600", 403, ""),
    "an unknown extension": Refusal("299", "dialog", "600", 404, ""),
    "another extension's mailbox": Refusal("202", "message-summary", "600", 403, ""),
    "an interval too brief": Refusal("202", "dialog", "5", 423, "Min-Expires: 60"),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_what_a_phone_may_not_watch_is_refused_once_it_is_known(pbx: Pbx, refusal: Refusal) -> None:
    pbx.directory.extensions[(2, "301")] = ExtensionInfo(2, "301", "Elsewhere", ("acme-301",))
    pbx.directory.devices["acme-301"] = DeviceInfo("acme-301", "centralino", "", "", 2, "301")

    result = run_sipp(
        "subscribe_refused",
        pbx.address,
        keys={
            "service": refusal.service,
            "user": "201",
            "event": refusal.event,
            "expires": refusal.expires,
        },
        auth=("201", pbx.secrets["201"]),
        trace_msg=True,
    )

    assert result.ok, result.explain()
    statuses = re.findall(r"^SIP/2\.0 (\d{3})", result.messages, re.M)
    assert statuses == ["401", str(refusal.status)], result.messages
    if refusal.header:
        assert refusal.header in result.messages
    assert pbx.evaluate(lambda engine: len(engine.subscriptions)) == 0


# --- directed pickup ----------------------------------------------------------------------------


def test_a_phone_picks_up_a_ringing_extension_by_its_code_and_talks_to_the_caller(
    pbx: Pbx, make_phone: Callable[..., Baresip]
) -> None:
    caller = make_phone("201", tone_hz=440)
    ringing = make_phone("202", answermode="manual", tone_hz=700)
    picker = make_phone("203", tone_hz=1000)
    caller.dial(f"sip:202@{pbx.address}")
    ringing.wait_incoming()

    picker.dial(f"sip:*8202@{pbx.address}")

    picker.wait_established()
    caller.wait_established()
    ringing.wait_closed()  # 202 stopped ringing: CANCELled
    caller.wait_hearing(1000)
    picker.wait_hearing(440)
    picker.hangup()
    caller.wait_closed()
    pbx.wait_no_calls()
    records = pbx.wait_records(2)
    picked = next(r for r in records if r["callee"] == "202")
    assert (picked["disposition"], picked["answered_by"]) == ("answered", "203")


def test_a_phone_takes_over_the_early_dialog_its_lamp_showed(
    pbx: Pbx, make_phone: Callable[..., Baresip]
) -> None:
    caller = make_phone("201", tone_hz=440)
    ringing = make_phone("202", answermode="manual")
    caller.dial(f"sip:202@{pbx.address}")
    ringing.wait_incoming()
    # What 202's lamp shows once its phone's 180 came (the body of its NOTIFYs).
    [early] = pbx.wait_until(
        lambda engine: [d for d in engine.subscriptions.dialogs(COMPANY, "202") if d.local_tag],
        what="202's early dialog, with its phone's tag",
    )
    replaces = f"{early.call_id};to-tag={early.remote_tag};from-tag={early.local_tag};early-only"

    result = run_sipp(
        "uac_replaces",
        pbx.address,
        keys={"service": "202", "user": "203", "replaces": replaces},
        auth=("203", pbx.secrets["203"]),
        duration_ms=2000,
        play_audio=True,
    )

    assert result.ok, result.explain()
    caller.wait_established()
    ringing.wait_closed()  # CANCELled: the early dialog was taken over
    caller.wait_closed()  # SIPp hung up after 2 s
    assert rms(caller.received_audio()[4000:]) > 300  # it heard SIPp's A-law recording
    pbx.wait_no_calls()
    picked = next(r for r in pbx.wait_records(2) if r["callee"] == "202")
    assert (picked["disposition"], picked["answered_by"]) == ("answered", "203")
