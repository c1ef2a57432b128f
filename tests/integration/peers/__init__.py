"""Real SIP peers for integration tests: SIPp, baresip, linphonec and a pyVoIP phone.

Every peer is a context manager bound to 127.0.0.1 on ports from ports.py; leaving the
with-block kills its processes and removes its temp dir (tests get them from the fixtures of
tests/integration/conftest.py). Set CENTRALINO_KEEP_PEERS=1 to keep the dirs (configs, logs,
recordings) for a post-mortem.

Tests wait for what they need (an event, a call state, a tone heard: `wait_*` methods and
waiting.wait_for), never for a fixed time.
"""

from __future__ import annotations

from .audio import (
    assert_tone,
    dominant_frequency,
    read_wav,
    rms,
    tone_problem,
    trim_silence,
    wait_tone,
    write_tone_wav,
)
from .baresip import Baresip, BaresipError, baresip_binary
from .linphone import Linphone, LinphoneError, linphone_binaries
from .ports import HOST, free_port_range, free_udp_port
from .pyvoip_phone import PyVoIPPhone, pyvoip_available
from .sipp import SippBackground, SippResult, run_sipp, scenario_path, sipp_binary, sipp_uas
from .waiting import wait_for

__all__ = [
    "HOST",
    "Baresip",
    "BaresipError",
    "Linphone",
    "LinphoneError",
    "PyVoIPPhone",
    "SippBackground",
    "SippResult",
    "assert_tone",
    "baresip_binary",
    "dominant_frequency",
    "free_port_range",
    "free_udp_port",
    "linphone_binaries",
    "pyvoip_available",
    "read_wav",
    "rms",
    "run_sipp",
    "scenario_path",
    "sipp_binary",
    "sipp_uas",
    "tone_problem",
    "trim_silence",
    "wait_for",
    "wait_tone",
    "write_tone_wav",
]
