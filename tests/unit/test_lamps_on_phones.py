"""Lamps on phones, engine side: message-waiting and busy lamp subscriptions against the call
layer's fakes. Alice (201) watches Bob (202, a desk phone and a mobile) and her own mailbox;
calls are real call-layer calls, NOTIFYs are read back as SIP and answered by the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pbx.engine.directory import DeviceInfo, ExtensionInfo
from pbx.engine.events import Event, MailboxChanged, RegistrationChanged
from pbx.engine.services import MemoryVoicemailStore, MessageCounts
from pbx.engine.subscriptions import Subscriptions
from pbx.sip.dialog import Dialog
from pbx.sip.event_bodies import DialogInfo, MessageSummary
from pbx.sip.headers import Headers, Via
from pbx.sip.ids import new_branch, new_call_id, new_tag
from pbx.sip.message import Request, Response, make_response
from pbx.sip.subscription import ExpiryPolicy, Package
from tests.unit.fakes.directory import COMPANY
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Phone
from tests.unit.fakes.sip import ADVERTISE

OTHER_COMPANY = 2


class Counts:
    """`MessageCounts` from a dict: (new, heard) per mailbox."""

    def __init__(self) -> None:
        self.mailboxes: dict[tuple[int, str], tuple[int, int]] = {}

    async def counts(self, company_id: int, number: str) -> tuple[int, int]:
        return self.mailboxes.get((company_id, number), (0, 0))


def lamps(
    pbx: Pbx, counts: MessageCounts | None = None, *, unsolicited: bool = False
) -> Subscriptions:
    """The engine's notifier over the office's call layer, wired as runtime.py wires it."""
    for ext in list(pbx.directory.extensions.values()):
        for device in ext.devices:
            pbx.directory.devices[device] = DeviceInfo(
                device, "centralino", "", "", ext.company_id, ext.number
            )
    subs = Subscriptions(
        stack=pbx.stack,
        clock=pbx.clock,
        tasks=pbx.tasks,
        directory=pbx.directory,
        counts=counts or MemoryVoicemailStore(),
        presence=pbx.presence,
        calls=pbx.calls,
        contacts=pbx.registrar,
        policy=ExpiryPolicy(minimum=60, maximum=3600),
        unsolicited=unsolicited,
        pickup_code="*8",
    )
    pbx.events.subscribe(_strict(subs.on_event, pbx.failures))
    return subs


def _strict(
    subscriber: Callable[[Event], None], failures: list[BaseException]
) -> Callable[[Event], None]:
    def deliver(event: Event) -> None:
        try:
            subscriber(event)
        except Exception as error:  # the bus would log it and go on: fail the test instead
            failures.append(error)
            raise

    return deliver


class Watcher:
    """A phone's subscription, played by the test with the real message and dialog code."""

    def __init__(self, pbx: Pbx, subs: Subscriptions, phone: Phone) -> None:
        self.pbx, self.subs, self.phone = pbx, subs, phone
        self.subscribe_request: Request | None = None
        self.dialog: Dialog | None = None

    def _request(self, target: str, event: str, expires: int | None, **headers: str) -> Request:
        fields = Headers(
            [
                (
                    "Via",
                    str(Via.parse(f"SIP/2.0/UDP {self.phone.host}:5060;branch={new_branch()}")),
                ),
                ("From", f"<sip:{self.phone.number}@{ADVERTISE}>;tag={new_tag()}"),
                ("To", f"<sip:{target}@{ADVERTISE}>"),
                ("Call-ID", new_call_id(self.phone.host)),
                ("CSeq", "1 SUBSCRIBE"),
                ("Contact", self.phone.contact),
                ("Event", event),
            ]
        )
        if expires is not None:
            fields.add("Expires", str(expires))
        for name, value in headers.items():
            fields.add(name.replace("_", "-"), value)
        return Request("SUBSCRIBE", f"sip:{target}@{ADVERTISE}", fields)

    async def subscribe(
        self,
        target: str,
        event: str = "dialog",
        expires: int | None = 600,
        *,
        company: int = COMPANY,
        **headers: str,
    ) -> Response:
        """SUBSCRIBE to `target` (authenticated as this phone's device); the final response."""
        request = self._request(target, event, expires, **headers)
        device = DeviceInfo(self.phone.device, "centralino", "", "", company, self.phone.number)
        self.pbx.tasks.spawn(self.subs.subscribe(request, self.phone.addr, "udp", device))
        await self.pbx.settle()
        response = self.pbx.stack.responses_to(request)[-1]
        if response.status == 200:
            self.subscribe_request = request
            self.dialog = Dialog.from_uac(request, response)
        return response

    async def resubscribe(self, expires: int, event: str = "") -> Response:
        """SUBSCRIBE in the subscription's dialog (a refresh; 0: the end)."""
        assert self.dialog is not None and self.subscribe_request is not None
        request, _ = self.dialog.create_request(
            "SUBSCRIBE",
            via=Via.parse(f"SIP/2.0/UDP {self.phone.host}:5060;branch={new_branch()}"),
            contact=self.phone.contact,
            extra_headers=(
                ("Event", event or self.subscribe_request.headers.get("Event") or ""),
                ("Expires", str(expires)),
            ),
        )
        if not self.subs.in_dialog(request):
            self.pbx.stack.send_response(make_response(request, 481))  # as the engine does
        await self.pbx.settle()
        return self.pbx.stack.responses_to(request)[-1]

    def notifies(self) -> list[Request]:
        assert self.dialog is not None
        call_id = self.dialog.call_id
        return [r for r in self.phone.received("NOTIFY") if r.call_id == call_id]

    @property
    def last(self) -> Request:
        return self.notifies()[-1]

    async def answer(self, status: int = 200, notify: Request | None = None) -> None:
        notify = notify or self.last
        response = make_response(notify, status) if status else None
        self.pbx.stack.deliver(notify, response)
        await self.pbx.settle()

    def document(self, notify: Request | None = None) -> DialogInfo:
        return DialogInfo.parse((notify or self.last).body)

    def states(self) -> list[list[tuple[str, str]]]:
        """What each NOTIFY so far said: (dialog state, direction) per dialog."""
        return [[(d.state, d.direction) for d in self.document(n).dialogs] for n in self.notifies()]


