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
- Codecs: same codec -> forward; µ-law <-> A-law -> translate the payload through the G.711
  tables and rewrite the payload type. Telephone-events go out with the other leg's
  telephone-event payload type, or are dropped when it has none; they are also decoded into
  ``MediaLeg.digits`` whatever the leg is connected to, for IVR and voicemail.
- Dropped, and counted: RTCP (the relay rewrites SSRCs, sequence numbers and timestamps, so
  reports forwarded as they are would describe streams the far end never saw; phones work
  without them), comfort noise and any payload type not negotiated, and malformed packets.

The hot path reads two header bytes and compares integers; only re-anchored or transcoded
packets are copied, and none is fully parsed.
"""

from __future__ import annotations

import enum
import struct

from pbx.media.dtmf import DtmfReceiver
from pbx.media.g711 import ALAW_TO_ULAW, ULAW_TO_ALAW
from pbx.media.player import STATIC_PAYLOAD_TYPES, Player
from pbx.media.rtp import RtpError, payload_bounds

__all__ = ["Addr", "Feed", "MediaLeg", "RelayCore"]

Addr = tuple[str, int]

_SEQ_TS_SSRC = struct.Struct("!HII")
_TRANSCODE = {("PCMU", "PCMA"): ULAW_TO_ALAW, ("PCMA", "PCMU"): ALAW_TO_ULAW}
_MIN_STEP = 160  # samples: when sources overlap in time, still leave one 20 ms frame


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
        self.digits = ""
        """DTMF digits received and not yet taken (see ``take_digits``)."""
        self._dtmf = DtmfReceiver()

        # What this leg hears.
        self.feed = Feed.SILENT
        self.source: MediaLeg | None = None
        self.player: Player | None = None
        # Where this leg's incoming audio goes, and how it is converted on the way.
        self.listener: MediaLeg | None = None
        self._table: bytes | None = None  # G.711 translate table, when the codecs differ
        self._out_pt = 0  # audio payload type on the listener's side
        self._out_event_pt: int | None = None

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

    def take_digits(self) -> str:
        """The DTMF digits received since the last call."""
        digits, self.digits = self.digits, ""
        return digits

    def _emit(self, data: bytes | bytearray, now: float) -> tuple[bytes, Addr] | None:
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
        return data, destination

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


class RelayCore:
    """Routes RTP between legs; all state lives on the ``MediaLeg`` objects."""

    def connect(self, source: MediaLeg, destination: MediaLeg) -> None:
        """Let ``destination`` hear ``source`` (one direction; see ``bridge`` for both)."""
        if source is destination:
            raise ValueError("a leg cannot hear itself")
        self._detach(destination)
        previous = source.listener
        if previous is not None and previous is not destination:
            self._detach(previous)  # a leg feeds one listener: the old one goes silent
        destination.feed, destination.source = Feed.LEG, source
        destination._reanchor = True
        source.listener = destination
        self._route(source)

    def bridge(self, a: MediaLeg, b: MediaLeg) -> None:
        """Let two legs hear each other: the normal state of a call."""
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
        if leg.source is not None:
            self._route(leg.source)
        if leg.player is not None and (leg.player.codec, leg.player.pt) != (leg.codec, leg.pt):
            self._detach(leg)  # the player can no longer feed it; the engine makes a new one

    def process(
        self, leg: MediaLeg, data: bytes, src: Addr, now: float
    ) -> tuple[bytes, Addr] | None:
        """Handle a datagram received on ``leg`` from ``src`` at ``now``.

        Returns:
            The packet to send and where to send it (out of the listener's socket), or None.
        """
        if src != leg.latched and not leg.accept_source(src):
            return None
        if len(data) < 12 or data[0] & 0xC0 != 0x80:
            leg.dropped += 1
            return None
        pt = data[1] & 0x7F
        if pt == leg.pt:
            listener = leg.listener
            if listener is None:
                return None
            table = leg._table
            if table is not None:
                converted = _transcode(data, table, leg._out_pt)
                if converted is None:
                    leg.dropped += 1
                    return None
                return listener._emit(converted, now)
            if leg._out_pt != pt:
                converted = bytearray(data)
                converted[1] = (converted[1] & 0x80) | leg._out_pt
                return listener._emit(converted, now)
            return listener._emit(data, now)
        if pt == leg.event_pt:
            digits = leg._dtmf.receive(data)
            if digits:
                leg.digits += digits
            listener = leg.listener
            out_pt = leg._out_event_pt
            if listener is None or out_pt is None:
                return None
            if out_pt != pt:
                converted = bytearray(data)
                converted[1] = (converted[1] & 0x80) | out_pt
                return listener._emit(converted, now)
            return listener._emit(data, now)
        if 200 <= data[1] <= 204:
            leg.rtcp += 1
        else:
            leg.dropped += 1
        return None

    def player_packet(self, leg: MediaLeg, now: float) -> tuple[bytes, Addr] | None:
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
        if leg.listener is not None:
            self._detach(leg.listener)

    def _detach(self, leg: MediaLeg) -> None:
        source = leg.source
        if source is not None and source.listener is leg:
            source.listener = None
            self._route(source)
        leg.feed, leg.source, leg.player = Feed.SILENT, None, None
        leg._reanchor = True

    @staticmethod
    def _route(source: MediaLeg) -> None:
        """Precompute how ``source``'s packets are converted for its listener."""
        listener = source.listener
        if listener is None:
            source._table, source._out_pt, source._out_event_pt = None, source.pt, None
            return
        source._table = _TRANSCODE.get((source.codec, listener.codec))
        source._out_pt = listener.pt
        source._out_event_pt = listener.event_pt


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
