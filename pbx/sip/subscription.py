"""One subscription as RFC 6665 runs it at the notifier: what a SUBSCRIBE asks for, how long
it lasts, its state table, what each NOTIFY says and when the next may go.

Sans-IO: the time comes in as an argument, NOTIFYs go out as `Request`s for the caller to
send, and their responses come back through `responded()`. The engine's side (SIP in and
out, timers, what the lamps show) is pbx/engine/subscriptions.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from pbx.sip.dialog import Dialog, DialogId
from pbx.sip.event_bodies import (
    DIALOG_INFO_TYPE,
    MESSAGE_SUMMARY_TYPE,
    PIDF_TYPE,
    DialogEntry,
    DialogInfo,
    Presence,
)
from pbx.sip.headers import Via
from pbx.sip.message import Request, Response

Addr = tuple[str, int]


class Package(enum.Enum):
    """The event packages we notify, and the body type of each."""

    MESSAGE_SUMMARY = "message-summary"  # RFC 3842: the message-waiting lamp
    DIALOG = "dialog"  # RFC 4235: busy lamps
    PRESENCE = "presence"  # RFC 3856: softphones' buddy lists

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]

    @property
    def watches_an_extension(self) -> bool:
        """Busy lamps and presence watch any extension of the company; message-summary only
        the subscriber's own mailbox."""
        return self is not Package.MESSAGE_SUMMARY


_CONTENT_TYPES = {
    Package.MESSAGE_SUMMARY: MESSAGE_SUMMARY_TYPE,
    Package.DIALOG: DIALOG_INFO_TYPE,
    Package.PRESENCE: PIDF_TYPE,
}


ALLOW_EVENTS = ", ".join(p.value for p in Package)


class State(enum.Enum):
    ACTIVE = "active"
    TERMINATED = "terminated"