async def watching(pbx: Pbx, subs: Subscriptions, target: str = "202") -> Watcher:
    """Alice's phone watching `target`, its first NOTIFY answered (Bob's desk phone is
    registered: calls to 202 ring it)."""
    pbx.phone("bob-desk")
    watcher = Watcher(pbx, subs, pbx.phone("alice"))
    assert (await watcher.subscribe(target)).status == 200
    await watcher.answer()
    return watcher


# --- message waiting (RFC 3842) ---------------------------------------------------------------


async def test_a_mailbox_subscription_is_told_the_counts_at_once() -> None:
    pbx = office()
    counts = Counts()
    counts.mailboxes[(COMPANY, "201")] = (2, 5)
    watcher = Watcher(pbx, lamps(pbx, counts), pbx.phone("alice"))

    ok = await watcher.subscribe("201", "message-summary", 600)

    assert ok.headers.get("Expires") == "600"
    assert ok.to_addr.tag and ok.headers.get("Contact")
    notify = watcher.last
    assert notify.headers.get("Event") == "message-summary"
    assert notify.headers.get("Subscription-State") == "active;expires=600"
    assert notify.headers.get("Content-Type") == "application/simple-message-summary"
    assert MessageSummary.parse(notify.body) == MessageSummary(True, f"sip:201@{ADVERTISE}", 2, 5)


async def test_a_changed_mailbox_is_notified_with_its_new_counts() -> None:
    pbx = office()
    counts = Counts()
    watcher = Watcher(pbx, lamps(pbx, counts), pbx.phone("alice"))
    await watcher.subscribe("201", "message-summary")
    await watcher.answer()

    counts.mailboxes[(COMPANY, "201")] = (1, 0)
    pbx.events.emit(MailboxChanged(COMPANY, "201", pbx.clock.now()))
    await pbx.settle()

    assert [MessageSummary.parse(n.body).waiting for n in watcher.notifies()] == [False, True]
    assert b"Voice-Message: 1/0 (0/0)" in watcher.last.body


async def test_another_mailbox_is_not_notified_nor_anyone_when_nobody_subscribes() -> None:
    pbx = office()
    counts = Counts()
    watcher = Watcher(pbx, lamps(pbx, counts), pbx.phone("alice"))
    await watcher.subscribe("201", "message-summary")

    pbx.events.emit(MailboxChanged(COMPANY, "203", pbx.clock.now()))
    await pbx.settle()

    assert len(watcher.notifies()) == 1
    assert pbx.phone("carol").received("NOTIFY") == []


async def test_a_phone_may_not_watch_another_extensions_mailbox() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))

    refused = await watcher.subscribe("202", "message-summary")

    assert refused.status == 403
    assert pbx.phone("alice").received("NOTIFY") == []


