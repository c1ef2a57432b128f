"""The engine's RTP endpoints on real UDP sockets: relaying, translating, latching, playing,
listening in, key presses and recording."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from pbx.engine.media import MediaEndpoint, MediaManager, bridge
from pbx.media import g711
from pbx.media.dtmf import DigitReceived, DtmfSender
from pbx.media.rtp import RtpPacket
from pbx.media.tone import dominant_frequency, sine
from pbx.media.wav import load_as_pcm8k

HOST = "127.0.0.1"
TONE = sine(440, 1.0)
VOICE = sine(697, 1.0, amplitude=0.3)  # what a caller "says" into a recording


class Phone(asyncio.DatagramProtocol):
    """A UDP socket on localhost standing in for a phone: sends RTP, queues what it gets."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[RtpPacket, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.sequence = 1000
        self.timestamp = 80_000

    @classmethod
    async def open(cls) -> Phone:
        loop = asyncio.get_running_loop()
        _, phone = await loop.create_datagram_endpoint(cls, local_addr=(HOST, 0))
        return phone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait((RtpPacket.parse(data), addr))

    @property
    def addr(self) -> tuple[str, int]:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def send(self, endpoint: MediaEndpoint, payload: bytes = b"\xff" * 160, pt: int = 0) -> None:
        """Send one 20 ms packet to our endpoint, continuing this phone's stream."""
        packet = RtpPacket(pt, self.sequence, self.timestamp, ssrc=0xA11CE, payload=payload)
        self.sequence += 1
        self.timestamp += 160
        self.send_raw(endpoint, bytes(packet))

    def send_raw(self, endpoint: MediaEndpoint, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, endpoint.port))

    async def receive(self, timeout: float = 1.0) -> RtpPacket:
        packet, _ = await asyncio.wait_for(self.inbox.get(), timeout)
        return packet

    async def receives_nothing(self, wait: float = 0.1) -> bool:
        await asyncio.sleep(wait)
        return self.inbox.empty()

    def drain(self) -> list[RtpPacket]:
        packets = []
        while not self.inbox.empty():
            packets.append(self.inbox.get_nowait()[0])
        return packets

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class ClosingManager(MediaManager):
    """Remembers its endpoints, so that a test leaves no socket open."""

    def __init__(self) -> None:
        super().__init__(HOST, (31000, 31200))
        self.endpoints: list[MediaEndpoint] = []

    async def allocate(self) -> MediaEndpoint:
        endpoint = await super().allocate()
        self.endpoints.append(endpoint)
        return endpoint


@pytest.fixture
async def manager() -> AsyncIterator[ClosingManager]:
    manager = ClosingManager()
    yield manager
    for endpoint in manager.endpoints:
        endpoint.close()
    await asyncio.sleep(0)  # let the transports finish closing


@pytest.fixture
async def alice() -> AsyncIterator[Phone]:
    phone = await Phone.open()
    yield phone
    phone.close()


@pytest.fixture
async def bob() -> AsyncIterator[Phone]:
    phone = await Phone.open()
    yield phone
    phone.close()


async def endpoint_for(
    manager: MediaManager, phone: Phone, codec: str = "PCMU", pt: int = 0
) -> MediaEndpoint:
    endpoint = await manager.allocate()
    endpoint.set_remote(phone.addr, pt, codec, 101)
    return endpoint


async def test_two_bridged_endpoints_relay_packets_both_ways(manager, alice, bob) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    bridge(a, b)

    alice.send(a, b"\x11" * 160)
    heard, source = await asyncio.wait_for(bob.inbox.get(), 1)
    assert heard.payload == b"\x11" * 160 and heard.payload_type == 0
    assert source == (HOST, b.port)  # symmetric RTP: it comes from the socket bob sends to

    bob.send(b, b"\x22" * 160)
    heard, source = await asyncio.wait_for(alice.inbox.get(), 1)
    assert heard.payload == b"\x22" * 160 and source == (HOST, a.port)
    assert (a.received, a.sent, b.received, b.sent) == (1, 1, 1, 1)
    assert a.latched == alice.addr and b.latched == bob.addr