# No "pending": a phone may watch what it asks for, or it is refused at once (403).
_TRANSITIONS: dict[State, frozenset[State]] = {
    State.ACTIVE: frozenset({State.ACTIVE, State.TERMINATED}),  # refreshed, or over
    State.TERMINATED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


class Refused(Exception):
    """A SUBSCRIBE to answer with an error `status` (and these headers)."""

    def __init__(
        self, status: int, reason: str | None = None, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(f"{status} {reason or ''}".strip())
        self.status, self.reason, self.headers = status, reason, headers


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """How long subscriptions last (RFC 6665 4.2.1.1): the phone's wish, within our bounds."""

    minimum: int = 60
    maximum: int = 3600
    default: int = 3600  # RFC 3842 and RFC 4235 both say an hour when the phone names none

    def grant(self, requested: int | None) -> int:
        """The duration to answer with; 0 ends a subscription (or only fetches the state).

        Raises:
            Refused: 423 with Min-Expires when 0 < requested < minimum.
        """
        if requested is None:
            return min(self.default, self.maximum)
        if requested == 0:
            return 0
        if requested < self.minimum:
            raise Refused(423, headers=(("Min-Expires", str(self.minimum)),))
        return min(requested, self.maximum)


def parse_event(value: str) -> tuple[str, str | None]:
    """An Event header's package (lower-cased) and its id parameter (RFC 6665)."""
    package, *params = (part.strip() for part in value.split(";"))
    event_id = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "id":
            event_id = val.strip()
    return package.lower(), event_id


def accepts(request: Request, content_type: str) -> bool:
    """Whether a SUBSCRIBE's Accept (none: the package's default) takes `content_type`."""
    values = request.headers.get_all("Accept")
    if not values:
        return True
    kinds = {kind.split(";", 1)[0].strip().lower() for v in values for kind in v.split(",")}
    return bool(kinds & {content_type, content_type.split("/")[0] + "/*", "*/*"})


def check_subscribe(request: Request, policy: ExpiryPolicy) -> tuple[Package, str | None, int]:
    """What a SUBSCRIBE asks for: (package, event id, granted expires).

    Raises:
        Refused: 489 with Allow-Events for a package we do not notify, 406 when its Accept
            refuses our body type, 423 for an interval too brief.
    """
    name, event_id = parse_event(request.headers.get("Event") or "")
    try:
        package = Package(name)
    except ValueError:
        raise Refused(489, headers=(("Allow-Events", ALLOW_EVENTS),)) from None
    if not accepts(request, package.content_type):
        raise Refused(406, headers=(("Accept", package.content_type),))
    value = request.headers.get("Expires")  # the stack lets in digits only
    return package, event_id, policy.grant(int(value) if value is not None else None)


class Next(enum.Enum):
    """What to do once a NOTIFY's response came (`Subscription.responded`)."""

    WAIT = "wait"  # a provisional: the final one is still to come
    DONE = "done"  # nothing more to say for now
    AGAIN = "again"  # the state changed while it was in flight: send one more
    FAILED = "failed"  # the phone is gone or refuses: remove the subscription


@dataclass(eq=False)
class Subscription:
    """One subscription: what it watches, its dialog, its time, and what it last said."""

    package: Package
    resource: tuple[int, str]  # (company, extension): the mailbox or the watched extension
    watcher: str  # the device that subscribed
    dialog: Dialog
    peer: Addr  # where its SUBSCRIBE came from: where NOTIFYs go (NAT-safe)
    transport: str
    expires_at: float
    event_id: str | None = None
    name: str = ""  # the watched extension's display name
    state: State = State.ACTIVE
    reason: str = ""  # why it ended, once terminated
    counts: tuple[int, int] = (0, 0)  # message-summary: (new, heard)
    version: int = 0  # dialog: the version of the next document (RFC 4235: from 0, +1 each)
    shown: dict[str, DialogEntry] = field(default_factory=dict)  # in the last document
    presence: Presence | None = None  # presence: what the last document said
    sending: bool = False  # a NOTIFY waits for its response...
    again: bool = False  # ...and something changed meanwhile
    final_sent: bool = False  # the NOTIFY that says terminated is gone: nothing more

    @property
    def id(self) -> DialogId:
        return self.dialog.id

    @property
    def active(self) -> bool:
        return self.state is State.ACTIVE

    def _move(self, new: State) -> None:
        if new not in _TRANSITIONS[self.state]:
            raise IllegalTransition(f"subscription {self.dialog.call_id}: {self.state} -> {new}")
        self.state = new

    def refresh(self, expires: int, now: float) -> None:
        """Granted `expires` seconds more from `now`."""
        self._move(State.ACTIVE)
        self.expires_at = now + expires

    def end(self, reason: str) -> None:
        self._move(State.TERMINATED)
        self.reason = reason

    def remaining(self, now: float) -> int:
        return max(0, round(self.expires_at - now))

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def subscription_state(self, now: float) -> str:
        """The Subscription-State header of a NOTIFY sent at `now`."""
        if self.active:
            return f"active;expires={self.remaining(now)}"
        return f"terminated;reason={self.reason}" if self.reason else "terminated"

    @property
    def event(self) -> str:
        """The Event header of its NOTIFYs: the package, and the id the phone gave."""
        return self.package.value + (f";id={self.event_id}" if self.event_id else "")

    def next_document(self, entity: str, current: list[DialogEntry]) -> DialogInfo:
        """The next full-state dialog-info: the `current` dialogs and, once, as terminated,
        those of the last document that have ended (some phones wait for a terminated
        dialog to switch a lamp off)."""
        ids = {entry.id for entry in current}
        ended = [replace(e, state="terminated") for i, e in self.shown.items() if i not in ids]
        self.shown = {entry.id: entry for entry in current}
        document = DialogInfo(entity, self.version, (*current, *ended))
        self.version += 1
        return document

    # --- NOTIFYs, one at a time --------------------------------------------------------

    def may_notify(self) -> bool:
        """Whether a NOTIFY may go now. One in flight: the next waits for its response (so
        that the phone never sees two out of order); after the final one, nothing."""
        if self.final_sent:
            return False
        if self.sending:
            self.again = True
            return False
        return True

    def notify(self, body: bytes, now: float, *, via: Via, contact: str) -> Request:
        """The NOTIFY that tells the state now with `body` (check `may_notify` first)."""
        request, _ = self.dialog.create_request(
            "NOTIFY",
            via=via,
            contact=contact,
            body=body,
            content_type=self.package.content_type,
            extra_headers=(
                ("Event", self.event),
                ("Subscription-State", self.subscription_state(now)),
            ),
        )
        self.sending, self.again = True, False
        self.final_sent = not self.active
        return request

    def responded(self, response: Response | None) -> Next:
        """The response to our NOTIFY (None: it timed out). RFC 6665 4.2.2: a NOTIFY that
        failed (no answer, or an error without Retry-After: 481, 408...) ends the
        subscription."""
        if response is not None and response.status < 200:
            return Next.WAIT
        self.sending = False
        if response is None or (response.status >= 300 and "Retry-After" not in response.headers):
            self.again = False
            if self.active:
                self.end("giveup")
            return Next.FAILED
        if self.again and not self.final_sent:
            return Next.AGAIN
        return Next.DONE