async def test_the_mailbox_of_a_device_is_its_extensions() -> None:
    pbx = office()
    counts = Counts()
    counts.mailboxes[(COMPANY, "202")] = (3, 0)
    watcher = Watcher(pbx, lamps(pbx, counts), pbx.phone("bob-mobile"))

    assert (await watcher.subscribe("bob-mobile", "message-summary")).status == 200
    assert b"Message-Account: sip:202@" in watcher.last.body
    assert b"Voice-Message: 3/0" in watcher.last.body


async def test_unsolicited_notifies_go_to_the_phones_that_did_not_subscribe() -> None:
    pbx = office()
    counts = Counts()
    subs = lamps(pbx, counts, unsolicited=True)
    desk, mobile = pbx.phone("bob-desk"), pbx.phone("bob-mobile")
    watcher = Watcher(pbx, subs, mobile)
    await watcher.subscribe("202", "message-summary")
    await watcher.answer()

    counts.mailboxes[(COMPANY, "202")] = (1, 0)
    pbx.events.emit(MailboxChanged(COMPANY, "202", pbx.clock.now()))
    await pbx.settle()

    [unsolicited] = desk.received("NOTIFY")
    assert unsolicited.to_addr.tag is None  # out of any dialog
    assert unsolicited.uri == f"sip:bob-desk@{desk.host}:5060"  # its registered contact
    assert unsolicited.headers.get("Event") == "message-summary"
    assert b"Messages-Waiting: yes" in unsolicited.body
    assert len(watcher.notifies()) == 2  # the subscriber hears it in its dialog, once


async def test_a_phone_that_registers_is_told_its_counts_unsolicited() -> None:
    pbx = office()
    counts = Counts()
    counts.mailboxes[(COMPANY, "203")] = (4, 1)
    lamps(pbx, counts, unsolicited=True)
    carol = pbx.phone("carol")

    pbx.events.emit(RegistrationChanged("carol", 1, pbx.clock.now(), COMPANY, "203"))
    await pbx.settle()

    [notify] = carol.received("NOTIFY")
    assert b"Voice-Message: 4/1 (0/0)" in notify.body


async def test_no_unsolicited_notify_unless_configured() -> None:
    pbx = office()
    counts = Counts()
    lamps(pbx, counts)
    carol = pbx.phone("carol")

    pbx.events.emit(RegistrationChanged("carol", 1, pbx.clock.now(), COMPANY, "203"))
    pbx.events.emit(MailboxChanged(COMPANY, "203", pbx.clock.now()))
    await pbx.settle()

    assert carol.received("NOTIFY") == []


class SlowCounts:
    """A store whose answers the test gives, one future per question, in order."""

    def __init__(self) -> None:
        self.asked: list[asyncio.Future[tuple[int, int]]] = []

    async def counts(self, company_id: int, number: str) -> tuple[int, int]:
        answer: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self.asked.append(answer)
        return await answer


async def test_a_slow_answer_of_the_store_never_overwrites_a_newer_one() -> None:
    pbx = office()
    store = SlowCounts()
    watcher = Watcher(pbx, lamps(pbx, store), pbx.phone("alice"))
    request = watcher._request("201", "message-summary", 600)
    device = DeviceInfo("alice", "centralino", "", "", COMPANY, "201")
    pbx.tasks.spawn(watcher.subs.subscribe(request, watcher.phone.addr, "udp", device))
    await pbx.settle()
    pbx.events.emit(MailboxChanged(COMPANY, "201", pbx.clock.now()))  # a message comes in
    await pbx.settle()
    assert len(store.asked) == 1  # the second question waits for the first answer

    store.asked[0].set_result((0, 0))  # what the subscription asked, before the message
    await pbx.settle()
    store.asked[1].set_result((1, 0))
    await pbx.settle()
    watcher.subscribe_request = request
    watcher.dialog = Dialog.from_uac(request, pbx.stack.responses_to(request)[-1])
    await watcher.answer()

    assert [MessageSummary.parse(n.body).new for n in watcher.notifies()] == [0, 1]


class BrokenCounts:
    async def counts(self, company_id: int, number: str) -> tuple[int, int]:
        raise ConnectionError("database unreachable")


async def test_a_store_that_fails_leaves_the_lamp_as_it_was_told() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx, BrokenCounts()), pbx.phone("alice"))

    ok = await watcher.subscribe("201", "message-summary")  # answered all the same
    await watcher.answer()
    pbx.events.emit(MailboxChanged(COMPANY, "201", pbx.clock.now()))
    await pbx.settle()

    assert ok.status == 200
    assert len(watcher.notifies()) == 1  # the first one (nothing known: 0/0), nothing after


# --- busy lamps (RFC 4235) --------------------------------------------------------------------


