"""The sans-IO core of the RTP relay: which packet goes where, rewritten how.

The engine owns the sockets and the clock. For every datagram it calls
``RelayCore.process(leg, data, src, now)`` and sends what comes back; every ``ptime`` it calls
``RelayCore.player_packet(leg, now)`` for legs that are fed by a player (music on hold,
announcements). This module decides everything else:

- Latching (symmetric RTP): a leg accepts packets from the address in its SDP, or, while
  nothing is latched yet, from anywhere (a phone behind NAT sends from its public address, not
  the one in its SDP). The first accepted source is latched and becomes where we send to; other
  sources are then ignored and counted in ``MediaLeg.ignored``.
- Feeds: each leg hears exactly one thing: another leg (``connect``/``bridge``), a ``Player``
  (``play``), or nothing (``silence``). Switching marks the leg's outgoing stream for
  re-anchoring: the next packet gets the SSRC the far end already knows, the next sequence
  number, a timestamp advanced by the time that passed, and the marker bit. From then on that
  source's packets are rewritten by constant offsets. A leg that never switched is forwarded
  untouched: the cheapest path and the most transparent one.
- Fan-out: a leg may be heard by several legs (its call partner, a supervisor listening in),
  each with its own codec and its own continuous stream; and ``taps`` see the audio a leg
  receives whatever it is connected to (a recorder, ``pbx.media.recorder``).
- Codecs: same codec -> forward; µ-law <-> A-law -> translate the payload through the G.711
  tables and rewrite the payload type. Telephone-events go out with each listener's
  telephone-event payload type, or are dropped for a listener without one; whatever the leg is
  connected to, each key press also comes out of ``process`` once, as a ``DigitReceived``
  event, for IVR and voicemail.
- Dropped, and counted: RTCP (the relay rewrites SSRCs, sequence numbers and timestamps, so
  reports forwarded as they are would describe streams the far end never saw; phones work
  without them), comfort noise and any payload type not negotiated, and malformed packets.

The hot path reads two header bytes and compares integers; only re-anchored or transcoded
packets are copied, and none is fully parsed. What ``process`` returns is shaped for it: the
usual case (one listener, no tap, no digit) is a lone ``Transmit`` tuple, the one allocation
per packet the relay always made; only fan-out and key presses pay for a list.
"""

from __future__ import annotations

import enum
import struct
from typing import Protocol, TypeAlias

from pbx.media.dtmf import DigitReceived, DtmfReceiver
from pbx.media.g711 import ALAW_TO_ULAW, ULAW_TO_ALAW
from pbx.media.player import STATIC_PAYLOAD_TYPES, Player
from pbx.media.rtp import RtpError, payload_bounds

__all__ = [
    "Addr",
    "AudioTap",
    "DigitReceived",
    "Feed",
    "MediaLeg",
    "Output",
    "RelayCore",
    "Transmit",
]

Addr: TypeAlias = tuple[str, int]

_SEQ_TS_SSRC = struct.Struct("!HII")
_TRANSCODE = {("PCMU", "PCMA"): ULAW_TO_ALAW, ("PCMA", "PCMU"): ALAW_TO_ULAW}
_MIN_STEP = 160  # samples: when sources overlap in time, still leave one 20 ms frame


class AudioTap(Protocol):
    """Sees the audio a leg receives (e.g. a recorder), whatever the leg is connected to."""

    def receive_audio(self, packet: bytes, codec: str, now: float) -> None:
        """Take one accepted RTP packet of the leg's codec, as received (not parsed).

        Called from inside ``RelayCore.process``, so it must be quick and must not raise on a
        remote's junk: the packet is only known to have a version-2 header and the payload type.
        """


class Feed(enum.Enum):
    """What a leg hears."""

    SILENT = "silent"
    LEG = "leg"
    PLAYER = "player"


