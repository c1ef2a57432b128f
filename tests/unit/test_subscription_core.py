"""A subscription at the notifier (RFC 6665), without a network or a clock: what a SUBSCRIBE
asks for, the expiry arithmetic, the state table, the documents' versions and the pacing of
NOTIFYs (one in flight at a time, removal when one fails)."""

from __future__ import annotations

import pytest

from pbx.sip.dialog import Dialog
from pbx.sip.event_bodies import DialogEntry, MessageSummary
from pbx.sip.headers import Headers, Via
from pbx.sip.message import Request, make_response
from pbx.sip.subscription import (
    ALLOW_EVENTS,
    ExpiryPolicy,
    IllegalTransition,
    Next,
    Package,
    Refused,
    State,
    Subscription,
    check_subscribe,
    parse_event,
)

VIA = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-pbx")
CONTACT = "<sip:centralino@192.0.2.1:5060>"


def subscribe(event: str = "dialog", *, expires: str | None = "600", accept: str = "") -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bK-1"),
            ("From", "<sip:201@192.0.2.1>;tag=phone-tag"),
            ("To", "<sip:202@192.0.2.1>"),
            ("Call-ID", "sub-1@10.0.0.11"),
            ("CSeq", "1 SUBSCRIBE"),
            ("Contact", "<sip:201@10.0.0.11:5060>"),
            ("Event", event),
        ]
    )
    if expires is not None:
        headers.add("Expires", expires)
    if accept:
        headers.add("Accept", accept)
    return Request("SUBSCRIBE", "sip:202@192.0.2.1", headers)


def subscription(package: Package = Package.DIALOG, expires_at: float = 1600.0) -> Subscription:
    dialog = Dialog.from_uas(subscribe(package.value), "pbx-tag")
    return Subscription(
        package, (1, "202"), "alice", dialog, ("10.0.0.11", 5060), "udp", expires_at
    )


# --- what a SUBSCRIBE asks for ----------------------------------------------------------------


def test_the_phones_wish_is_granted_within_the_bounds() -> None:
    policy = ExpiryPolicy(minimum=60, maximum=3600, default=3600)

    assert policy.grant(600) == 600
    assert policy.grant(60) == 60
    assert policy.grant(86400) == 3600  # shortened, never lengthened
    assert policy.grant(None) == 3600  # the packages' default: an hour
    assert policy.grant(0) == 0  # an unsubscribe, or a fetch


def test_the_default_never_passes_the_maximum() -> None:
    assert ExpiryPolicy(minimum=10, maximum=300, default=3600).grant(None) == 300


@pytest.mark.parametrize("requested", [1, 59])
def test_an_interval_below_the_minimum_is_too_brief_with_min_expires(requested: int) -> None:
    with pytest.raises(Refused) as refused:
        ExpiryPolicy(minimum=60).grant(requested)

    assert refused.value.status == 423
    assert refused.value.headers == (("Min-Expires", "60"),)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("dialog", ("dialog", None)),
        ("message-summary", ("message-summary", None)),
        ("Dialog;id=42", ("dialog", "42")),
        ("dialog ; ID = a1 ; other=x", ("dialog", "a1")),
        ("", ("", None)),
    ],
)
def test_an_event_header_gives_its_package_and_id(
    value: str, parsed: tuple[str, str | None]
) -> None:
    assert parse_event(value) == parsed


def test_a_subscribe_names_its_package_its_id_and_gets_its_expiry() -> None:
    assert check_subscribe(subscribe("dialog;id=7"), ExpiryPolicy()) == (Package.DIALOG, "7", 600)
    mwi = subscribe("message-summary", expires=None)
    assert check_subscribe(mwi, ExpiryPolicy()) == (Package.MESSAGE_SUMMARY, None, 3600)


@pytest.mark.parametrize("event", ["conference", "reg", "", "dialogue"])
def test_an_unknown_package_is_a_bad_event_that_lists_ours(event: str) -> None:
    with pytest.raises(Refused) as refused:
        check_subscribe(subscribe(event), ExpiryPolicy())

    assert refused.value.status == 489
    assert refused.value.headers == (("Allow-Events", ALLOW_EVENTS),)
    assert ALLOW_EVENTS == "message-summary, dialog, presence"


@pytest.mark.parametrize(
    "accept",
    [
        "application/dialog-info+xml",
        "application/rlmi+xml, application/dialog-info+xml;q=0.5",
        "multipart/related, application/*",
        "*/*",
    ],
)
def test_an_accept_that_takes_dialog_info_is_served(accept: str) -> None:
    assert check_subscribe(subscribe(accept=accept), ExpiryPolicy())[0] is Package.DIALOG


def test_an_accept_that_refuses_our_body_type_is_not_acceptable() -> None:
    with pytest.raises(Refused) as refused:
        check_subscribe(subscribe("message-summary", accept="application/pidf+xml"), ExpiryPolicy())

    assert refused.value.status == 406
    assert refused.value.headers == (("Accept", "application/simple-message-summary"),)


# --- time and states ------------------------------------------------------------------------