async def test_a_ulaw_leg_to_an_alaw_leg_translates_the_audio(manager, alice, bob) -> None:
    a = await endpoint_for(manager, alice, "PCMU", 0)
    b = await endpoint_for(manager, bob, "PCMA", 8)
    bridge(a, b)
    ulaw = g711.encode("PCMU", TONE[:160])

    alice.send(a, ulaw, pt=0)
    heard = await bob.receive()

    assert heard.payload_type == 8
    sent, got = g711.decode("PCMU", ulaw), g711.decode("PCMA", heard.payload)
    # The two laws quantise differently: the same tone within a few percent, sample by sample.
    assert np.max(np.abs(sent.astype(int) - got.astype(int))) <= 0.04 * np.max(np.abs(sent))
    assert np.corrcoef(sent, got)[0, 1] > 0.999


async def test_a_second_source_is_ignored_once_a_leg_has_latched(manager, alice, bob) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    bridge(a, b)
    mallory = await Phone.open()
    try:
        alice.send(a, b"\x11" * 160)
        assert (await bob.receive()).payload == b"\x11" * 160
        mallory.send(a, b"\x66" * 160)
        mallory.send(a, b"\x66" * 160)
        assert await bob.receives_nothing()
        assert a.ignored == 2 and a.latched == alice.addr and a.received == 1
    finally:
        mallory.close()


async def test_nothing_is_latched_or_relayed_before_the_party_sdp_is_known(
    manager, alice, bob
) -> None:
    a, b = await manager.allocate(), await endpoint_for(manager, bob)
    bridge(a, b)
    alice.send(a)
    assert await bob.receives_nothing()
    assert a.ignored == 1 and a.latched is None


async def test_rtcp_is_not_relayed(manager, alice, bob) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    bridge(a, b)
    receiver_report = bytes([0x80, 201, 0, 1]) + (0xA11CE).to_bytes(4, "big")
    alice.send_raw(a, receiver_report)
    assert await bob.receives_nothing()
    assert a.received == 0


async def test_play_sends_fifty_packets_a_second_then_listen_to_switches_back_seamlessly(
    manager, alice, bob
) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    bridge(a, b)
    for _ in range(3):
        alice.send(a)
    relayed = [await bob.receive() for _ in range(3)]

    b.play(TONE)
    assert b.playing
    await asyncio.sleep(0.5)
    b.listen_to(a)
    assert not b.playing
    alice.send(a, b"\x11" * 160)
    await asyncio.sleep(0.1)
    *played, back = bob.drain()  # the player's last packets may still be in the socket
    assert back.payload == b"\x11" * 160

    # 20 ms apart on an absolute schedule: 26 packets in 0.5 s (the first one at once).
    assert 24 <= len(played) <= 27
    encoded = g711.encode("PCMU", TONE)
    assert b"".join(p.payload for p in played) == encoded[: 160 * len(played)]
    assert [p.timestamp - played[0].timestamp for p in played] == [
        160 * i for i in range(len(played))
    ]

    stream = relayed + played + [back]
    assert all(p.ssrc == relayed[0].ssrc for p in stream)  # one stream for bob throughout
    assert [p.sequence_number for p in stream] == [
        (relayed[0].sequence_number + i) & 0xFFFF for i in range(len(stream))
    ]
    assert played[0].marker and back.marker  # each switch is marked
    assert not any(p.marker for p in played[1:])
    assert 0 < (back.timestamp - played[-1].timestamp) & 0xFFFFFFFF <= 160 * 5


async def test_close_releases_the_port(manager, alice) -> None:
    endpoint = await endpoint_for(manager, alice)
    endpoint.play(TONE)
    assert manager.in_use == 1

    endpoint.close()
    await asyncio.sleep(0)

    assert endpoint.closed and manager.in_use == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, endpoint.port))  # the socket is really gone
    await asyncio.sleep(0.05)
    alice.drain()
    assert await alice.receives_nothing(0.06)  # and the player has stopped


