"""The engine: SIP stack, registrar, calls, media and trunks, wired together on one loop."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from pbx.engine.announcement_recorder import AnnouncementRecorder
from pbx.engine.attendant import Attendants, PromptCache
from pbx.engine.auth import Authenticator, FailureTracker
from pbx.engine.call import CallState
from pbx.engine.calls import CallManager
from pbx.engine.commands import Command, Done, execute
from pbx.engine.dialog_journal import JournalWriter, end_lost_dialogs
from pbx.engine.dialogs import DialogRequests
from pbx.engine.directory import Directory
from pbx.engine.events import EventBus, MailboxChanged
from pbx.engine.legs import ALLOW_OUTSIDE_DIALOGS, DialogIndex, Leg, reject
from pbx.engine.media import MediaManager
from pbx.engine.operations import CallOperations
from pbx.engine.operator import OperatorDesk
from pbx.engine.pickup import DirectedPickup
from pbx.engine.presence import Presence
from pbx.engine.records import CallRecorder, MemoryRecorder, RecordWriter
from pbx.engine.registrar import BindingStore, Registrar
from pbx.engine.registrations import Registrations
from pbx.engine.routing import Party, Route, Router
from pbx.engine.services import (
    AnnouncementStore,
    DialogJournal,
    HuntMemory,
    IdleLines,
    LoopClock,
    MemoryAnnouncementStore,
    MemoryDialogJournal,
    MemoryHuntMemory,
    MemoryVoicemailStore,
    Tasks,
    VoicemailStore,
)
from pbx.engine.session_timers import SessionTimers
from pbx.engine.stack import SipStack
from pbx.engine.subscriptions import Subscriptions
from pbx.engine.trunk import TrunkManager
from pbx.engine.voice_prompts import AudioFiles, SpokenPrompts
from pbx.engine.voicemail import Voicemail
from pbx.engine.voicemail_menu import VoicemailMenu
from pbx.engine.watchdog import MediaWatchdog
from pbx.events import ConsoleFeed
from pbx.media.announcement import load_for_playback
from pbx.sip.message import Request, Response, make_response
from pbx.sip.subscription import ALLOW_EVENTS, ExpiryPolicy
from pbx.sip.uri import SipUri

log = logging.getLogger(__name__)

Addr = tuple[str, int]
TRUNK_RELOAD_SECONDS = 30.0


@dataclass(frozen=True)
class EngineConfig:
    bind: str = "127.0.0.1"
    advertise: str = ""  # the address in Contact and SDP; the bind address when empty
    sip_port: int = 5060
    rtp_ports: tuple[int, int] = (20000, 20999)
    realm: str = "centralino"
    node: str = "node1"
    nonce_lifetime: float = 300
    min_expires: int = 60
    max_expires: int = 3600
    auth_fail_limit: int = 20
    auth_fail_window: float = 60
    auth_block_seconds: float = 300
    # Offered in this order. SHA-256 is off by default: baresip 1.0 (libre) gives up on a
    # REGISTER when any challenge has an algorithm it does not know, instead of skipping it.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    moh_path: str | None = None
    # Move what start-up built (Django, numpy, the code) out of the collector's sight, so that
    # its full collections scan only live call state: their pauses were the post-dial delay tail.
    freeze_gc: bool = True
    # Seconds without RTP from a phone (not on hold) before its call is hung up; 0: never.
    media_timeout: float = 60
    # Seconds a call waits in the operator queue before it goes where unanswered calls go.
    queue_timeout: float = 300
    # Where announcements recorded by phone are written (the portal's announcements folder);
    # None: recording by phone is off, and its code is not a number.
    announcements_dir: str | None = None
    # What an administrator's phone dials to record an announcement, and the longest take.
    record_announcement_code: str = "*55"
    record_announcement_seconds: float = 120
    # Where voicemail is recorded (the voicemail folder); None: no voicemail, calls nobody
    # answers end with 480/486. The feature code that listens to it by phone, the longest
    # message, the free space below which mailboxes say they are full, the prompts' language.
    voicemail_dir: str | None = None
    voicemail_code: str = "*98"
    voicemail_max_seconds: float = 180
    voicemail_min_free_mb: float = 200
    voicemail_language: str = "it"
    # Lamps on phones (subscriptions.py): how long a subscription may last (seconds; 423
    # below the minimum), message-summary NOTIFYs to registered phones that never subscribed,
    # and the feature code that picks up a ringing extension (+ its number: *8203).
    subscribe_min_expires: int = 60
    subscribe_max_expires: int = 3600
    mwi_unsolicited: bool = False
    pickup_code: str = "*8"


class Engine:
    """One telephony node. `await start()` binds and serves; `await stop()` hangs up and closes."""

    def __init__(
        self,
        config: EngineConfig,
        directory: Directory,
        recorder: CallRecorder | None = None,
        bindings: BindingStore | None = None,
        hunt_memory: HuntMemory | None = None,
        announcements: AnnouncementStore | None = None,
        voicemail: VoicemailStore | None = None,
        journal: DialogJournal | None = None,
    ) -> None:
        self.config = config
        self.hunt_memory: HuntMemory = hunt_memory or MemoryHuntMemory()
        self.directory = directory
        self.recorder: CallRecorder = recorder or MemoryRecorder()
        self.advertise = config.advertise or (
            config.bind if config.bind not in ("0.0.0.0", "::") else "127.0.0.1"
        )
        self.stack = SipStack(self.advertise)
        self.stack.user = self
        self.registrar = Registrar(config.min_expires, config.max_expires, store=bindings)
        self.auth = Authenticator(
            config.realm,
            directory,
            nonce_lifetime=config.nonce_lifetime,
            algorithms=config.digest_algorithms,
            tracker=FailureTracker(
                config.auth_fail_limit, config.auth_fail_window, config.auth_block_seconds
            ),
        )
        self.media = MediaManager(config.bind, config.rtp_ports, _load_moh(config.moh_path))
        # The call layer: built once from narrow services, wired by events, not callbacks.
        self.events = EventBus()
        self.presence = Presence(self.events)
        self.events.subscribe(self.presence.on_event)
        self.registrations = Registrations(
            stack=self.stack,
            auth=self.auth,
            registrar=self.registrar,
            directory=directory,
            events=self.events,
        )
        self.events.subscribe(RecordWriter(self.recorder).on_event)
        # What the operator consoles show (pbx/events.py): its `publish` is given by the web
        # side that delivers the messages; `console.snapshot(company)` for a console joining.
        self.console = ConsoleFeed(node=config.node)
        self.events.subscribe(self.console.on_event)
        self.tasks = Tasks()
        self.clock = LoopClock()
        self.dialogs = DialogIndex()
        recording = config.announcements_dir is not None
        self.router = Router(
            directory,
            self.presence.is_busy,
            hunt_memory=self.hunt_memory,
            record_code=config.record_announcement_code if recording else "",
            voicemail_code=config.voicemail_code if config.voicemail_dir is not None else "",
            pickup_code=config.pickup_code,
        )
        self.trunks = TrunkManager(directory, self.stack)
        self.calls = CallManager(
            stack=self.stack,
            clock=self.clock,
            events=self.events,
            media=self.media,
            contacts=self.registrar,
            router=self.router,
            trunks=self.trunks,
            tasks=self.tasks,
            dialogs=self.dialogs,
            queue_timeout=config.queue_timeout,
            hunt_memory=self.hunt_memory,
        )
        # Each answered leg's dialog, kept so that a start after a crash can end it.
        self.journal: DialogJournal = journal if journal is not None else MemoryDialogJournal()
        self.events.subscribe(JournalWriter(self.journal, self._find_leg).on_event)
        self.attendants = Attendants(
            self.calls,
            directory,
            clock=self.clock,
            tasks=self.tasks,
            prompts=PromptCache(lambda path: load_for_playback(path)),
        )
        self.events.subscribe(self.attendants.on_event)
        self.events.subscribe(IdleLines(self.hunt_memory).on_event)
        self.announcements: AnnouncementStore = announcements or MemoryAnnouncementStore()
        if config.announcements_dir is not None:
            recorder_by_phone = AnnouncementRecorder(
                self.calls,
                self.announcements,
                folder=config.announcements_dir,
                tasks=self.tasks,
                max_seconds=config.record_announcement_seconds,
            )
            self.events.subscribe(recorder_by_phone.on_event)
        # Also the message counts of the message-waiting lamps (`MessageCounts`).
        self.voicemail_store: VoicemailStore = voicemail or MemoryVoicemailStore(
            config.voicemail_dir
        )
        self.voicemail: Voicemail | None = None
        if config.voicemail_dir is not None:
            speech = SpokenPrompts(config.voicemail_language)
            files = AudioFiles()
            self.voicemail = Voicemail(
                self.calls,
                self.voicemail_store,
                folder=config.voicemail_dir,
                tasks=self.tasks,
                speech=speech,
                files=files,
                node=config.node,
                max_seconds=config.voicemail_max_seconds,
                min_free_mb=config.voicemail_min_free_mb,
                language=config.voicemail_language,
            )
            self.events.subscribe(self.voicemail.on_event)
            menu = VoicemailMenu(
                self.calls,
                self.voicemail_store,
                tasks=self.tasks,
                speech=speech,
                files=files,
                language=config.voicemail_language,
            )
            self.events.subscribe(menu.on_event)
        self.operations = CallOperations(self.calls, moh=self.media.moh, clock=self.clock)
        self.desk = OperatorDesk(self.calls, self.operations, directory, self.registrar)
        self.session_timers = SessionTimers(self.calls, stack=self.stack, clock=self.clock)
        self.events.subscribe(self.session_timers.on_event)
        self.dialog_requests = DialogRequests(
            self.calls, self.operations, self.session_timers, stack=self.stack, tasks=self.tasks
        )
        self.pickup = DirectedPickup(self.calls)
        self.subscriptions = Subscriptions(
            stack=self.stack,
            clock=self.clock,
            tasks=self.tasks,
            directory=directory,
            counts=self.voicemail_store,
            presence=self.presence,
            calls=self.calls,
            contacts=self.registrar,
            policy=ExpiryPolicy(config.subscribe_min_expires, config.subscribe_max_expires),
            unsolicited=config.mwi_unsolicited,
            pickup_code=config.pickup_code,
        )
        self.events.subscribe(self.subscriptions.on_event)
        self._reload: asyncio.TimerHandle | None = None
        self._watch: asyncio.TimerHandle | None = None
        self.watchdog = MediaWatchdog(config.media_timeout)
        self.running = False

    def mailbox_changed(self, company_id: int, number: str) -> None:
        """Someone changed an extension's voicemail outside the engine (the portal): say so,
        so that message lamps show the new counts."""
        self.events.emit(MailboxChanged(company_id, number, self.clock.now()))

    @property
    def sip_port(self) -> int:
        return self.stack.port

    def _find_leg(self, leg_id: int) -> Leg | None:
        return self.calls.leg_by_id(leg_id) or self.dialogs.by_id(leg_id)

    async def start(self) -> None:
        # Bind first: the SIP port is this node's lock. A second instance of the same node must
        # fail here, before it closes the live calls of the first one as "interrupted".
        await self.stack.start(self.config.bind, self.config.sip_port)
        ended = await end_lost_dialogs(self.journal, self.stack)
        if ended:  # the phones of a crashed run's calls sat in silence until now
            log.warning(
                "engine %s: BYE sent on %d dialogs left by a crash", self.config.node, ended
            )
        recover = getattr(self.recorder, "recover", None)
        if recover is not None:  # close the call records a crash left open
            await recover()
        if self.voicemail is not None:  # messages a crash left half-way
            await self.voicemail.recover()
        restored = await self.registrar.restore(self.stack.now())
        if restored:
            log.info("engine %s: %d registrations restored", self.config.node, restored)
            await self.registrations.announce_restored()
        self.running = True
        await self.trunks.load()
        self._schedule_reload()
        if self.config.media_timeout > 0:
            self._schedule_watch()
        if self.config.freeze_gc:
            gc.collect()
            gc.freeze()
        log.info(
            "engine %s: SIP udp+tcp %s:%s, RTP %s-%s",
            self.config.node,
            self.config.bind,
            self.sip_port,
            *self.config.rtp_ports,
        )

    def _schedule_reload(self) -> None:
        def reload() -> None:
            self.tasks.spawn(self.trunks.load())
            self.registrations.expire()
            self._schedule_reload()

        self._reload = asyncio.get_running_loop().call_later(TRUNK_RELOAD_SECONDS, reload)

    def _schedule_watch(self) -> None:
        period = max(0.5, self.config.media_timeout / 4)
        self._watch = asyncio.get_running_loop().call_later(period, self._watch_media)

    def _watch_media(self) -> None:
        """Hang up the calls a phone left without a word (see watchdog.py): talking, and also
        those whose caller the PBX answered and sent on (a menu's key ringing someone, the
        operator queue, voicemail), which would otherwise wait for a timeout of their own."""
        calls = list(self.calls.calls.values())
        legs = [leg for call in calls for leg in (call.a, call.b) if leg is not None]
        for leg in self.watchdog.silent(legs, self.stack.now()):
            call = self.calls.call_of(leg)
            if call is not None and call.state is not CallState.ENDED:
                log.info(
                    "call %s: no media from %s for %ss, hanging up",
                    call.id[:8],
                    leg.label,
                    self.config.media_timeout,
                )
                self.calls.hangup_call(call, "media timeout")
        self._schedule_watch()

    async def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self._reload:
            self._reload.cancel()
        if self._watch:
            self._watch.cancel()
        self.trunks.stop()
        self.subscriptions.close()
        for call in list(self.calls.calls.values()):
            self.calls.hangup_call(call, "shutdown")
        await asyncio.sleep(0.05)  # let the BYEs leave
        if self.voicemail is not None:  # the messages of the calls just ended
            await self.voicemail.saved_all()
        self.tasks.cancel_all()
        await self.stack.close()
        # The last records reach the disk; the journal, the ends of the calls just hung up.
        # With the database away, they wait a few seconds, then are given up (logged).
        for writer in (self.recorder, self.registrar.store, self.journal, self.hunt_memory):
            drain = getattr(writer, "drain", None)
            if drain is not None:
                await asyncio.to_thread(drain)

    def status(self) -> dict[str, Any]:
        return {
            "node": self.config.node,
            "running": self.running,
            "sip_port": self.sip_port,
            "calls": len(self.calls.calls),
            "registered_devices": len(self.registrar.usernames()),
            "rtp_ports_in_use": self.media.in_use,
            "trunks": {r.trunk.name: r.state.value for r in self.trunks.registrations.values()},
            "sip": dict(self.stack.stats),
            "authenticated": dict(self.auth.accepted),
            "tasks": len(self.tasks),
            "subscriptions": len(self.subscriptions),
        }

    async def execute(self, command: Command) -> Done:
        """Carry out a command on a call (the console, the API); see commands.py.

        Raises:
            OperationError: the call has gone, is not answered, ... (`code` says which).
        """
        return await execute(self.calls, self.operations, command, self.desk)

    # --- the transaction user ------------------------------------------------------------

    def on_request(self, request: Request, source: Addr, transport: str, key: Any) -> None:
        method = request.method
        if method == "ACK":
            leg = self.dialogs.find(request)
            if leg is not None:
                self.dialog_requests.handle(leg, request)
            return
        if method == "CANCEL":
            self._cancel(request, key)
            return
        if request.to_addr.tag:
            if method == "SUBSCRIBE" and self.subscriptions.in_dialog(request):
                return  # a refresh, or the end, of a subscription
            leg = self.dialogs.find(request)
            if leg is None:
                self.stack.send_response(make_response(request, 481))
            else:
                self.dialog_requests.handle(leg, request)
            return
        now = self.stack.now()
        if self.auth.tracker.is_blocked(source[0], now) and self.trunks.carrier(source) is None:
            # A source that kept failing authentication: it gets nothing for a while.
            if method == "INVITE":
                self.stack.send_response(make_response(request, 403, "Forbidden"))
            return
        if method == "REGISTER":
            self.tasks.spawn(self.registrations.register(request, source, transport))
        elif method == "INVITE":
            self.tasks.spawn(self._invite(request, source, transport, key))
        elif method == "SUBSCRIBE":
            self.tasks.spawn(self._subscribe(request, source, transport))
        elif method == "OPTIONS":
            self.stack.send_response(
                make_response(
                    request,
                    200,
                    headers=(
                        ("Allow", ALLOW_OUTSIDE_DIALOGS),
                        ("Accept", "application/sdp"),
                        ("Supported", "replaces, timer"),
                        ("Allow-Events", ALLOW_EVENTS),
                    ),
                )
            )
        elif method == "BYE":
            self.stack.send_response(make_response(request, 481))
        else:
            self.stack.send_response(
                make_response(request, 405, headers=(("Allow", ALLOW_OUTSIDE_DIALOGS),))
            )

    def on_stray_response(self, response: Response, source: Addr) -> None:
        log.debug("stray %s %s from %s", response.status, response.cseq, source)

    def on_ack_timeout(self, key: Any) -> None:
        for leg in self.dialogs.legs():
            if leg.server_key == key and not leg.ended:
                log.info("no ACK for our 200 from %s: hanging up", leg.label)
                self.calls.hangup_leg(leg, "no ACK")

    def _cancel(self, cancel: Request, key: Any) -> None:
        invite_key = self.stack.layer.find_invite_for_cancel(cancel)
        self.stack.send_response(make_response(cancel, 200))
        if invite_key is not None:
            self.calls.cancel(invite_key)

    async def _subscribe(self, request: Request, source: Addr, transport: str) -> None:
        """A new subscription: authenticated first, as any request of a phone out of a
        dialog, so that even which event packages and extensions exist is told only to
        phones of ours (489, 404 and 403 come after the challenge; RFC 6665 allows it)."""
        outcome = await self.auth.check(request, source[0], self.stack.now())
        if outcome.device is None:
            challenges = tuple(("WWW-Authenticate", c) for c in outcome.challenge)
            self.stack.send_response(make_response(request, 401, headers=challenges))
            return
        await self.subscriptions.subscribe(request, source, transport, outcome.device)

    async def _invite(self, invite: Request, source: Addr, transport: str, key: Any) -> None:
        self.calls.setup_started(key)
        try:
            await self._route_invite(invite, source, transport, key)
        finally:
            self.calls.setup_finished(key)

    async def _route_invite(self, invite: Request, source: Addr, transport: str, key: Any) -> None:
        uri = invite.request_uri
        dialled = uri.user if isinstance(uri, SipUri) and uri.user else ""
        carrier = self.trunks.carrier(source)
        if carrier is not None:
            await self._invite_from_trunk(invite, source, transport, key, dialled)
            return
        outcome = await self.auth.check(invite, source[0], self.stack.now())
        if outcome.device is None:
            self.stack.send_response(
                make_response(
                    invite, 401, headers=tuple(("WWW-Authenticate", c) for c in outcome.challenge)
                )
            )
            return
        device = outcome.device
        ext = await self.directory.extension(device.company_id, device.extension)
        name = ext.display_name if ext else ""
        caller = Party(device.company_id, device.extension, name, device.username)
        if self._cancelled(invite, key):
            return
        # An INVITE with Replaces takes over a ringing phone's early dialog (pickup.py).
        replaces = invite.headers.get("Replaces")
        pickup = Route(dialled, directed_pickup=True, replaces=replaces) if replaces else None
        await self.calls.incoming(
            invite,
            source,
            transport,
            key,
            caller,
            dialled,
            "internal" if not dialled.startswith("0") else "outbound",
            did_route=pickup,
        )

    async def _invite_from_trunk(
        self, invite: Request, source: Addr, transport: str, key: Any, dialled: str
    ) -> None:
        from_uri = invite.from_addr.uri
        number = from_uri.user if isinstance(from_uri, SipUri) and from_uri.user else "anonymous"
        display = invite.from_addr.display or ""
        candidates = [dialled]
        to_uri = invite.to_addr.uri
        if isinstance(to_uri, SipUri) and to_uri.user:
            candidates.append(to_uri.user)
        for did_number in candidates:
            routed = await self.router.did(did_number, Party(0, number, display))
            if routed is not None:
                company_id, route = routed
                caller = Party(company_id, number, display)
                if self._cancelled(invite, key):
                    return
                await self.calls.incoming(
                    invite, source, transport, key, caller, did_number, "inbound", did_route=route
                )
                return
        reject(self.stack, invite, 404, "No such company number")

    def _cancelled(self, invite: Request, key: Any) -> bool:
        if self.calls.setup_cancelled(key):
            reject(self.stack, invite, 487)
            return True
        return False


def _load_moh(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    from pbx.media.wav import load_as_pcm8k

    try:
        return load_as_pcm8k(path)
    except (OSError, ValueError) as error:
        log.warning("music on hold %s unusable (%s): callers on hold hear silence", path, error)
        return None