async def test_an_idle_extension_is_notified_at_once_as_an_empty_document() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))

    await watcher.subscribe("202")

    notify = watcher.last
    assert notify.headers.get("Event") == "dialog"
    assert notify.headers.get("Content-Type") == "application/dialog-info+xml"
    assert watcher.document() == DialogInfo(f"sip:202@{ADVERTISE}", 0)


async def test_a_lamp_goes_early_confirmed_and_terminated_with_a_call() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = Watcher(pbx, subs, pbx.phone("carol"))
    await watcher.subscribe("202")
    await watcher.answer()
    alice, desk, _mobile = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("bob-mobile")

    await alice.dial("202")
    await watcher.answer()
    await desk.ring()
    await watcher.answer()
    await desk.answer()
    await watcher.answer()
    await desk.hang_up()
    await watcher.answer()

    recipient = ("early", "recipient")
    assert watcher.states() == [
        [],
        [recipient, recipient],  # both of Bob's phones are called...
        [recipient, recipient],  # ...the desk phone's 180 gives its tag to its early dialog
        [("confirmed", "recipient"), ("terminated", "recipient")],  # the mobile stopped
        [("terminated", "recipient")],
    ]
    assert [watcher.document(n).version for n in watcher.notifies()] == [0, 1, 2, 3, 4]
    desk_tags = [d.local_tag for n in watcher.notifies()[1:3] for d in watcher.document(n).dialogs]
    assert desk_tags.count("") == 3  # 2 phones, then the mobile (no 180 from it)


async def test_a_lamp_shows_every_call_of_the_extension_even_when_its_state_stays() -> None:
    pbx = office()
    watcher = await watching(pbx, lamps(pbx), target="202")
    desk, mobile, _dave = pbx.phone("bob-desk"), pbx.phone("bob-mobile"), pbx.phone("dave")
    await pbx.phone("carol").dial("202")
    await watcher.answer()
    await desk.answer(desk.invites[-1])
    await watcher.answer()

    await mobile.dial("204")  # 202 still shows talking: its desk phone's call comes first
    await watcher.answer()

    assert pbx.presence.state(COMPANY, "202").value == "talking"
    assert sorted(watcher.states()[-1]) == [("confirmed", "recipient"), ("early", "initiator")]


async def test_a_ringing_lamp_carries_what_a_pickup_needs() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs)
    desk = pbx.phone("bob-desk")
    await pbx.phone("carol").dial("202")
    await watcher.answer()
    notified = next(d for d in watcher.document().dialogs if d.call_id == desk.invite.call_id)
    await desk.ring()  # its 180 brings its tag: the early dialog is complete

    entry = next(d for d in subs.dialogs(COMPANY, "202", "Bob") if d.id == notified.id)

    invite = desk.invite
    assert entry.state == "early" and entry.direction == "recipient"
    assert entry.remote_tag == invite.from_addr.tag  # the PBX's tag
    assert entry.local_tag and entry.local_tag != entry.remote_tag  # the phone's, from its 180
    assert entry.local is not None and entry.local.identity == f"sip:202@{ADVERTISE}"
    assert entry.local.display == "Bob"
    assert entry.remote is not None
    assert (entry.remote.identity, entry.remote.display) == (f"sip:203@{ADVERTISE}", "Carol")
    assert entry.remote.target == f"sip:*8202@{ADVERTISE}"  # dialled, it picks the call up


async def test_the_caller_side_shows_as_initiator_and_a_held_call_as_not_rendering() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs, target="203")
    carol, desk = pbx.phone("carol"), pbx.phone("bob-desk")
    await carol.dial("202")
    await watcher.answer()
    await desk.answer()
    await watcher.answer()
    await desk.hold()
    await watcher.answer()

    dialled, talking, held = (watcher.document(n).dialogs for n in watcher.notifies()[1:])
    assert [(d.state, d.direction) for d in dialled] == [("early", "initiator")]
    assert dialled[0].remote is not None and dialled[0].remote.identity == f"sip:202@{ADVERTISE}"
    assert [(d.state, d.direction) for d in talking] == [("confirmed", "initiator")]
    assert held[0].local is not None and held[0].local.params == (("+sip.rendering", "no"),)


async def test_changes_in_one_go_make_one_notify_and_none_while_one_is_unanswered() -> None:
    pbx = office()
    watcher = await watching(pbx, lamps(pbx))
    desk = pbx.phone("bob-desk")

    await pbx.phone("carol").dial("202")  # ringing: a NOTIFY, left unanswered
    await desk.answer()  # talking
    await desk.hang_up()  # idle
    assert len(watcher.notifies()) == 2

    await watcher.answer()  # then the state now, in one more

    assert len(watcher.notifies()) == 3
    assert watcher.states()[-1] == [("terminated", "recipient")]


