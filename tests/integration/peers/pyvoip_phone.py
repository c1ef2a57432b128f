"""A small in-test phone on pyVoIP 1.6.8 (PCMU only, UDP only, short calls).

pyVoIP sends everything (REGISTER, INVITE, answers) to one server host:port. With
register=False it skips REGISTER, so it can call a peer (baresip) directly.
pyVoIP's audio API is 8-bit unsigned linear; this wrapper speaks int16 numpy arrays.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from .audio import wait_tone
from .ports import HOST, free_port_range, free_udp_port

FRAME = 160  # 20 ms at 8 kHz


def pyvoip_available() -> bool:
    """Whether pyVoIP can be imported."""
    try:
        import pyVoIP.VoIP  # noqa: F401
    except ImportError:
        return False
    return True


def to_u8(samples: npt.ArrayLike) -> bytes:
    """int16 samples to pyVoIP's unsigned 8-bit linear audio."""
    data = np.asarray(samples, dtype=np.int16).astype(np.int32)
    return ((data >> 8) + 128).astype(np.uint8).tobytes()


def from_u8(data: bytes) -> np.ndarray:
    """pyVoIP's unsigned 8-bit linear audio to int16 samples."""
    u8 = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
    return ((u8 - 128) << 8).astype(np.int16)


class PyVoIPPhone:
    """A pyVoIP VoIPPhone that plays a tone into its calls and records what it hears.

    Args:
        server: "host:port" of the registrar/PBX (or of a peer with register=False).
        user, password: the account.
        register: False to skip REGISTER (calling a peer directly).
        auto_answer: answer incoming calls at once.
    """

    def __init__(
        self,
        server: str,
        user: str = "pyvoip",
        password: str = "",
        *,
        register: bool = True,
        auto_answer: bool = True,
    ) -> None:
        from pyVoIP.VoIP import VoIPPhone

        host, port = server.rsplit(":", 1)
        self.sip_port = free_udp_port()
        rtp = free_port_range(10)
        self.auto_answer = auto_answer
        self.incoming: list[Any] = []
        self._received: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._tx: np.ndarray | None = None
        self._pump: threading.Thread | None = None
        self._stop = threading.Event()
        self.call: Any = None
        self.phone = VoIPPhone(
            host,
            int(port),
            user,
            password,
            myIP=HOST,
            callCallback=self._on_incoming,
            sipPort=self.sip_port,
            rtpPortLow=rtp,
            rtpPortHigh=rtp + 9,
        )
        if not register:
            self.phone.sip.register = self._skip_register  # type: ignore[method-assign]

    def _skip_register(self) -> bool:
        from pyVoIP.VoIP import PhoneStatus

        self.phone._status = PhoneStatus.REGISTERED
        return True

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> PyVoIPPhone:
        """Register (unless register=False) and listen."""
        self.phone.start()
        return self

    def close(self) -> None:
        """Hang up, stop the media pump, deregister, close sockets."""
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=2)
        with contextlib.suppress(Exception):
            self.phone.stop()

    def __enter__(self) -> PyVoIPPhone:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def registered(self) -> bool:
        """pyVoIP says REGISTERED."""
        from pyVoIP.VoIP import PhoneStatus

        return self.phone.get_status() == PhoneStatus.REGISTERED

    # ------------------------------------------------------------------ calls
    def set_tone(self, samples: npt.ArrayLike | None) -> None:
        """The audio (int16, 8 kHz) it sends in calls, looped; None for silence."""
        self._tx = None if samples is None else np.asarray(samples, dtype=np.int16)

    def _on_incoming(self, call: Any) -> None:
        self.incoming.append(call)
        if self.auto_answer:
            call.answer()
            self.call = call
            self._start_pump(call)

    def dial(self, number: str, timeout: float = 10.0) -> Any:
        """Call a number (sent to the server) and wait until it is answered."""
        from pyVoIP.VoIP import CallState

        call = self.phone.call(number)
        deadline = time.monotonic() + timeout
        while call.state != CallState.ANSWERED:
            if call.state == CallState.ENDED or time.monotonic() > deadline:
                raise TimeoutError(f"call to {number} not answered (state {call.state})")
            time.sleep(0.02)
        self.call = call
        self._start_pump(call)
        return call

    def answer(self, timeout: float = 10.0) -> Any:
        """Answer the next incoming call (auto_answer=False)."""
        deadline = time.monotonic() + timeout
        while not self.incoming:
            if time.monotonic() > deadline:
                raise TimeoutError("no incoming call")
            time.sleep(0.02)
        call = self.incoming[-1]
        call.answer()
        self.call = call
        self._start_pump(call)
        return call

    def hangup(self) -> None:
        """Hang up the current call."""
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=2)
            self._pump = None
        if self.call is not None:
            with contextlib.suppress(Exception):
                self.call.hangup()

    def _start_pump(self, call: Any) -> None:
        self._stop.clear()
        self._pump = threading.Thread(target=self._media_loop, args=(call,), daemon=True)
        self._pump.start()

    def _media_loop(self, call: Any) -> None:
        from pyVoIP.VoIP import CallState

        position = 0
        next_tick = time.monotonic()
        while not self._stop.is_set() and call.state == CallState.ANSWERED:
            tx = self._tx
            if tx is not None and tx.size:
                frame = np.take(tx, range(position, position + FRAME), mode="wrap")
                position = (position + FRAME) % tx.size
                with contextlib.suppress(Exception):
                    call.write_audio(to_u8(frame))
            with contextlib.suppress(Exception):
                data = call.read_audio(FRAME, blocking=False)
                with self._lock:
                    self._received.append(from_u8(data))
            next_tick += FRAME / 8000
            time.sleep(max(0.0, next_tick - time.monotonic()))

    def received_audio(self) -> np.ndarray:
        """Everything it heard so far, as int16 samples."""
        with self._lock:
            if not self._received:
                return np.zeros(0, np.int16)
            return np.concatenate(self._received)

    def wait_hearing(
        self, freq: float, seconds: float = 1.5, *, since: int = 0, timeout: float = 10.0
    ) -> None:
        """Wait until the last `seconds` it heard carry a tone of freq Hz.

        Only audio from sample `since` of received_audio() on counts.
        """
        wait_tone(
            self.received_audio, freq, seconds=seconds, who="pyVoIP", since=since, timeout=timeout
        )

    def wait_ended(self, timeout: float = 10.0) -> None:
        """Wait until the current call has ended (the peer hung up)."""
        from pyVoIP.VoIP import CallState

        deadline = time.monotonic() + timeout
        while self.call is not None and self.call.state != CallState.ENDED:
            if time.monotonic() > deadline:
                raise TimeoutError("call still up")
            time.sleep(0.05)
