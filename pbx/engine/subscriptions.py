"""Lamps on phones: subscriptions (RFC 6665) to message waiting (RFC 3842), busy lamps
(RFC 4235) and presence (RFC 3856), the engine's side.

A phone SUBSCRIBEs to its own mailbox (Event: message-summary) or to another extension of
its company (Event: dialog, or presence for a softphone's buddy list); the engine has
authenticated it as any request out of a dialog. We answer 200 with the Expires we grant and
a NOTIFY at once, then one whenever the mailbox (`MailboxChanged`) or the extension
(`ExtensionStateChanged`, and for presence `RegistrationChanged`) changes, all in the
subscription's dialog. A SUBSCRIBE in that dialog refreshes it, with Expires: 0 ends it; so do
its expiry (a last NOTIFY "terminated;reason=timeout") and a NOTIFY that fails (no answer,
481...). Phones that do not subscribe can be sent unsolicited message-summary NOTIFYs.

What decides is pure and takes the time as an argument: the subscription and its state table
(pbx/sip/subscription.py), the bodies (pbx/sip/event_bodies.py), and here what a busy lamp
shows of a leg (`phone_dialog`). `Subscriptions` does the rest: SIP in and out, timers, the
directory and the mailbox counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pbx.engine.events import (
    Event,
    ExtensionKey,
    ExtensionState,
    ExtensionStateChanged,
    LegChanged,
    MailboxChanged,
    RegistrationChanged,
)
from pbx.engine.legs import Leg, LegState
from pbx.sip.dialog import Dialog, DialogId
from pbx.sip.errors import SipParseError
from pbx.sip.event_bodies import (
    MESSAGE_SUMMARY_TYPE,
    ON_THE_PHONE,
    DialogEntry,
    MessageSummary,
    Participant,
)
from pbx.sip.event_bodies import Presence as PresenceDocument
from pbx.sip.headers import Headers
from pbx.sip.ids import new_call_id, new_tag
from pbx.sip.message import Request, Response, make_response
from pbx.sip.subscription import (
    ExpiryPolicy,
    Next,
    Package,
    Refused,
    Subscription,
    check_subscribe,
)
from pbx.sip.uri import SipUri

if TYPE_CHECKING:
    from pbx.engine.calls import CallManager
    from pbx.engine.directory import DeviceInfo, Directory
    from pbx.engine.presence import Presence
    from pbx.engine.services import Clock, Contacts, MessageCounts, SipSender, Tasks, Timer

log = logging.getLogger(__name__)

Addr = tuple[str, int]
RENDERING_OFF = (("+sip.rendering", "no"),)  # RFC 4235: the local target of a held call


def phone_dialog(
    leg: Leg, host: str, number: str, name: str, pickup_uri: str, held: bool = False
) -> DialogEntry:
    """What a busy lamp shows of one phone leg of the watched extension `number` (`held`:
    its call is on hold, either side).

    A leg we are ringing shows the early dialog a phone needs to take it over (its Call-ID
    and tags, for an INVITE with Replaces), and the directed pickup URI as the remote target.
    """
    me = f"sip:{number}@{host}"
    answered = leg.state is LegState.ANSWERED
    state = "confirmed" if answered else "early"
    invite = leg.invite
    if leg.role == "uac":  # we called the phone: it is the recipient
        direction = "recipient"
        local_tag = (leg.dialog.remote_tag or "") if leg.dialog is not None else leg.remote_tag
        remote_tag = invite.from_addr.tag or ""
        other = invite.from_addr
        target = pickup_uri if not answered and pickup_uri else str(other.uri)
    else:  # the phone called
        direction = "initiator"
        local_tag, remote_tag = invite.from_addr.tag or "", leg.local_tag
        other = invite.to_addr
        target = str(other.uri)
    return DialogEntry(
        id=f"leg-{leg.id}",
        state=state,
        direction=direction,
        call_id=invite.call_id,
        local_tag=local_tag,
        remote_tag=remote_tag,
        local=Participant(me, name, me, RENDERING_OFF if held else ()),
        remote=Participant(str(other.uri), other.display or "", target),
    )


def shown_state(state: ExtensionState, host: str, number: str, name: str) -> list[DialogEntry]:
    """A busy lamp from the extension's state alone (no leg of a call to describe it)."""
    if state is ExtensionState.IDLE:
        return []
    me = f"sip:{number}@{host}"
    held = state is ExtensionState.HELD
    return [
        DialogEntry(
            id=f"{number}-{state.value}",
            state="early"
            if state in (ExtensionState.RINGING, ExtensionState.DIALLING)
            else "confirmed",
            direction="recipient" if state is ExtensionState.RINGING else "initiator",
            local=Participant(me, name, me, RENDERING_OFF if held else ()),
        )
    ]