async def test_a_device_username_of_another_company_is_forbidden() -> None:
    pbx = office()
    subs = lamps(pbx)
    pbx.directory.extensions[(OTHER_COMPANY, "202")] = ExtensionInfo(
        OTHER_COMPANY, "202", "Zed", ("zed",)
    )
    pbx.directory.devices["zed"] = DeviceInfo("zed", "centralino", "", "", OTHER_COMPANY, "202")
    watcher = Watcher(pbx, subs, pbx.phone("alice"))

    assert (await watcher.subscribe("zed")).status == 403
    assert (await watcher.subscribe("bob-mobile")).status == 200  # a colleague's device: fine


async def test_an_extension_number_is_looked_up_in_the_phones_own_company() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = Watcher(pbx, subs, pbx.phone("alice"))

    from_elsewhere = await watcher.subscribe("202", company=OTHER_COMPANY)
    unknown = await watcher.subscribe("299")

    assert (from_elsewhere.status, unknown.status) == (404, 404)


async def test_a_subscription_for_an_unknown_package_is_a_bad_event() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))

    refused = await watcher.subscribe("202", "conference")

    assert refused.status == 489
    assert refused.headers.get("Allow-Events") == "message-summary, dialog, presence"


async def test_an_interval_too_brief_is_refused_with_the_minimum() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))

    refused = await watcher.subscribe("202", expires=30)

    assert refused.status == 423
    assert refused.headers.get("Min-Expires") == "60"


async def test_a_long_wish_is_shortened_to_the_maximum() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))

    ok = await watcher.subscribe("202", expires=86400)

    assert ok.headers.get("Expires") == "3600"
    assert watcher.last.headers.get("Subscription-State") == "active;expires=3600"


async def test_a_subscribe_with_expires_zero_only_fetches_the_state() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = Watcher(pbx, subs, pbx.phone("alice"))

    ok = await watcher.subscribe("202", expires=0)

    assert ok.headers.get("Expires") == "0"
    assert watcher.last.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert len(subs) == 0


# --- refresh, end, expiry (RFC 6665) ----------------------------------------------------------


async def test_a_refresh_in_the_dialog_grants_more_time_and_notifies() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs)
    await pbx.advance(500)

    ok = await watcher.resubscribe(600)

    assert (ok.status, ok.headers.get("Expires")) == (200, "600")
    assert watcher.last.headers.get("Subscription-State") == "active;expires=600"
    await watcher.answer()
    await pbx.advance(599)
    assert subs.watching(Package.DIALOG, COMPANY, "202")  # the first 600 s are long past


async def test_an_unsubscribe_is_answered_and_ends_with_a_last_notify() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs)

    ok = await watcher.resubscribe(0)

    assert (ok.status, ok.headers.get("Expires")) == (200, "0")
    assert watcher.last.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert len(subs) == 0
    await watcher.answer()
    await pbx.phone("carol").dial("202")
    assert len(watcher.notifies()) == 2  # nothing after the end


async def test_a_refresh_of_a_subscription_that_is_gone_is_481() -> None:
    pbx = office()
    watcher = await watching(pbx, lamps(pbx))
    await watcher.resubscribe(0)

    assert (await watcher.resubscribe(600)).status == 481


async def test_a_refresh_for_another_package_in_the_dialog_is_481() -> None:
    pbx = office()
    watcher = await watching(pbx, lamps(pbx))

    assert (await watcher.resubscribe(600, event="message-summary")).status == 481
    assert (await watcher.resubscribe(30)).status == 423


async def test_a_subscription_not_refreshed_expires_with_a_last_notify() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs)

    await pbx.advance(599)
    assert len(subs) == 1
    await pbx.advance(1)

    assert watcher.last.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert len(subs) == 0


async def test_a_notify_answered_481_removes_the_subscription() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs)
    await pbx.phone("carol").dial("202")

    await watcher.answer(481)

    assert len(subs) == 0
    await pbx.advance(3600)  # its expiry timer is gone too: no last NOTIFY
    assert len(watcher.notifies()) == 2


async def test_a_notify_nobody_answers_removes_the_subscription() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = await watching(pbx, subs)
    await pbx.phone("carol").dial("202")

    await watcher.answer(0)  # the transaction timed out

    assert len(subs) == 0


async def test_close_cancels_the_expiry_timers() -> None:
    pbx = office()
    subs = lamps(pbx)
    await watching(pbx, subs)

    subs.close()

    assert len(subs) == 0
    assert pbx.clock.next_due() is None
