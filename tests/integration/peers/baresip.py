"""Drive baresip 1.0 (package baresip-core) as a softphone over its ctrl_tcp socket.

Each Baresip instance gets its own HOME/config dir, a SIP port, an RTP port range and a
control port on 127.0.0.1. It plays a WAV (a tone by default) as its microphone and the
sndfile module records what it hears (*-dec.wav). The control protocol is netstring-framed
JSON; a reader thread collects responses (matched by token) and events.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .audio import read_wav, wait_tone, write_tone_wav, write_wav
from .ports import HOST, free_port_range
from .waiting import wait_for

SOURCE_SECONDS = 180  # aufile ends the call when the WAV runs out: outlast any test


class BaresipError(RuntimeError):
    """baresip refused a command or did not do what was expected in time."""


def baresip_binary() -> str | None:
    """Path of the baresip binary, or None when it is not installed."""
    return shutil.which("baresip")


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class Baresip:
    """One baresip softphone. Use as a context manager.

    Args:
        user: the SIP user (extension) of the account.
        password: digest password, used when registering.
        registrar: "host:port" of the registrar; None for a peer-to-peer phone (regint=0)
            that is reached directly at `uri`.
        answermode: "auto" answers every call, "manual" rings until answer().
        tone_hz: frequency of the tone it sends; ignored when source_wav is given.
        source_wav: a WAV (8 kHz mono 16-bit) to send instead of a tone.
        mwi: load the mwi module and set ;mwi=yes: it subscribes to message-summary
            (RFC 3842) once registered; each NOTIFY body arrives as an MWI_NOTIFY event.
    """

    def __init__(
        self,
        user: str = "alice",
        *,
        password: str | None = None,
        registrar: str | None = None,
        answermode: str = "auto",
        tone_hz: float | None = 440.0,
        source_wav: str | Path | None = None,
        regint: int = 60,
        name: str | None = None,
        mwi: bool = False,
    ) -> None:
        self.user = user
        self.password = password
        self.registrar = registrar
        self.answermode = answermode
        self.regint = regint if registrar else 0
        self.name = name or user
        self.mwi = mwi  # subscribes to its mailbox's message-summary once registered
        base = free_port_range(2)  # baresip also opens TLS on sip_port + 1 (TCP)
        self.sip_port = base
        self.ctrl_port = free_port_range(1)
        rtp = free_port_range(20)
        self.rtp_ports = (rtp, rtp + 19)
        self.home = Path(tempfile.mkdtemp(prefix=f"baresip-{self.name}-"))
        self.rec_dir = self.home / "rec"
        self.rec_dir.mkdir()
        if source_wav is not None:
            self.source_wav = Path(source_wav)
        elif tone_hz is not None:
            self.source_wav = write_tone_wav(self.home / "source.wav", tone_hz, SOURCE_SECONDS)
        else:
            self.source_wav = write_wav(
                self.home / "source.wav", np.zeros(SOURCE_SECONDS * 8000, np.int16)
            )
        self.events: list[dict[str, Any]] = []
        self._taken: set[int] = set()
        self._responses: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._tokens = itertools.count(1)
        self._send_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._closed = False

    # ----------------------------------------------------------------- addresses
    @property
    def uri(self) -> str:
        """The URI to dial this phone directly (no registrar in between)."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    @property
    def aor(self) -> str:
        """Address of record of its account."""
        host = self.registrar or f"{HOST}:{self.sip_port}"
        return f"sip:{self.user}@{host}"

    @property
    def log_path(self) -> Path:
        """baresip's stdout/stderr."""
        return self.home / "baresip.log"

    def log(self) -> str:
        """baresip's output so far (for assertion messages)."""
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")
        return ""

    # ----------------------------------------------------------------- lifecycle
    def _write_config(self) -> None:
        lines = [
            "poll_method epoll",
            f"sip_listen {HOST}:{self.sip_port}",
            # Without this the SDP advertises the machine's other interface, whatever sip_listen.
            f"net_interface {HOST}",
            "call_local_timeout 120",
            "call_max_calls 4",
            f"audio_source aufile,{self.source_wav}",
            # No sound card: the player is a module that is not loaded, so nothing plays,
            # but the decoder (and sndfile behind it) still runs.
            "audio_player alsa,null",
            "audio_alert alsa,null",
            f"rtp_ports {self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "rtp_timeout 0",
            "jitter_buffer_delay 1-10",
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module aufile.so",
            "module sndfile.so",
            f"snd_path {self.rec_dir}",
            "module_tmp account.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            *(["module_app mwi.so"] if self.mwi else []),
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
        ]
        (self.home / "config").write_text("\n".join(lines) + "\n")
        params = [f"regint={self.regint}", f"answermode={self.answermode}"]
        if self.mwi:
            params.append("mwi=yes")
        params.append("audio_codecs=PCMU,PCMA")
        if self.password is not None:
            params.insert(0, f"auth_pass={self.password}")
        self.account = f"<{self.aor}>;" + ";".join(params)
        # With mwi the account is added once running (start()): baresip 1.0's mwi module
        # re-subscribes every account in a loop that never ends when its start-up timer
        # fires after the first registration already succeeded (a race seen 1 run in 5).
        (self.home / "accounts").write_text("" if self.mwi else self.account + "\n")
        (self.home / "contacts").write_text("")

    def start(self, timeout: float = 5.0) -> Baresip:
        """Start baresip and connect to its control socket."""
        binary = baresip_binary()
        if binary is None:
            raise FileNotFoundError("baresip is not installed (apt-get install baresip-core)")
        self._write_config()
        env = dict(os.environ, HOME=str(self.home))
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [binary, "-f", str(self.home)],
                cwd=self.home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise BaresipError(f"baresip exited at start:\n{self.log()}")
            try:
                self._sock = socket.create_connection((HOST, self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BaresipError(f"no ctrl_tcp on {self.ctrl_port}:\n{self.log()}") from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name=f"baresip-{self.name}")
        self._reader.daemon = True
        self._reader.start()
        if self.mwi:
            self.command("reginfo")  # answered by the main loop: the mwi timer has fired
            self._checked("uanew", self.account)
        return self

    def close(self) -> None:
        """`quit`, SIGKILL after 2 s, then remove the config dir."""
        if self._closed:
            return
        self._closed = True
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(OSError, BaresipError):
                self._send({"command": "quit", "params": "", "token": "quit"})
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._reader is not None:
            self._reader.join(timeout=2)
        if os.environ.get("CENTRALINO_KEEP_PEERS"):
            print(f"keeping {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """A power cut for the with-block: the process is stopped, it sends nothing, not even BYE."""
        if self._proc is None:
            raise BaresipError("not started")
        os.kill(self._proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self._proc.pid, signal.SIGCONT)

    def __enter__(self) -> Baresip:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- protocol
    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            raise BaresipError("not started")
        with self._send_lock:
            self._sock.sendall(_netstring(json.dumps(message).encode()))

    def _read_loop(self) -> None:
        assert self._sock is not None
        buf = b""
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                size = int(buf[:colon])
                end = colon + 1 + size
                if len(buf) < end + 1:
                    break
                self._dispatch(buf[colon + 1 : end])
                buf = buf[end + 1 :]  # skip the trailing comma
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self, payload: bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        with self._cond:
            if message.get("event"):
                message["_time"] = time.monotonic()
                self.events.append(message)
            elif message.get("response"):
                self._responses[str(message.get("token"))] = message
            self._cond.notify_all()

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a ctrl_tcp command and return its response ({"ok", "data", ...})."""
        token = f"t{next(self._tokens)}"
        self._send({"command": name, "params": params, "token": token})
        with self._cond:
            if not self._cond.wait_for(lambda: token in self._responses, timeout):
                raise BaresipError(f"no response to {name!r} in {timeout} s")
            return self._responses.pop(token)

    def _checked(self, name: str, params: str = "") -> dict[str, Any]:
        response = self.command(name, params)
        if not response.get("ok"):
            raise BaresipError(f"{self.name}: {name} {params!r} failed: {response.get('data')}")
        return response

    def wait_event(self, type: str, timeout: float = 10.0, **match: str) -> dict[str, Any]:  # noqa: A002 - the protocol calls it type
        """Wait for the next event of this type not returned before (match: field values)."""

        def find() -> dict[str, Any] | None:
            for index, event in enumerate(self.events):
                if index in self._taken or event.get("type") != type:
                    continue
                if all(event.get(k) == v for k, v in match.items()):
                    self._taken.add(index)
                    return event
            return None

        with self._cond:
            found = self._cond.wait_for(find, timeout)
        if not found:
            seen = [e.get("type") for e in self.events]
            raise BaresipError(f"{self.name}: no {type} in {timeout} s; events so far: {seen}")
        return found

    def drain(self) -> None:
        """Forget the events so far: the next wait_event only sees newer ones."""
        with self._cond:
            self._taken.update(range(len(self.events)))

    def has_event(self, type: str) -> bool:  # noqa: A002
        """Whether an event of this type has arrived (taken or not)."""
        with self._cond:
            return any(e.get("type") == type for e in self.events)

    # ----------------------------------------------------------------- phone actions
    def dial(self, uri: str) -> None:
        """Call a URI (sip:100@127.0.0.1:5060) or, with a registrar, a number."""
        self._checked("dial", uri)

    def answer(self) -> None:
        """Answer the ringing call (answermode=manual)."""
        self._checked("accept")

    def hangup(self) -> None:
        """Hang up the current call."""
        self._checked("hangup")

    def hold(self) -> None:
        """Put the current call on hold (re-INVITE a=sendonly)."""
        self._checked("hold")

    def resume(self) -> None:
        """Take the current call off hold."""
        self._checked("resume")

    def transfer(self, uri: str) -> None:
        """Blind transfer of the current call (REFER). baresip 1.0 has no attended transfer."""
        self._checked("transfer", uri)

    def send_dtmf(self, digits: str, gap: float = 0.25) -> None:
        """Send DTMF digits as RFC 2833 events, one at a time."""
        for digit in digits:
            self._checked("sndcode", digit)
            time.sleep(gap)

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the account is registered (REGISTER_OK, or reginfo says OK)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.has_event("REGISTER_OK"):
                return
            if self.has_event("REGISTER_FAIL"):
                raise BaresipError(f"{self.name}: registration failed: {self._register_fail()}")
            info = self.command("reginfo").get("data", "")
            if " OK " in info or "\x1b[32mOK" in info:
                return
            with self._cond:
                self._cond.wait(0.1)
        raise BaresipError(f"{self.name}: not registered after {timeout} s")

    def _register_fail(self) -> str:
        for event in self.events:
            if event.get("type") == "REGISTER_FAIL":
                return str(event.get("param"))
        return ""

    def wait_established(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the next CALL_ESTABLISHED event."""
        return self.wait_event("CALL_ESTABLISHED", timeout)

    def wait_closed(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the next CALL_CLOSED event."""
        return self.wait_event("CALL_CLOSED", timeout)

    def wait_incoming(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the next CALL_INCOMING event."""
        return self.wait_event("CALL_INCOMING", timeout)

    def mwi_bodies(self) -> list[str]:
        """The message-summary bodies its mwi subscription received, oldest first."""
        with self._cond:
            return [str(e.get("param")) for e in self.events if e.get("type") == "MWI_NOTIFY"]

    def wait_mwi(self, text: str, timeout: float = 10.0) -> str:
        """Wait until a message-summary body received since the start contains `text`."""
        found: str = wait_for(
            lambda: next((b for b in reversed(self.mwi_bodies()) if text in b), ""),
            timeout,
            what=f"{self.name}: a message summary with {text!r}",
            seen=self.mwi_bodies,
            interval=0.05,
        )
        return found

    # ----------------------------------------------------------------- audio
    def received_wavs(self) -> list[Path]:
        """The recordings of what it heard, oldest first (one per call, per second)."""
        return sorted(self.rec_dir.glob("*-dec.wav"), key=lambda p: (p.stat().st_mtime, p.name))

    def received_audio(self, index: int = -1) -> np.ndarray:
        """What it heard during a call (default: the last one) as int16 samples.

        Works during the call too: the file is read as far as it has been written.
        """
        files = self.received_wavs()
        if not files:
            return np.zeros(0, np.int16)
        samples, _rate = read_wav(files[index])
        return samples

    def wait_hearing(
        self, freq: float, seconds: float = 1.5, *, since: int = 0, timeout: float = 10.0
    ) -> None:
        """Wait until the last `seconds` it heard in this call carry a tone of freq Hz.

        Only audio from sample `since` of received_audio() on counts.
        """
        wait_tone(
            self.received_audio, freq, seconds=seconds, who=self.name, since=since, timeout=timeout
        )

    def wait_received(self, samples: int, timeout: float = 10.0) -> None:
        """Wait until the recording of this call holds `samples` samples (8 kHz)."""
        wait_for(
            lambda: self.received_audio().size >= samples,
            timeout,
            what=f"{self.name} to have heard {samples / 8000:.2f} s",
            seen=lambda: f"{self.received_audio().size / 8000:.2f} s",
            interval=0.05,
        )