# What a buddy list reads of a reachable extension (PIDF <note>).
_NOTES = {
    ExtensionState.IDLE: "Available",
    ExtensionState.RINGING: "Ringing",
    ExtensionState.DIALLING: "On the phone",
    ExtensionState.TALKING: "On the phone",
    ExtensionState.HELD: "On the phone",
}

_SHOWN_LEGS = frozenset({LegState.INCOMING, LegState.CALLING, LegState.RINGING, LegState.ANSWERED})


class Subscriptions:
    """The engine's notifier: takes SUBSCRIBEs, sends NOTIFYs, keeps subscriptions alive."""

    def __init__(
        self,
        *,
        stack: SipSender,
        clock: Clock,
        tasks: Tasks,
        directory: Directory,
        counts: MessageCounts,
        presence: Presence,
        calls: CallManager,
        contacts: Contacts,
        policy: ExpiryPolicy | None = None,
        unsolicited: bool = False,
        pickup_code: str = "",
    ) -> None:
        self.stack = stack
        self.clock = clock
        self.tasks = tasks
        self.directory = directory
        self.counts = counts
        self.presence = presence
        self.calls = calls
        self.contacts = contacts
        self.policy = policy or ExpiryPolicy()
        self.unsolicited = unsolicited  # message-summary to phones that did not subscribe
        self.pickup_code = pickup_code
        self._by_dialog: dict[DialogId, Subscription] = {}
        self._watching: dict[tuple[Package, ExtensionKey], dict[DialogId, Subscription]] = {}
        self._dirty: set[ExtensionKey] = set()  # watched extensions changed since the flush
        self._flush: asyncio.Handle | None = None
        # One counts fetch at a time per mailbox, so that results apply in the order asked.
        self._fetching: dict[ExtensionKey, tuple[asyncio.Lock, list[int]]] = {}
        self._timers: dict[DialogId, Timer] = {}  # each live subscription's expiry
        # The phones of each extension watched for presence (its reachability), as read at
        # the last SUBSCRIBE for it.
        self._devices: dict[ExtensionKey, tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._by_dialog)

    def watching(self, package: Package, company_id: int, number: str) -> list[Subscription]:
        """The live subscriptions to one mailbox or extension, oldest first."""
        return list(self._watching.get((package, (company_id, number)), {}).values())

    # --- SUBSCRIBE -----------------------------------------------------------------------

    async def subscribe(
        self, request: Request, source: Addr, transport: str, device: DeviceInfo
    ) -> None:
        """A SUBSCRIBE out of a dialog, from `device` (authenticated): a new subscription."""
        try:
            package, event_id, expires = check_subscribe(request, self.policy)
            resource, name, devices = await self._resource(package, request, device)
            tag = new_tag()
            try:
                dialog = Dialog.from_uas(request, tag)
            except SipParseError as error:
                raise Refused(400, f"Bad Request ({error.reason})") from None
        except Refused as refusal:
            self._reply(request, refusal.status, refusal.reason, refusal.headers)
            return
        if package is Package.PRESENCE:
            self._devices[resource] = devices
        sub = Subscription(
            package,
            resource,
            watcher=device.username,
            dialog=dialog,
            peer=source,
            transport=transport,
            expires_at=self.stack.now() + expires,
            event_id=event_id,
            name=name,
        )
        self._reply(request, 200, headers=self._granted(expires, transport), to_tag=tag)
        log.info(
            "%s subscribes to %s of %s for %d s",
            device.username,
            package.value,
            resource[1],
            expires,
        )
        if expires == 0:  # a fetch (RFC 6665 polling): the state now, and over
            sub.end("timeout")
        else:
            self._keep(sub, expires)
        if package is Package.MESSAGE_SUMMARY:
            counts = await self._fetch(resource)
            if counts is not None:
                sub.counts = counts
        self._notify(sub)

    async def _resource(
        self, package: Package, request: Request, device: DeviceInfo
    ) -> tuple[ExtensionKey, str, tuple[str, ...]]:
        """The extension a SUBSCRIBE is about (its Request-URI user), checked for `device`:
        its key, display name and phones."""
        uri = request.request_uri
        user = uri.user if isinstance(uri, SipUri) and uri.user else ""
        company = device.company_id
        if package is Package.MESSAGE_SUMMARY:
            if user not in ("", device.username, device.extension):
                raise Refused(403, "Forbidden (another extension's mailbox)")
            return (company, device.extension), "", ()
        ext = await self.directory.extension(company, user) if user else None
        if ext is None and user:
            other = await self.directory.device(user)  # a device's username names its extension
            if other is not None and other.company_id != company:
                raise Refused(403, "Forbidden (another company's extension)")
            if other is not None:
                ext = await self.directory.extension(company, other.extension)
        if ext is None:
            raise Refused(404, "No such extension")
        return (company, ext.number), ext.display_name, ext.devices

    def _granted(self, expires: int, transport: str) -> tuple[tuple[str, str], ...]:
        return (("Expires", str(expires)), ("Contact", self.stack.contact(transport=transport)))

    def _reply(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
    ) -> None:
        self.stack.send_response(
            make_response(request, status, reason, to_tag=to_tag, headers=headers)
        )

    def in_dialog(self, request: Request) -> bool:
        """A SUBSCRIBE with a To tag: refresh or end its subscription; False when it names
        none of ours (the engine then answers 481)."""
        key = (request.call_id, request.to_addr.tag or "", request.from_addr.tag)
        sub = self._by_dialog.get(key)
        if sub is None:
            return False
        error = sub.dialog.receive_request(request)
        if error is not None:
            self.stack.send_response(error)
            return True
        try:
            package, event_id, expires = check_subscribe(request, self.policy)
            if package is not sub.package or event_id != sub.event_id:
                raise Refused(481, "Subscription Does Not Exist")
        except Refused as refusal:
            self._reply(request, refusal.status, refusal.reason, refusal.headers)
            return True
        self._reply(request, 200, headers=self._granted(expires, sub.transport))
        if expires == 0:
            self._end(sub, "timeout")
            return True
        sub.refresh(expires, self.stack.now())
        self._keep(sub, expires)
        self._notify(sub)  # RFC 6665: a refresh is answered by a NOTIFY too
        return True

    def _keep(self, sub: Subscription, expires: int) -> None:
        """Index a live subscription and (re)arm its expiry."""
        self._by_dialog[sub.id] = sub
        self._watching.setdefault((sub.package, sub.resource), {})[sub.id] = sub
        timer = self._timers.pop(sub.id, None)
        if timer is not None:
            timer.cancel()
        self._timers[sub.id] = self.clock.call_later(expires, lambda: self._expired(sub))

    def _expired(self, sub: Subscription) -> None:
        self._timers.pop(sub.id, None)
        if sub.active:
            log.info("subscription of %s to %s expired", sub.watcher, sub.resource[1])
            self._end(sub, "timeout")

    def _end(self, sub: Subscription, reason: str) -> None:
        """Terminate `sub`: forgotten at once, told so by a last NOTIFY."""
        sub.end(reason)
        self._forget(sub)
        self._notify(sub)

    def _forget(self, sub: Subscription) -> None:
        self._by_dialog.pop(sub.id, None)
        watchers = self._watching.get((sub.package, sub.resource))
        if watchers is not None:
            watchers.pop(sub.id, None)
            if not watchers:
                del self._watching[(sub.package, sub.resource)]
        timer = self._timers.pop(sub.id, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """The engine stops: cancel every timer (the phones resubscribe to the next run)."""
        for sub in list(self._by_dialog.values()):
            self._forget(sub)
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None

    # --- NOTIFY --------------------------------------------------------------------------

    def _notify(self, sub: Subscription) -> None:
        """Send `sub` its state now (or once the NOTIFY in flight is answered)."""
        if not sub.may_notify():
            return
        transport = sub.transport
        request = sub.notify(
            self._body(sub),
            self.stack.now(),
            via=self.stack.via(transport),
            contact=self.stack.contact(transport=transport),
        )
        self.stack.send_request(
            request, sub.peer, transport, lambda response: self._notified(sub, response)
        )

    def _notified(self, sub: Subscription, response: Response | None) -> None:
        was_active = sub.active
        next_step = sub.responded(response)
        if next_step is Next.AGAIN:
            self._notify(sub)
        elif next_step is Next.FAILED and was_active:
            why = "no answer" if response is None else response.status
            log.info("NOTIFY to %s failed (%s): subscription removed", sub.watcher, why)
            self._forget(sub)

    def _body(self, sub: Subscription) -> bytes:
        host = self.stack.advertise
        company, number = sub.resource
        if sub.package is Package.MESSAGE_SUMMARY:
            new, old = sub.counts
            return bytes(MessageSummary.of_counts(new, old, f"sip:{number}@{host}"))
        if sub.package is Package.PRESENCE:
            sub.presence = self.presence_of(company, number)
            return bytes(sub.presence)
        current = self.dialogs(company, number, sub.name)
        return bytes(sub.next_document(f"sip:{number}@{host}", current))

    def presence_of(self, company_id: int, number: str) -> PresenceDocument:
        """What a buddy list shows of an extension: reachable while one of its phones is
        registered, "on the phone" while one rings, dials, talks or holds."""
        now = self.stack.now()
        devices = self._devices.get((company_id, number), ())
        reachable = any(self.contacts.contacts(username, now) for username in devices)
        state = self.presence.state(company_id, number)
        busy = state is not ExtensionState.IDLE
        note = _NOTES[state] if reachable else "Offline"
        return PresenceDocument(
            f"sip:{number}@{self.stack.advertise}",
            reachable,
            ON_THE_PHONE if busy and reachable else "",
            note,
        )

    def dialogs(self, company_id: int, number: str, name: str = "") -> list[DialogEntry]:
        """What the busy lamp of an extension shows now: its phones' legs in calls, or its
        state alone when no call holds a leg of it (a ring from the operator console)."""
        host = self.stack.advertise
        pickup = f"sip:{self.pickup_code}{number}@{host}" if self.pickup_code else ""
        key = (company_id, number)
        entries = [
            phone_dialog(leg, host, number, name, pickup, held) for leg, held in self._legs_of(key)
        ]
        if entries:
            return entries
        return shown_state(self.presence.state(company_id, number), host, number, name)

    def _legs_of(self, key: ExtensionKey) -> Iterator[tuple[Leg, bool]]:
        """The live legs of an extension's phones, in calls and in their ringers' forks, and
        whether each one's call is on hold: a scan of the calls, done only for an extension
        somebody watches, once per change."""
        seen: set[int] = set()
        for call in self.calls.calls.values():
            held = any(leg is not None and leg.remote_hold for leg in (call.a, call.b))
            legs = [call.a, call.b]
            if call.ringer is not None:
                legs.extend(call.ringer.forks.values())
            for leg in legs:
                if (
                    leg is not None
                    and leg.extension == key
                    and leg.state in _SHOWN_LEGS
                    and leg.id not in seen
                ):
                    seen.add(leg.id)
                    yield leg, held and leg.state is LegState.ANSWERED

    # --- what changes lamps ----------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if isinstance(event, ExtensionStateChanged):
            self._changed((event.company_id, event.number))
        elif isinstance(event, LegChanged) and event.extension is not None:
            # A leg can change what a lamp shows while its extension's state stays: a ringing
            # phone's 180 completes its early dialog (the tag a pickup by Replaces names),
            # a second phone of a talking extension dials out.
            self._changed(event.extension)
        elif isinstance(event, MailboxChanged):
            self.tasks.spawn(self._mailbox_changed((event.company_id, event.number)))
        elif isinstance(event, RegistrationChanged) and event.extension:
            key = (event.company_id, event.extension)
            self._changed(key)  # a phone came or went: reachable or not (presence)
            if self.unsolicited and event.contacts:
                self.tasks.spawn(self._mailbox_changed(key, only=event.username))

    def _changed(self, key: ExtensionKey) -> None:
        if (Package.DIALOG, key) not in self._watching and (
            Package.PRESENCE,
            key,
        ) not in self._watching:
            return
        self._dirty.add(key)
        if self._flush is None:
            # After the change that emitted the event (a new fork is in its ringer only once
            # its INVITE is built); the changes of one go make one NOTIFY.
            self._flush = asyncio.get_running_loop().call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        self._flush = None
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            for sub in list(self._watching.get((Package.DIALOG, key), {}).values()):
                if sub.sending or self.dialogs(*key, sub.name) != list(sub.shown.values()):
                    self._notify(sub)
            for sub in list(self._watching.get((Package.PRESENCE, key), {}).values()):
                if sub.sending or self.presence_of(*key) != sub.presence:
                    self._notify(sub)

    async def _fetch(self, key: ExtensionKey) -> tuple[int, int] | None:
        """A mailbox's counts, asked after any fetch of it still running has been applied
        (a slow answer never overwrites a newer one); None when the store fails (the lamp
        stays as it was told)."""
        lock, users = self._fetching.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                return await self.counts.counts(*key)
        except Exception:
            log.exception("message counts of %s unavailable", key[1])
            return None
        finally:
            users[0] -= 1
            if not users[0]:
                del self._fetching[key]

    async def _mailbox_changed(self, key: ExtensionKey, only: str = "") -> None:
        """Tell a mailbox's subscribers (and, unsolicited, its phones) its new counts.

        Args:
            only: the one device to tell unsolicited (it has just registered), "" for all.
        """
        if not self.unsolicited and (Package.MESSAGE_SUMMARY, key) not in self._watching:
            return
        counts = await self._fetch(key)
        if counts is None:
            return
        subscribers = self.watching(Package.MESSAGE_SUMMARY, *key)
        for sub in subscribers:
            if not only or sub.counts != counts:
                sub.counts = counts
                self._notify(sub)
        if self.unsolicited:
            ext = await self.directory.extension(*key)
            subscribed = {sub.watcher for sub in subscribers}
            devices = [only] if only else list(ext.devices if ext is not None else ())
            for device in devices:
                if device not in subscribed:
                    self._notify_unsolicited(device, key[1], counts)

    def _notify_unsolicited(self, device: str, number: str, counts: tuple[int, int]) -> None:
        """A message-summary NOTIFY out of any dialog to each contact of `device`, for
        phones that light their lamp without subscribing."""
        host = self.stack.advertise
        body = bytes(MessageSummary.of_counts(*counts, f"sip:{number}@{host}"))
        for binding in self.contacts.contacts(device, self.stack.now()):
            headers = Headers(
                [
                    ("Via", str(self.stack.via(binding.transport))),
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:{number}@{host}>;tag={new_tag()}"),
                    ("To", f"<sip:{device}@{host}>"),
                    ("Call-ID", new_call_id(host)),
                    ("CSeq", "1 NOTIFY"),
                    ("Contact", self.stack.contact(transport=binding.transport)),
                    ("Event", Package.MESSAGE_SUMMARY.value),
                    ("Subscription-State", "active"),
                    ("Content-Type", MESSAGE_SUMMARY_TYPE),
                ]
            )
            request = Request("NOTIFY", str(binding.contact), headers, body)
            self.stack.send_request(
                request, self.stack.destination(binding), binding.transport, None
            )