def test_an_active_subscription_says_how_long_it_has_left() -> None:
    sub = subscription(expires_at=1600.0)

    assert sub.subscription_state(1000.0) == "active;expires=600"
    assert sub.subscription_state(1000.4) == "active;expires=600"  # rounded, not cut
    assert sub.subscription_state(1599.0) == "active;expires=1"
    assert sub.subscription_state(1700.0) == "active;expires=0"
    assert not sub.expired(1599.9) and sub.expired(1600.0)


def test_a_refresh_starts_the_time_again_from_now() -> None:
    sub = subscription(expires_at=1600.0)

    sub.refresh(300, 1500.0)

    assert sub.expires_at == 1800.0
    assert sub.subscription_state(1500.0) == "active;expires=300"


def test_a_terminated_subscription_says_why_and_cannot_come_back() -> None:
    sub = subscription()

    sub.end("timeout")

    assert sub.state is State.TERMINATED
    assert sub.subscription_state(1000.0) == "terminated;reason=timeout"
    with pytest.raises(IllegalTransition):
        sub.refresh(600, 1000.0)
    with pytest.raises(IllegalTransition):
        sub.end("giveup")


def test_the_event_header_of_notifies_repeats_the_id() -> None:
    sub = subscription()
    assert sub.event == "dialog"
    sub.event_id = "42"
    assert sub.event == "dialog;id=42"


# --- documents ------------------------------------------------------------------------------

EARLY = DialogEntry("leg-1", "early", "recipient", "c1")
OTHER = DialogEntry("leg-2", "early", "recipient", "c2")


def test_each_document_has_the_next_version() -> None:
    sub = subscription()

    versions = [sub.next_document("sip:202@h", []).version for _ in range(3)]

    assert versions == [0, 1, 2]


def test_an_ended_dialog_is_shown_terminated_once() -> None:
    sub = subscription()
    sub.next_document("sip:202@h", [EARLY, OTHER])

    answered = sub.next_document("sip:202@h", [EARLY])
    idle = sub.next_document("sip:202@h", [])
    after = sub.next_document("sip:202@h", [])

    assert [(d.id, d.state) for d in answered.dialogs] == [
        ("leg-1", "early"),
        ("leg-2", "terminated"),
    ]
    assert [(d.id, d.state) for d in idle.dialogs] == [("leg-1", "terminated")]
    assert after.dialogs == ()


# --- pacing NOTIFYs -------------------------------------------------------------------------


def test_a_notify_is_sent_in_the_dialog_with_event_and_state() -> None:
    sub = subscription(Package.MESSAGE_SUMMARY)
    body = bytes(MessageSummary.of_counts(1, 0, "sip:201@h"))

    notify = sub.notify(body, 1000.0, via=VIA, contact=CONTACT)

    assert notify.method == "NOTIFY"
    assert notify.uri == "sip:201@10.0.0.11:5060"  # the subscriber's Contact
    assert notify.from_addr.tag == "pbx-tag" and notify.to_addr.tag == "phone-tag"
    assert notify.call_id == "sub-1@10.0.0.11"
    assert notify.headers.get("Event") == "message-summary"
    assert notify.headers.get("Subscription-State") == "active;expires=600"
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"
    assert notify.body == body


def test_notifies_take_the_next_cseq_each() -> None:
    sub = subscription()
    first = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)
    sub.responded(make_response(first, 200))
    second = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)

    assert (first.cseq.number, second.cseq.number) == (1, 2)


def test_a_change_while_a_notify_is_in_flight_waits_for_its_response() -> None:
    sub = subscription()
    assert sub.may_notify()
    notify = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)

    assert not sub.may_notify()  # two changes meanwhile...
    assert not sub.may_notify()
    assert sub.responded(make_response(notify, 100)) is Next.WAIT
    assert sub.responded(make_response(notify, 200)) is Next.AGAIN  # ...make one more NOTIFY
    assert sub.may_notify()


def test_nothing_more_goes_after_the_final_notify() -> None:
    sub = subscription()
    sub.end("timeout")

    final = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)

    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert not sub.may_notify()
    assert sub.responded(make_response(final, 200)) is Next.DONE
    assert not sub.may_notify()


def test_an_end_while_a_notify_is_in_flight_sends_the_final_one_after_it() -> None:
    sub = subscription()
    notify = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)
    sub.end("timeout")
    assert not sub.may_notify()

    assert sub.responded(make_response(notify, 200)) is Next.AGAIN
    final = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"


@pytest.mark.parametrize("status", [481, 408, 489, 500, 603, None])
def test_a_notify_that_fails_ends_the_subscription(status: int | None) -> None:
    sub = subscription()
    notify = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)

    response = make_response(notify, status) if status is not None else None

    assert sub.responded(response) is Next.FAILED
    assert sub.state is State.TERMINATED and sub.reason == "giveup"


def test_an_error_with_retry_after_keeps_the_subscription() -> None:
    sub = subscription()
    notify = sub.notify(b"", 1000.0, via=VIA, contact=CONTACT)

    busy = make_response(notify, 503, headers=(("Retry-After", "5"),))

    assert sub.responded(busy) is Next.DONE
    assert sub.active
