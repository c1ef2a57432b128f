"""Free ports on 127.0.0.1 for test peers, never handed out twice in one process.

Ports come from below the kernel's ephemeral range (32768+) so that an outgoing socket
opened later by some peer cannot steal a port we promised to another one.
"""

from __future__ import annotations

import os
import random
import socket
import threading

HOST = "127.0.0.1"
_LOW, _HIGH = 20000, 32000

_lock = threading.Lock()
_handed_out: set[int] = set()
# Processes started in parallel (pytest-xdist) start at different places.
_cursor = _LOW + random.Random(os.getpid()).randrange(0, _HIGH - _LOW)


def _bindable(port: int) -> bool:
    """Whether both UDP and TCP can bind 127.0.0.1:port right now."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def free_port_range(n: int) -> int:
    """Reserve n consecutive free ports (UDP and TCP) and return the first one."""
    global _cursor
    if n < 1:
        raise ValueError("n must be at least 1")
    with _lock:
        for _ in range((_HIGH - _LOW) // max(n, 1) + 1):
            start = _cursor
            if start + n > _HIGH:
                start = _LOW
            # Keep ranges on even boundaries: RTP peers want an even port for RTP.
            start += start % 2
            _cursor = start + n + (n % 2)
            ports = range(start, start + n)
            if any(p in _handed_out for p in ports):
                continue
            if all(_bindable(p) for p in ports):
                _handed_out.update(ports)
                return start
    raise RuntimeError(f"no {n} consecutive free ports in {_LOW}-{_HIGH}")


def free_udp_port() -> int:
    """Reserve one free port (free on UDP and on TCP, since SIP peers listen on both)."""
    return free_port_range(1)


def free_tcp_port() -> int:
    """Reserve one free TCP port (a control socket)."""
    return free_port_range(1)


def release(*ports: int) -> None:
    """Give ports back so that a long session does not run out of them."""
    with _lock:
        _handed_out.difference_update(ports)
