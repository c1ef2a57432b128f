"""Drive linphonec 5.1 (package linphone-cli) through linphonecsh: a second SIP stack.

linphonecsh talks to the daemon over a socket fixed at /tmp/linphonec-$UID, so only one
Linphone can run per user at a time: the context manager holds a file lock for its lifetime.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .audio import read_wav, wait_tone, write_tone_wav
from .ports import HOST, free_port_range, free_udp_port
from .waiting import wait_for

WAV_HEADER = 44
LOCK_PATH = Path(f"/tmp/linphonec-{os.getuid()}.centralino.lock")


class LinphoneError(RuntimeError):
    """linphonec did not do what was asked in time."""


def linphone_binaries() -> bool:
    """Whether linphonec and linphonecsh are installed."""
    return bool(shutil.which("linphonec") and shutil.which("linphonecsh"))


class Linphone:
    """One linphonec daemon. Use as a context manager.

    Args:
        user, password, registrar ("host:port"): the account; registrar None means no proxy
            (call URIs directly).
        tone_hz: the tone it plays into calls (a WAV in its home dir).
        autoanswer: answer incoming calls at once (-a).
    """

    def __init__(
        self,
        user: str = "linphone",
        *,
        password: str | None = None,
        registrar: str | None = None,
        tone_hz: float = 700.0,
        autoanswer: bool = True,
        lock_timeout: float = 60.0,
    ) -> None:
        self.user = user
        self.password = password
        self.registrar = registrar
        self.autoanswer = autoanswer
        self.lock_timeout = lock_timeout
        self.sip_port = free_udp_port()
        self.rtp_port = free_port_range(4)
        self.home = Path(tempfile.mkdtemp(prefix="linphone-"))
        (self.home / ".local/share/linphone").mkdir(parents=True)  # else 1st REGISTER fails
        self.rc = self.home / "linphonerc"
        self.log_path = self.home / "linphone.log"
        self.tone = write_tone_wav(self.home / "tone.wav", tone_hz, 120)
        self.record_path = self.home / "rx.wav"
        self._lock_file: int | None = None
        self._started = False

    @property
    def uri(self) -> str:
        """URI to call this phone directly."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    def _write_rc(self) -> None:
        lines = [
            "[sip]",
            f"sip_port={self.sip_port}",
            "sip_tcp_port=0",
            "sip_tls_port=0",
            f"bind_address={HOST}",
            # Without both lines linphonec "migrates" to IPv6 and offers c=IN IP6 <eth0>.
            "ipv6_migration_done=1",
            "use_ipv6=0",
            f"contact=sip:{self.user}@{HOST}:{self.sip_port}",
            "default_proxy=0" if self.registrar else "default_proxy=-1",
            "[rtp]",
            f"audio_rtp_port={self.rtp_port}",
            "[video]",
            "enabled=0",
            "capture=0",
            "display=0",
            "automatically_initiate=0",
            "automatically_accept=0",
            "[sound]",
            "echocancellation=0",
            "[audio_codec_0]",
            "mime=PCMU",
            "rate=8000",
            "enabled=1",
            "[audio_codec_1]",
            "mime=PCMA",
            "rate=8000",
            "enabled=1",
        ]
        if self.registrar:
            lines += [
                "[proxy_0]",
                f"reg_proxy=<sip:{self.registrar}>",
                f"reg_identity=sip:{self.user}@{self.registrar}",
                "reg_expires=60",
                "reg_sendregister=1",
                "[auth_info_0]",
                f"username={self.user}",
                f"passwd={self.password or ''}",
            ]
        self.rc.write_text("\n".join(lines) + "\n")

    def sh(self, *args: str, timeout: float = 10.0) -> str:
        """Run linphonecsh with this phone's HOME; returns its output."""
        env = dict(os.environ, HOME=str(self.home))
        proc = subprocess.run(
            ["linphonecsh", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return proc.stdout + proc.stderr

    def generic(self, command: str) -> str:
        """A linphonec console command (e.g. "calls", "terminate", "5" for DTMF)."""
        return self.sh("generic", command)

    def start(self) -> Linphone:
        """Take the per-user lock, start the daemon, switch sound to files."""
        if not linphone_binaries():
            raise FileNotFoundError("linphonec is not installed (apt-get install linphone-cli)")
        self._lock_file = os.open(LOCK_PATH, os.O_CREAT | os.O_RDWR, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LinphoneError("another Linphone holds the lock") from None
                time.sleep(0.1)
        # A daemon left over by a killed test would answer our commands: stop it.
        self.sh("exit", timeout=5)
        self._write_rc()
        args = ["init", "-c", str(self.rc), "-d", "6", "-l", str(self.log_path)]
        if self.autoanswer:
            args.insert(1, "-a")
        out = self.sh(*args, timeout=15)
        self._started = True
        deadline = time.monotonic() + 5.0
        while "registered" not in self.sh("status", "register"):  # the daemon answers
            if time.monotonic() > deadline:
                raise LinphoneError(f"linphonec did not start: {out}\n{self.log()[-3000:]}")
            time.sleep(0.05)
        self.generic("soundcard use files")
        self.play(self.tone)
        self.record(self.record_path)
        return self

    def close(self) -> None:
        """Stop the daemon, release the lock, remove the home dir."""
        if self._started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.generic("terminate all")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.sh("exit", timeout=5)
            self._started = False
            # The daemon takes about a second to go; only ours carries our rc path.
            deadline = time.monotonic() + 2.0
            while self._daemon_pids() and time.monotonic() < deadline:
                time.sleep(0.05)
            for pid in self._daemon_pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            os.close(self._lock_file)
            self._lock_file = None
        if not os.environ.get("CENTRALINO_KEEP_PEERS"):
            shutil.rmtree(self.home, ignore_errors=True)

    def _daemon_pids(self) -> list[int]:
        """Pids of the linphonec started with this instance's rc file."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"linphonec") and str(self.rc).encode() in cmdline:
                pids.append(int(entry.name))
        return pids

    def __enter__(self) -> Linphone:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log(self) -> str:
        """linphonec's log so far."""
        with contextlib.suppress(FileNotFoundError):
            return self.log_path.read_text(errors="replace")
        return ""

    # ------------------------------------------------------------------ actions
    def is_registered(self) -> bool:
        """`status register` says registered."""
        return "registered=1" in self.sh("status", "register") or (
            "registered, identity" in self.sh("status", "register")
        )

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until the proxy account is registered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_registered():
                return
            time.sleep(0.05)
        raise LinphoneError(f"not registered: {self.sh('status', 'register')}")

    def dial(self, uri: str) -> str:
        """Call a URI."""
        return self.sh("dial", uri)

    def play(self, wav: str | Path) -> None:
        """Send this WAV into calls (soundcard use files)."""
        self.generic(f"play {wav}")

    def record(self, wav: str | Path) -> None:
        """Record what calls bring in to this WAV."""
        self.generic(f"record {wav}")

    def send_dtmf(self, digits: str, gap: float = 0.3) -> None:
        """RFC 2833 DTMF, one digit at a time."""
        for digit in digits:
            self.generic(digit)
            time.sleep(gap)

    def calls(self) -> str:
        """The `calls` listing."""
        return self.generic("calls")

    def call_states(self) -> dict[int, str]:
        """{call id: state} from the `calls` listing ("StreamsRunning", "Paused", ...)."""
        rows = re.findall(r"^\s*(\d+)\s*\|[^|]*\|\s*(\w+)", self.calls(), re.MULTILINE)
        return {int(call_id): state for call_id, state in rows}

    def wait_call_states(
        self, check: Callable[[dict[int, str]], bool], what: str, timeout: float = 10.0
    ) -> dict[int, str]:
        """Wait until check(call_states()) holds; return the states then."""
        states: dict[int, str] = {}

        def look() -> bool:
            nonlocal states
            states = self.call_states()
            return check(states)

        wait_for(look, timeout, what=f"linphone {what}", seen=lambda: states, interval=0.05)
        return states

    def wait_no_call(self, timeout: float = 10.0) -> None:
        """Wait until its last call is over (its recording is closed then)."""
        self.wait_call_states(lambda states: not states, "with no call left", timeout)

    def wait_hearing(
        self, freq: float, seconds: float = 1.5, *, since: int = 0, timeout: float = 10.0
    ) -> None:
        """Wait until the last `seconds` it recorded carry a tone of freq Hz.

        Only audio from sample `since` of received_audio() on counts.
        """
        wait_tone(
            self.received_audio, freq, seconds=seconds, who="linphone", since=since, timeout=timeout
        )

    def in_call(self) -> bool:
        """Whether a call is running (StreamsRunning)."""
        return "StreamsRunning" in self.calls()

    def wait_in_call(self, timeout: float = 10.0) -> None:
        """Wait until a call has its media running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.in_call():
                return
            time.sleep(0.05)
        raise LinphoneError(f"no call running: {self.calls()}")

    def terminate(self) -> str:
        """Hang up the current call."""
        return self.generic("terminate")

    def status(self, what: str = "register") -> str:
        """`status register|autoanswer|hook`."""
        return self.sh("status", what)

    def received_audio(self) -> np.ndarray:
        """What calls brought in (the record file; all calls appended) as int16 samples."""
        if not self.record_path.exists():
            return np.zeros(0, np.int16)
        blob = self.record_path.read_bytes()
        if blob[:4] != b"RIFF":
            # Still recording: linphonec writes the 44-byte header when the call ends; the
            # samples (16-bit, 8 kHz with PCMU/PCMA) follow it, flushed every 4 kB.
            pcm = blob[WAV_HEADER:]
            return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.int16)
        samples, _rate = read_wav(self.record_path)
        return samples
