"""Digest authentication of phones, and blocking of sources that keep failing it.

Unknown users and wrong passwords get the same answer (a fresh 401 challenge) after the same
work, so that accounts cannot be enumerated.
"""

from __future__ import annotations

import secrets
from collections import Counter, deque
from dataclasses import dataclass

from pbx.engine.directory import DeviceInfo, Directory
from pbx.sip import digest
from pbx.sip.message import Request

# Work done for an unknown user, so that its answer takes as long as a wrong password's.
_DUMMY_HA1 = {"MD5": "0" * 32, "SHA-256": "0" * 64}


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    device: DeviceInfo | None  # set when authenticated
    challenge: list[str]  # WWW-Authenticate values to send when not
    failed: bool = False  # credentials were given and were wrong (or unknown)


class FailureTracker:
    """Counts authentication failures per source IP; blocks one that passes the limit."""

    def __init__(self, limit: int, window: float, block_for: float) -> None:
        self.limit, self.window, self.block_for = limit, window, block_for
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, float] = {}

    def is_blocked(self, ip: str, now: float) -> bool:
        until = self._blocked.get(ip)
        if until is None:
            return False
        if now >= until:
            del self._blocked[ip]
            return False
        return True

    def failed(self, ip: str, now: float) -> None:
        times = self._failures.setdefault(ip, deque())
        times.append(now)
        while times and times[0] < now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            self._blocked[ip] = now + self.block_for
            del self._failures[ip]

    def succeeded(self, ip: str) -> None:
        self._failures.pop(ip, None)


class Authenticator:
    """Challenges and verifies requests from phones against the directory's HA1 values."""

    def __init__(
        self,
        realm: str,
        directory: Directory,
        *,
        nonce_lifetime: float = 300,
        algorithms: tuple[str, ...] = ("MD5",),
        tracker: FailureTracker | None = None,
    ) -> None:
        self.realm = realm
        self.directory = directory
        self.algorithms = algorithms
        self.nonces = digest.NonceService(secrets.token_bytes(32), nonce_lifetime)
        self.tracker = tracker or FailureTracker(20, 60, 300)
        self.accepted: Counter[str] = Counter()  # successful authentications per algorithm

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        return digest.challenges_for(
            self.realm, self.nonces.issue(now), stale, algorithms=self.algorithms
        )

    async def check(self, request: Request, source_ip: str, now: float) -> AuthOutcome:
        """Authenticate `request`; return the device, or the challenge to answer with."""
        value = request.headers.get("Authorization") or request.headers.get("Proxy-Authorization")
        if not value:
            return AuthOutcome(None, self.challenge(now))
        try:
            credentials = digest.parse_credentials(value)
        except digest.DigestError:
            return self._failure(source_ip, now)
        device = await self.directory.device(credentials.username)
        algorithm = credentials.algorithm.upper()
        if device is None or algorithm not in _DUMMY_HA1:
            ha1 = _DUMMY_HA1.get(algorithm, _DUMMY_HA1["MD5"])
        else:
            ha1 = device.ha1_sha256 if algorithm == "SHA-256" else device.ha1_md5
        verdict = digest.authenticate(
            credentials,
            realm=self.realm,
            method=request.method,
            ha1=ha1,
            nonces=self.nonces,
            now=now,
            body=request.body,
        )
        if device is None or verdict == "rejected":
            return self._failure(source_ip, now)
        if verdict == "stale":
            return AuthOutcome(None, self.challenge(now, stale=True))
        self.tracker.succeeded(source_ip)
        self.accepted[algorithm] += 1
        return AuthOutcome(device, [])

    def _failure(self, source_ip: str, now: float) -> AuthOutcome:
        self.tracker.failed(source_ip, now)
        return AuthOutcome(None, self.challenge(now), failed=True)