async def test_a_codec_change_during_music_on_hold_keeps_the_music_playing(manager, alice) -> None:
    endpoint = await endpoint_for(manager, alice, "PCMU", 0)
    endpoint.play(TONE)
    assert (await alice.receive()).payload_type == 0

    endpoint.set_remote(alice.addr, 8, "PCMA", 101)  # a re-INVITE while on hold
    await asyncio.sleep(0.05)
    alice.drain()

    assert endpoint.playing
    assert (await alice.receive()).payload_type == 8
    endpoint.close()


@pytest.fixture
async def carol() -> AsyncIterator[Phone]:
    phone = await Phone.open()
    yield phone
    phone.close()


async def until(condition, timeout: float = 2.0) -> None:
    """Wait for ``condition()`` to hold, checking every few milliseconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def speak(phone: Phone, endpoint: MediaEndpoint, samples: np.ndarray) -> None:
    """Send ``samples`` as µ-law packets in real time, 20 ms apart."""
    for start in range(0, samples.size, 160):
        phone.send(endpoint, g711.encode_ulaw(samples[start : start + 160]))
        await asyncio.sleep(0.02)


async def test_a_third_party_listening_in_hears_the_call_without_taking_it_over(
    manager, alice, bob, carol
) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    c = await endpoint_for(manager, carol, "PCMA", 8)
    bridge(a, b)
    c.listen_to(a)  # e.g. a supervisor

    alice.send(a, b"\x11" * 160)

    assert (await bob.receive()).payload == b"\x11" * 160
    heard = await carol.receive()
    assert heard.payload_type == 8 and heard.payload == g711.ulaw_to_alaw(b"\x11" * 160)
    bob.send(b, b"\x22" * 160)
    assert (await alice.receive()).payload == b"\x22" * 160
    assert await carol.receives_nothing()  # she hears alice only


async def test_bridging_a_party_to_someone_new_silences_its_old_partner(
    manager, alice, bob, carol
) -> None:
    a, b, c = [await endpoint_for(manager, phone) for phone in (alice, bob, carol)]
    bridge(a, b)
    bridge(a, c)  # a transfer: bob must not go on hearing alice

    alice.send(a, b"\x11" * 160)

    assert (await carol.receive()).payload == b"\x11" * 160
    assert await bob.receives_nothing()
    assert not b.playing


async def test_key_presses_reach_on_digit_once_with_their_duration_and_are_relayed(
    manager, alice, bob
) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    bridge(a, b)
    pressed: list[DigitReceived] = []
    a.on_digit = pressed.append
    packets = DtmfSender(ssrc=0xA11CE, payload_type=101).packets("5", 8000, duration_ms=140)
    packets += DtmfSender(ssrc=0xA11CE, payload_type=101, sequence=99).packets("#", 16000)

    for data in packets:
        alice.send_raw(a, data)

    await until(lambda: len(pressed) == 2)
    assert pressed == [DigitReceived("5", 140), DigitReceived("#", 100)]
    relayed = [await bob.receive() for _ in packets]
    assert {p.payload_type for p in relayed} == {101}


async def test_record_keeps_what_the_party_says_not_what_it_hears(
    manager, alice, tmp_path: Path
) -> None:
    a = await endpoint_for(manager, alice)
    a.play(TONE)  # e.g. a voicemail greeting, or music: it must not end up in the file
    recording = a.record(tmp_path / "message.wav")

    await speak(alice, a, VOICE[:4000])
    await until(lambda: recording.duration >= 0.5)
    recording.stop()
    recording.stop()

    assert recording.stopped and a.playing
    recorded = load_as_pcm8k(tmp_path / "message.wav")
    assert recorded.size == 4000
    assert dominant_frequency(recorded) == pytest.approx(697, abs=2)


async def test_a_recording_follows_the_party_whoever_it_is_bridged_to(
    manager, alice, bob, carol
) -> None:
    a, b, c = [await endpoint_for(manager, phone) for phone in (alice, bob, carol)]
    bridge(a, b)
    file = io.BytesIO()
    recording = a.record(file)
    await speak(alice, a, VOICE[:1600])
    bridge(a, c)  # transferred: the recording goes on
    await speak(alice, a, VOICE[1600:3200])
    await until(lambda: recording.duration >= 0.4)

    a.close()  # the call ends: the recording is finished, the caller's file left open

    assert recording.stopped and not file.closed
    assert load_as_pcm8k(file.getvalue()).size == 3200
    assert len(carol.drain()) == 10


async def test_a_recording_stops_by_itself_at_its_limit_and_says_so(
    manager, alice, tmp_path: Path
) -> None:
    a = await endpoint_for(manager, alice)
    recording = a.record(tmp_path / "short.wav", max_seconds=0.1)
    finished: list[bool] = []
    recording.on_finished = lambda: finished.append(True)

    await speak(alice, a, VOICE[:1600])

    assert finished == [True] and recording.stopped and recording.error is None
    assert load_as_pcm8k(tmp_path / "short.wav").size == 800


class FailingDisk(io.BytesIO):
    """A file whose writes fail once the header is written: a full disk."""

    def write(self, data) -> int:  # type: ignore[override]
        if self.tell() >= 44:
            raise OSError(28, "No space left on device")
        return super().write(data)


async def test_a_recording_that_cannot_be_written_stops_and_the_call_goes_on(
    manager, alice, bob
) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    bridge(a, b)
    recording = a.record(FailingDisk())
    finished: list[bool] = []
    recording.on_finished = lambda: finished.append(True)

    for index in range(30):  # the first write comes after half a second of audio
        alice.send(a, bytes([index]) * 160)

    assert [(await bob.receive()).payload[0] for _ in range(30)] == list(range(30))
    assert recording.stopped and isinstance(recording.error, OSError) and finished == [True]


async def test_record_refuses_a_closed_endpoint_and_reports_an_unwritable_path(
    manager, alice, tmp_path: Path
) -> None:
    a = await endpoint_for(manager, alice)
    with pytest.raises(OSError):
        a.record(tmp_path / "no" / "such" / "dir.wav")
    a.close()
    with pytest.raises(RuntimeError):
        a.record(io.BytesIO())


async def test_on_played_is_called_once_when_an_announcement_ends(manager, alice) -> None:
    a = await endpoint_for(manager, alice)
    played: list[str] = []

    def next_one() -> None:
        played.append("first" if not played else "second")
        if len(played) == 1:
            a.play(TONE[:800], loop=False)  # the next announcement, chained

    a.on_played = next_one
    a.play(TONE[:1600], loop=False)

    await until(lambda: len(played) == 2)
    assert not a.playing
    await asyncio.sleep(0.06)  # the last packet is on its way; nothing more is coming
    assert len(alice.drain()) == 15  # 10 + 5 packets of 20 ms
    assert played == ["first", "second"]


async def test_on_played_is_not_called_for_an_announcement_cut_short(manager, alice, bob) -> None:
    a, b = await endpoint_for(manager, alice), await endpoint_for(manager, bob)
    played: list[bool] = []
    a.on_played = lambda: played.append(True)
    a.play(TONE[:2400], loop=False)
    await asyncio.sleep(0.05)
    a.listen_to(b)
    await asyncio.sleep(0.35)
    assert played == []


async def test_a_codec_change_during_an_announcement_goes_on_where_it_was(manager, alice) -> None:
    a = await endpoint_for(manager, alice, "PCMU", 0)
    a.play(TONE[:4000], loop=False)
    await asyncio.sleep(0.1)
    a.set_remote(alice.addr, 8, "PCMA", 101)  # a re-INVITE mid-announcement
    played: list[bool] = []
    a.on_played = lambda: played.append(True)
    await until(lambda: played == [True])
    await asyncio.sleep(0.02)

    packets = alice.drain()
    laws = [p.payload_type for p in packets]
    switch = laws.index(8)
    assert set(laws[:switch]) == {0} and set(laws[switch:]) == {8}
    decoded = np.concatenate(
        [g711.decode("PCMU" if p.payload_type == 0 else "PCMA", p.payload) for p in packets]
    )
    assert decoded.size == 4000  # every sample once: nothing replayed, nothing skipped
    assert np.corrcoef(decoded, TONE[:4000])[0, 1] > 0.999