class MediaLeg:
    """One party's RTP endpoint as the relay sees it, and the stream we send to it.

    Args:
        remote: the address from the party's SDP (None until it is known).
        codec: "PCMU" or "PCMA", as negotiated.
        pt: the codec's payload type; the static one when omitted.
        event_pt: the negotiated telephone-event payload type, or None.
        name: for logs and the debug view.
    """

    def __init__(
        self,
        remote: Addr | None,
        codec: str = "PCMU",
        pt: int | None = None,
        event_pt: int | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self.remote: Addr | None = None
        self.latched: Addr | None = None
        self.destination: Addr | None = None
        """Where packets for this leg go: the latched source, else the SDP address."""
        self.codec = codec
        self.pt = 0
        self.event_pt: int | None = None
        self.configure(remote, codec, pt, event_pt)
        self.ignored = 0
        """Packets from sources other than the latched one."""
        self.rtcp = 0
        """RTCP packets received (and dropped)."""
        self.dropped = 0
        """Malformed packets and payload types that were not negotiated."""
        self._dtmf = DtmfReceiver()

        # What this leg hears, and how its source's audio is converted for it.
        self.feed = Feed.SILENT
        self.source: MediaLeg | None = None
        self.player: Player | None = None
        self._table: bytes | None = None  # G.711 translate table, when the codecs differ
        # Who hears this leg (changed only through RelayCore). Tuples, replaced rather than
        # changed, so that a tap or listener that goes away while a packet is being handed out
        # does not upset the loop.
        self.listeners: tuple[MediaLeg, ...] = ()
        self.taps: tuple[AudioTap, ...] = ()
        self._only: MediaLeg | None = None  # the one listener when there is no tap: hot path

        # The outgoing stream's continuity.
        self._last: bytes | None = None  # last packet sent to this leg
        self._last_time = 0.0
        self._reanchor = False
        self._rewrite = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._in_ssrc = 0
        self._out_ssrc = 0
        self._mark = False

    def __repr__(self) -> str:
        return (
            f"<MediaLeg {self.name or id(self)} {self.codec} {self.destination} {self.feed.value}>"
        )

    def configure(
        self, remote: Addr | None, codec: str, pt: int | None = None, event_pt: int | None = None
    ) -> None:
        """Set (or, after a re-INVITE, change) the SDP address and payload types.

        A new address forgets the latched source; the leg latches again.
        """
        if codec not in STATIC_PAYLOAD_TYPES:
            raise ValueError(f"unsupported codec {codec!r}: expected 'PCMU' or 'PCMA'")
        if remote != self.remote:
            self.remote, self.latched, self.destination = remote, None, remote
        self.codec = codec
        self.pt = STATIC_PAYLOAD_TYPES[codec] if pt is None else pt
        self.event_pt = event_pt

    def accept_source(self, src: Addr) -> bool:
        """Latch ``src`` if it may feed this leg; count it as ignored otherwise."""
        if src == self.latched:
            return True
        if src == self.remote or self.latched is None:
            self.latched = self.destination = src
            return True
        self.ignored += 1
        return False

    def _emit(self, data: bytes | bytearray, now: float) -> Transmit | None:
        """Send a packet down this leg's outgoing stream, keeping the stream continuous."""
        destination = self.destination
        if destination is None:
            return None
        if self._reanchor:
            self._anchor(data, now)
        if self._rewrite:
            buf = data if isinstance(data, bytearray) else bytearray(data)
            sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(buf, 2)
            if ssrc != self._in_ssrc:  # the source restarted its stream under us
                self._anchor(buf, now)
            _SEQ_TS_SSRC.pack_into(
                buf,
                2,
                (sequence + self._seq_offset) & 0xFFFF,
                (timestamp + self._ts_offset) & 0xFFFFFFFF,
                self._out_ssrc,
            )
            if self._mark:
                buf[1] |= 0x80
                self._mark = False
            data = bytes(buf)
        elif type(data) is not bytes:
            data = bytes(data)
        self._last = data
        self._last_time = now
        return data, destination, self

    def _anchor(self, data: bytes | bytearray, now: float) -> None:
        """Work out the offsets that continue the far end's view of the stream with ``data``."""
        self._reanchor = False
        sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        last = self._last
        if last is None:  # nothing sent yet: this source simply starts the stream
            self._rewrite = False
            return
        last_sequence, last_timestamp, last_ssrc = _SEQ_TS_SSRC.unpack_from(last, 2)
        step = max(round((now - self._last_time) * 8000), self._samples_in(last))
        self._seq_offset = (last_sequence + 1 - sequence) & 0xFFFF
        self._ts_offset = (last_timestamp + step - timestamp) & 0xFFFFFFFF
        self._out_ssrc = last_ssrc
        self._in_ssrc = ssrc
        self._rewrite = bool(self._seq_offset or self._ts_offset or ssrc != last_ssrc)
        self._mark = self._rewrite

    def _samples_in(self, packet: bytes) -> int:
        """How much time (in samples) a packet we sent covers: its length for G.711 audio."""
        if packet[1] & 0x7F != self.pt:
            return _MIN_STEP
        try:
            start, end = payload_bounds(packet)
        except RtpError:
            return _MIN_STEP
        return max(end - start, 1)


Transmit: TypeAlias = tuple[bytes, Addr, MediaLeg]
"""A datagram to send: its bytes, where to, and the leg whose socket it leaves from."""
Output: TypeAlias = Transmit | DigitReceived
"""One thing ``RelayCore.process`` asks the engine to do."""


class RelayCore:
    """Routes RTP between legs; all state lives on the ``MediaLeg`` objects."""

    def connect(self, source: MediaLeg, destination: MediaLeg) -> None:
        """Let ``destination`` hear ``source`` (one direction; see ``bridge`` for both).

        ``destination`` stops hearing whatever it heard before; whoever else hears ``source``
        keeps hearing it.
        """
        if source is destination:
            raise ValueError("a leg cannot hear itself")
        self._detach(destination)
        destination.feed, destination.source = Feed.LEG, source
        destination._reanchor = True
        source.listeners += (destination,)
        self._route(destination)
        self._refresh(source)

    def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        """Let two legs hear each other, and only each other: the normal state of a call.

        Other legs that heard ``a`` or ``b`` go silent (a transfer must not leave the old
        partner listening in); taps stay.
        """
        for leg in (a, b):
            for listener in leg.listeners:
                if listener is not a and listener is not b:
                    self._detach(listener)
        self.connect(a, b)
        self.connect(b, a)

    def play(self, leg: MediaLeg, player: Player) -> None:
        """Feed ``leg`` from a player; the engine then calls ``player_packet`` every ptime."""
        if player.codec != leg.codec or player.pt != leg.pt:
            raise ValueError(
                f"player sends {player.codec}/{player.pt}, leg expects {leg.codec}/{leg.pt}"
            )
        self._detach(leg)
        leg.feed, leg.player = Feed.PLAYER, player
        leg._reanchor = True

    def silence(self, leg: MediaLeg) -> None:
        """Send nothing to ``leg``."""
        self._detach(leg)

    def add_tap(self, leg: MediaLeg, tap: AudioTap) -> None:
        """Let ``tap`` see the audio ``leg`` receives from now on."""
        if tap not in leg.taps:
            leg.taps += (tap,)
            self._refresh(leg)

    def remove_tap(self, leg: MediaLeg, tap: AudioTap) -> None:
        """Stop feeding ``tap`` (nothing happens if it was not there)."""
        leg.taps = tuple(t for t in leg.taps if t is not tap)
        self._refresh(leg)

    def reconfigure(
        self,
        leg: MediaLeg,
        remote: Addr | None,
        codec: str,
        pt: int | None = None,
        event_pt: int | None = None,
    ) -> None:
        """Apply a new SDP (re-INVITE) to a leg, keeping its connections."""
        leg.configure(remote, codec, pt, event_pt)
        self._route(leg)
        for listener in leg.listeners:
            self._route(listener)
        if leg.player is not None and (leg.player.codec, leg.player.pt) != (leg.codec, leg.pt):
            self._detach(leg)  # the player can no longer feed it; the engine makes a new one

    def process(
        self, leg: MediaLeg, data: bytes, src: Addr, now: float
    ) -> Transmit | list[Output] | None:
        """Handle a datagram received on ``leg`` from ``src`` at ``now``.

        Returns:
            None when there is nothing to do; one ``Transmit`` when there is exactly one
            datagram to send and nothing else (a call between two legs: the hot path, no list
            built); otherwise a list of ``Transmit`` (one per listener) and ``DigitReceived``.
        """
        if src != leg.latched and not leg.accept_source(src):
            return None
        if len(data) < 12 or data[0] & 0xC0 != 0x80:
            leg.dropped += 1
            return None
        pt = data[1] & 0x7F
        if pt == leg.pt:
            listener = leg._only
            if listener is None:
                return self._fan_out(leg, data, pt, now)
            table = listener._table
            if table is not None:
                converted = _transcode(data, table, listener.pt)
                if converted is None:
                    leg.dropped += 1
                    return None
                return listener._emit(converted, now)
            if listener.pt != pt:
                converted = bytearray(data)
                converted[1] = (converted[1] & 0x80) | listener.pt
                return listener._emit(converted, now)
            return listener._emit(data, now)
        if pt == leg.event_pt:
            return self._telephone_event(leg, data, pt, now)
        if 200 <= data[1] <= 204:
            leg.rtcp += 1
        else:
            leg.dropped += 1
        return None

    def player_packet(self, leg: MediaLeg, now: float) -> Transmit | None:
        """The next packet of the player feeding ``leg``, or None (not fed, or finished)."""
        player = leg.player
        if leg.feed is not Feed.PLAYER or player is None:
            return None
        data = player.next_packet()
        if data is None:
            return None
        return leg._emit(data, now)

    def remove(self, leg: MediaLeg) -> None:
        """Take a leg out of the relay (its call leg ended): whoever heard it goes silent."""
        self._detach(leg)
        for listener in leg.listeners:
            self._detach(listener)
        leg.taps = ()
        self._refresh(leg)

    def _fan_out(
        self, leg: MediaLeg, data: bytes, pt: int, now: float
    ) -> Transmit | list[Output] | None:
        """The audio path for a leg with taps, several listeners, or none."""
        for tap in leg.taps:
            tap.receive_audio(data, leg.codec, now)
        out: list[Output] = []
        malformed = False
        for listener in leg.listeners:
            table = listener._table
            if table is not None:
                converted = _transcode(data, table, listener.pt)
                if converted is None:
                    malformed = True  # counted once, however many listeners transcode
                    continue
                sent = listener._emit(converted, now)
            elif listener.pt != pt:
                converted = bytearray(data)
                converted[1] = (converted[1] & 0x80) | listener.pt
                sent = listener._emit(converted, now)
            else:
                sent = listener._emit(data, now)
            if sent is not None:
                out.append(sent)
        if malformed:
            leg.dropped += 1
        return _result(out)

    def _telephone_event(
        self, leg: MediaLeg, data: bytes, pt: int, now: float
    ) -> Transmit | list[Output] | None:
        """Relay a telephone-event to the listeners that negotiated them; report key presses."""
        out: list[Output] = []
        for listener in leg.listeners:
            out_pt = listener.event_pt
            if out_pt is None:
                continue  # it cannot receive events; it hears nothing rather than garbage
            if out_pt != pt:
                converted = bytearray(data)
                converted[1] = (converted[1] & 0x80) | out_pt
                sent = listener._emit(converted, now)
            else:
                sent = listener._emit(data, now)
            if sent is not None:
                out.append(sent)
        out += leg._dtmf.receive(data)
        return _result(out)

    def _detach(self, leg: MediaLeg) -> None:
        """Make ``leg`` hear nothing, and tell its source it lost a listener."""
        source = leg.source
        if source is not None and leg in source.listeners:
            source.listeners = tuple(other for other in source.listeners if other is not leg)
            self._refresh(source)
        leg.feed, leg.source, leg.player = Feed.SILENT, None, None
        leg._table = None
        leg._reanchor = True

    @staticmethod
    def _route(listener: MediaLeg) -> None:
        """Precompute how the audio of ``listener``'s source is converted for it."""
        source = listener.source
        listener._table = None if source is None else _TRANSCODE.get((source.codec, listener.codec))

    @staticmethod
    def _refresh(leg: MediaLeg) -> None:
        """Open the hot path when ``leg`` is heard by exactly one leg and nothing else."""
        listeners = leg.listeners
        leg._only = listeners[0] if len(listeners) == 1 and not leg.taps else None


def _result(out: list[Output]) -> Transmit | list[Output] | None:
    """What ``process`` returns for these outputs: None, the lone transmit, or the list."""
    if not out:
        return None
    if len(out) == 1 and type(out[0]) is tuple:
        return out[0]
    return out


def _transcode(data: bytes, table: bytes, out_pt: int) -> bytearray | None:
    """Translate a G.711 payload to the other law and set the new payload type."""
    first = data[0]
    if first & 0x30:  # padding or extension: find the payload the slow way
        try:
            start, end = payload_bounds(data)
        except RtpError:
            return None
        head = bytearray(data[:start])
        head[0] = first & ~0x20  # the padding is not carried over
    else:
        start, end = 12 + 4 * (first & 0x0F), len(data)
        if start > end:
            return None
        head = bytearray(data[:start])
    head[1] = (data[1] & 0x80) | out_pt
    head += data[start:end].translate(table)
    return head
