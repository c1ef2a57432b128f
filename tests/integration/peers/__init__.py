"""Real SIP peers for integration tests: SIPp, baresip, linphonec and a pyVoIP phone.

Every peer is a context manager bound to 127.0.0.1 on ports from ports.py; leaving the
with-block kills its processes and removes its temp dir. Set CENTRALINO_KEEP_PEERS=1 to keep
the dirs (configs, logs, recordings) for a post-mortem.
"""

from __future__ import annotations

from .audio import assert_tone, dominant_frequency, read_wav, rms, trim_silence, write_tone_wav
from .baresip import Baresip, BaresipError, baresip_binary
from .linphone import Linphone, LinphoneError, linphone_binaries
from .ports import HOST, free_port_range, free_udp_port
from .pyvoip_phone import PyVoIPPhone, pyvoip_available
from .sipp import SippBackground, SippResult, run_sipp, scenario_path, sipp_binary, sipp_uas

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
    "trim_silence",
    "write_tone_wav",
]
