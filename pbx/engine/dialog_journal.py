"""Crash recovery for calls: every answered leg's dialog is kept in a journal until the leg
ends, so that the next start of a crashed engine can send a BYE on each dialog it lost.

Without it, a `kill -9` (or a power cut) of the engine leaves both phones of every call in
silence until someone hangs up by hand. `JournalWriter` subscribes to the engine's events and
keeps the journal (services.py `DialogJournal`; the database in pbx/dialog_store.py);
`end_lost_dialogs()` runs at start, once the SIP port is bound and before calls are served.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pbx.engine.events import Event, LegChanged
from pbx.engine.legs import LegState
from pbx.engine.services import Addr, DialogJournal, SavedDialog, SipSender
from pbx.sip.dialog import Dialog
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddr, Via
from pbx.sip.message import Request
from pbx.sip.uri import SipUri

if TYPE_CHECKING:
    from pbx.engine.legs import Leg

log = logging.getLogger(__name__)

# Our CSeq numbers in a dialog only grow. The journal keeps the one of the answer (and of the
# leg's later changes); a few in-dialog requests may have followed unrecorded (our re-INVITEs
# for hold, session refreshes), and the far end refuses a BYE whose CSeq is not above them.
CSEQ_MARGIN = 100


def saved_dialog(leg: Leg) -> SavedDialog | None:
    """What the journal keeps of `leg`'s dialog; None when it has none."""
    dialog = leg.dialog
    if dialog is None:
        return None
    return SavedDialog(
        leg_id=leg.id,
        call_id=dialog.call_id,
        local_tag=dialog.local_tag,
        remote_tag=dialog.remote_tag,
        local_uri=str(dialog.local_uri),
        remote_uri=str(dialog.remote_uri),
        remote_target=str(dialog.remote_target),
        route_set=tuple(dialog.route_set),
        local_cseq=dialog.local_cseq,
        secure=dialog.secure,
        peer=leg.peer,
        transport=leg.transport,
    )


def restored_dialog(saved: SavedDialog) -> Dialog:
    """The dialog `saved` describes, its CSeq `CSEQ_MARGIN` past the one kept.

    Raises:
        SipParseError: when what was kept does not parse (it was written by hand, or by
            another version).
    """
    remote_target = SipUri.parse(saved.remote_target)
    for route in saved.route_set:
        if not isinstance(NameAddr.parse(route).uri, SipUri):
            raise SipParseError(f"route {route!r} is not a SIP URI")
    return Dialog(
        call_id=saved.call_id,
        local_tag=saved.local_tag,
        remote_tag=saved.remote_tag,
        local_uri=NameAddr.parse(saved.local_uri),
        remote_uri=NameAddr.parse(saved.remote_uri),
        remote_target=remote_target,
        route_set=list(saved.route_set),
        local_cseq=saved.local_cseq + CSEQ_MARGIN - 1,  # create_request takes the next one
        remote_cseq=None,
        secure=saved.secure,
    )


def closing_bye(saved: SavedDialog, via: Via) -> tuple[Request, Addr]:
    """The BYE that ends the dialog `saved` describes, and where to send it.

    Where the leg's requests went (its source, NAT-safe) as `Leg.send_in_dialog` does; but
    a TCP connection died with the engine, and nothing listens at the source port of a
    phone's connection: over TCP, the next hop (the Contact, or the first route) when it is
    an address, as registrar.Binding.destination does.

    Raises:
        SipParseError: as `restored_dialog`.
    """
    request, next_hop = restored_dialog(saved).create_request("BYE", via=via)
    if saved.transport != "tcp":
        return request, saved.peer
    try:
        ipaddress.ip_address(next_hop.host)
    except ValueError:  # a name: it would need RFC 3263 resolution
        return request, saved.peer
    default_port = 5061 if next_hop.scheme == "sips" else 5060
    return request, (next_hop.host, next_hop.port or default_port)


async def end_lost_dialogs(journal: DialogJournal, stack: SipSender) -> int:
    """Send a BYE on every dialog the journal holds (a previous run's, lost in a crash), then
    empty it. Their responses are of no interest: the transaction layer retransmits a few
    times over UDP, and a phone that has gone answers nothing.

    Returns:
        How many BYEs were sent.
    """
    sent = 0
    for saved in await journal.lost():
        try:
            bye, dest = closing_bye(saved, stack.via(saved.transport))
        except ValueError as error:  # SipParseError included
            log.warning("lost dialog %s of leg %d unusable: %s", saved.call_id, saved.leg_id, error)
            continue
        stack.send_request(bye, dest, saved.transport, None)
        sent += 1
    await journal.clear()
    return sent


class JournalWriter:
    """Subscribes to the engine's events: keeps each answered leg's dialog in the journal
    (again when the leg changes: a hold, a transfer) and forgets it when the leg ends.

    Args:
        journal: where the dialogs go.
        find_leg: the live leg with an id (the events name legs by id).
    """

    def __init__(self, journal: DialogJournal, find_leg: Callable[[int], Leg | None]) -> None:
        self.journal = journal
        self.find_leg = find_leg
        self._kept: dict[int, SavedDialog] = {}  # what the journal has, by leg id

    def on_event(self, event: Event) -> None:
        if not isinstance(event, LegChanged):
            return
        if event.state is LegState.ENDED:
            if self._kept.pop(event.leg_id, None) is not None:
                self.journal.forget(event.leg_id)
            return
        if event.state is not LegState.ANSWERED:
            return
        leg = self.find_leg(event.leg_id)
        saved = saved_dialog(leg) if leg is not None else None
        if saved is None:
            return
        if self._kept.get(event.leg_id) != saved:  # unchanged: no write
            self._kept[event.leg_id] = saved
            self.journal.save(saved)

    def __len__(self) -> int:
        return len(self._kept)
