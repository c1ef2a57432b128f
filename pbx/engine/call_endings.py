"""How calls end: the voicemail hook for calls nobody answered, refusals, hang-ups from either
side, and the clean-up of a call's legs, dialogs and media. Part of `CallManager` (calls.py),
which holds the state used here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pbx.engine.call import Call, CallKind, CallState, Disposition, Outcome, Status
from pbx.engine.events import ExtensionKey
from pbx.engine.legs import DialogIndex, Leg
from pbx.engine.services import Tasks

log = logging.getLogger(__name__)


class CallEndings:
    """The ending half of `CallManager`."""

    calls: dict[str, Call]
    leg_call: dict[int, Call]
    pending_invites: dict[Any, Leg]
    dialogs: DialogIndex
    tasks: Tasks
    on_voicemail: Callable[[Call, ExtensionKey], Awaitable[bool]] | None

    def unavailable(
        self, call: Call, reason: str, status: int = Status.UNAVAILABLE, *, voicemail: str = ""
    ) -> None:
        """THE voicemail hook: no answer, busy, do-not-disturb, unreachable.

        The caller is taken by the voicemail of the extension concerned: the one `voicemail`
        names (do-not-disturb, busy, a hunt group's fallback, a menu key), else the extension
        the call rang. Without one, when its mailbox is off, without voicemail on this engine,
        or for a transfer (whoever transferred decides), the caller gets `status` (480, or
        486 when busy) and the call ends.
        """
        mailbox = self._mailbox_of(call, voicemail)
        if (
            mailbox is None
            or self.on_voicemail is None
            or _placer_decides(call)
            or call.state not in (CallState.ROUTING, CallState.RINGING)
        ):
            self._end_unanswered(call, status, reason)
            return
        self.tasks.spawn(self._to_voicemail(call, mailbox, reason, status))

    @staticmethod
    def _mailbox_of(call: Call, voicemail: str) -> ExtensionKey | None:
        if voicemail:
            return (call.caller.company_id, voicemail)
        route = call.route
        if route is None or route.hunt is not None:  # a group's own fallback decides
            return None
        return route.extension_key

    async def _to_voicemail(
        self, call: Call, mailbox: ExtensionKey, reason: str, status: int
    ) -> None:
        assert self.on_voicemail is not None
        try:
            taken = await self.on_voicemail(call, mailbox)
        except Exception:
            log.exception("call %s: voicemail of %s failed", call.id[:8], mailbox[1])
            taken = False
        if not taken:
            self._end_unanswered(call, status, reason)

    def refuse(self, call: Call, status: int, reason: str) -> None:
        """End a call not answered yet with `status`, without the voicemail hook: what it
        asked for cannot be done (a pickup with nothing ringing)."""
        self._end_unanswered(call, status, reason)

    def _end_unanswered(self, call: Call, status: int, reason: str) -> None:
        if call.state is CallState.ENDED:
            return
        disposition = Disposition.of_status(status)
        if _placer_decides(call):
            # Placed for a party already in a conversation (a transfer): that party stays as
            # it is; whoever placed the call decides what becomes of it.
            call.settle(Outcome(None, status))
            self._close(call, disposition, reason, keep=call.a)
            return
        a = call.a
        self.pending_invites.pop(a.server_key, None)
        if a.unanswered:
            a.respond(status)
        elif not a.ended:  # answered by the PBX (a menu) and sent on in vain: hang up
            a.hangup()
            disposition = Disposition.ANSWERED
        self._close(call, disposition, reason)

    def leg_ended(self, leg: Leg, reason: str) -> None:
        """`leg` ended (BYE received, no ACK, hung up by a feature): end what depends on it."""
        call = self.leg_call.get(leg.id)
        if call is None:
            self.dialogs.remove(leg)  # a leg a transfer left behind
            return
        if call.state is CallState.ENDED:
            return
        if not call.talking:
            if leg is call.a and call.kind is CallKind.HANDOFF:
                self._end_unanswered(call, Status.REQUEST_TERMINATED, reason)
            elif leg is call.a:
                self._close(call, Disposition.CANCELLED, reason)
            return
        other = call.other(leg)
        if other is not None and not other.ended:
            other.hangup()
        self._close(call, Disposition.ANSWERED, reason)

    def hangup_leg(self, leg: Leg, reason: str) -> None:
        """Hang up one leg from our side, and end what depends on it."""
        leg.hangup()
        self.leg_ended(leg, reason)

    def hangup_call(self, call: Call, reason: str = "hangup") -> None:
        """End a call from our side, whatever its state."""
        if call.state is CallState.ENDED:
            return
        disposition = Disposition.ANSWERED if call.talking else Disposition.CANCELLED
        if call.ringer is not None:
            call.ringer.stop()
        for leg in (call.a, call.b):
            if leg is not None and not leg.ended:
                leg.hangup()
        self._close(call, disposition, reason)

    def _close(
        self, call: Call, disposition: Disposition, reason: str, keep: Leg | None = None
    ) -> None:
        """Forget the call and release its legs' dialogs and media, except `keep`'s."""
        if call.state is CallState.ENDED:
            return
        call.move(CallState.ENDED, disposition=disposition, reason=reason)
        if call.ringer is not None:
            call.ringer.stop()
            call.ringer = None
        for leg in (call.a, call.b):
            if leg is None:
                continue
            if self.leg_call.get(leg.id) is call:
                del self.leg_call[leg.id]
            if leg is keep:
                continue
            self.dialogs.remove(leg)
            if leg.owns_media:
                leg.media.close()
        if call.b_media is not None:
            call.b_media.close()
            call.b_media = None
        self.pending_invites.pop(call.a.server_key, None)
        self.calls.pop(call.id, None)
        call.settle(Outcome(None, Status.REQUEST_TERMINATED))


def _placer_decides(call: Call) -> bool:
    """Whether what becomes of `call` if it fails is for whoever placed it to decide: a
    handoff (a transfer), until the PBX took the party itself (a Multiselection answered it, and
    the transfer was done); from then on it is a call the PBX answered, like any other."""
    if call.kind is not CallKind.HANDOFF:
        return False
    return not (call.outcome.done() and call.outcome.result().answered is not None)
