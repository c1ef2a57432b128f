"""What can be done with calls, whoever asks: hold, resume, transfer, join, hang up.

The SIP handlers (dialogs.py: re-INVITE, UPDATE, REFER) and the engine's commands
(commands.py: the console, the API) both come here; nothing here knows SIP requests. A
transfer is awaited: its outcome says whether the transferee now talks to the target, and the
caller decides what to tell (a NOTIFY) and whom to hang up.
"""

from __future__ import annotations

import logging
from typing import Any

from pbx.engine.call import Call, CallState, Outcome, Status
from pbx.engine.calls import CallManager
from pbx.engine.legs import Leg
from pbx.engine.media import bridge
from pbx.engine.routing import Party
from pbx.engine.services import Clock

log = logging.getLogger(__name__)

HANG_UP_REFERRER_AFTER = 2.0  # seconds a referrer gets to hang up by itself after a transfer


class OperationError(Exception):
    """A call operation that cannot be done now; `code` is for machines, the text for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CallOperations:
    def __init__(self, calls: CallManager, *, moh: Any, clock: Clock) -> None:
        self.calls = calls
        self.moh = moh
        self.clock = clock

    # --- hold ------------------------------------------------------------------------------

    def hold(self, leg: Leg) -> None:
        """The party on `leg` holds: the other party hears music."""
        self._set_hold(leg, True)

    def resume(self, leg: Leg) -> None:
        """The party on `leg` takes the call back: the other party hears it again."""
        self._set_hold(leg, False)

    def _set_hold(self, leg: Leg, held: bool) -> None:
        call = self.calls.call_of(leg)
        other = call.other(leg) if call is not None else None
        if call is None or other is None:
            leg.set_hold(held)  # alone for now (a transfer rings): remember it all the same
            return
        if held and not leg.remote_hold:
            leg.set_hold(True)
            log.info("call %s: %s holds, %s hears music", call.id[:8], leg.label, other.label)
            other.media.play(self.moh)
        elif not held and leg.remote_hold:
            leg.set_hold(False)
            log.info("call %s: %s resumes", call.id[:8], leg.label)
            other.media.listen_to(leg.media)

    # --- transfers -------------------------------------------------------------------------

    async def transfer_blind(self, call: Call, referrer: Leg, number: str) -> Outcome:
        """Send the party `referrer` talks to in `call` to `number`; it hears music meanwhile.

        Returns the outcome: answered (the transferee now talks to the target in a new call)
        or the failure status, the transferee then back with the referrer if still there.
        """
        transferee = self._transferee(call, referrer)
        party = party_of(call, transferee)
        was_caller = transferee is call.a
        call.move(CallState.TRANSFERRING)
        self.calls.detach(call, transferee)
        transferee.media.play(self.moh)
        log.info("call %s: blind transfer of %s to %s", call.id[:8], transferee.label, number)
        placed = self.calls.place(transferee, party, number)
        return await self._handed_off(call, referrer, transferee, placed, was_caller)

    async def transfer_to_ringing(self, call: Call, referrer: Leg, consulting: Leg) -> Outcome:
        """Transfer to a consultation call that still rings: the transferee takes it over.

        The referrer's own INVITE of that call gets 487; the target keeps ringing, now for the
        transferee, and the outcome is as for a blind transfer.
        """
        consult = self.calls.call_of(consulting)
        transferee = self._transferee(call, referrer)
        if consult is None or consult.state is not CallState.RINGING:
            raise OperationError("no_such_call", "the consultation call no longer rings")
        was_caller = transferee is call.a
        call.move(CallState.TRANSFERRING)
        self.calls.detach(call, transferee)
        transferee.media.play(self.moh)
        self.calls.take_over(consult, consulting, transferee)
        log.info(
            "call %s: semi-attended transfer of %s to %s, still ringing",
            call.id[:8],
            transferee.label,
            consult.dialled,
        )
        return await self._handed_off(call, referrer, transferee, consult, was_caller)

    async def _handed_off(
        self, call: Call, referrer: Leg, transferee: Leg, placed: Call, was_caller: bool
    ) -> Outcome:
        outcome = await placed.outcome
        if outcome.answered is not None:
            return outcome
        if transferee.ended:  # it hung up while the target rang
            self.calls.dialogs.remove(transferee)
            return Outcome(None, Status.REQUEST_TERMINATED)
        if not referrer.ended and call.state is CallState.TRANSFERRING:
            self.calls.rejoin(call, transferee, as_caller=was_caller)  # its party back
            bridge(transferee.media, referrer.media)
            if referrer.remote_hold:  # it held before transferring: the music goes on
                transferee.media.play(self.moh)
            call.move(CallState.ANSWERED)
        else:
            self.calls.dialogs.remove(transferee)
            transferee.hangup()
        return outcome

    def join(self, call: Call, referrer: Leg, other_leg: Leg) -> None:
        """Attended transfer: the party `referrer` talks to in `call` and the party
        `other_leg` talks to in another call talk to each other; `referrer` and `other_leg`
        (the transferring user's two legs) are left out, to be hung up."""
        other_call = self.calls.call_of(other_leg)
        transferee = self._transferee(call, referrer)
        target = other_call.other(other_leg) if other_call is not None else None
        if other_call is None or target is None:
            raise OperationError("no_such_call", "the other call has ended")
        if other_call.state is CallState.ANSWERED:
            other_call.move(CallState.TRANSFERRING)
        self.calls.detach(other_call, target)
        self.calls.replace(call, referrer, target)
        bridge(transferee.media, target.media)
        transferee.set_hold(False)
        target.set_hold(False)
        log.info(
            "call %s: attended transfer joins %s and %s",
            call.id[:8],
            transferee.label,
            target.label,
        )

    def _transferee(self, call: Call, referrer: Leg) -> Leg:
        transferee = call.other(referrer)
        if call.state is not CallState.ANSWERED or transferee is None:
            raise OperationError("not_answered", "the call is not answered")
        return transferee

    # --- hanging up --------------------------------------------------------------------------

    def hangup(self, call: Call, reason: str = "hangup") -> None:
        self.calls.hangup_call(call, reason)

    def hang_up_later(self, leg: Leg, reason: str = "transferred") -> None:
        """A referrer normally hangs up after its transfer; do it for it if it does not."""

        def later() -> None:
            if not leg.ended:
                self.calls.hangup_leg(leg, reason)

        self.clock.call_later(HANG_UP_REFERRER_AFTER, later)


def party_of(call: Call, leg: Leg) -> Party:
    """Who `leg` is, as a caller of a new call."""
    if leg is call.a:
        return call.caller
    return Party(call.caller.company_id, leg.label, "", leg.device)
