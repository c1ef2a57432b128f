"""Digest authentication of phones, and blocking of sources that keep failing it.

Unknown users and wrong passwords get the same answer (a fresh 401 challenge) after the same
work, so that accounts cannot be enumerated.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import NamedTuple

from pbx.engine.directory import DeviceInfo, Directory
from pbx.sip import digest
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request
from pbx.sip.uri import SipUri, parse_uri

# Work done for an unknown user, so that its answer takes as long as a wrong password's.
_DUMMY_HA1 = {"MD5": "0" * 32, "SHA-256": "0" * 64}


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    device: DeviceInfo | None  # set when authenticated
    challenge: list[str]  # WWW-Authenticate values to send when not
    failed: bool = False  # credentials were given and were wrong (or unknown)


# One line per block and per unblock, for the operator and for fail2ban (the IP after "source").
security_log = logging.getLogger("pbx.security")


class BlockedSource(NamedTuple):
    """A blocked source, as `FailureTracker.blocked()` lists it: (ip, seconds_left, failures)."""

    ip: str
    seconds_left: float
    failures: int  # failed authentications that led to the block


class FailureTracker:
    """Counts authentication failures per source IP; blocks one that passes the limit."""

    def __init__(self, limit: int, window: float, block_for: float) -> None:
        self.limit, self.window, self.block_for = limit, window, block_for
        self._failures: dict[str, deque[float]] = {}
        self._blocked: dict[str, tuple[float, int]] = {}  # ip -> (until, failures)

    def is_blocked(self, ip: str, now: float) -> bool:
        block = self._blocked.get(ip)
        if block is None:
            return False
        if now >= block[0]:
            del self._blocked[ip]
            return False
        return True

    def failed(self, ip: str, now: float) -> None:
        if len(self._failures) > 10_000:
            # Many sources, each failing a little (spoofed addresses): forget the stale ones.
            cutoff = now - self.window
            self._failures = {k: v for k, v in self._failures.items() if v and v[-1] >= cutoff}
        times = self._failures.setdefault(ip, deque())
        times.append(now)
        while times and times[0] < now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            already = self.is_blocked(ip, now)  # a carrier's address is served while blocked
            self._blocked[ip] = (now + self.block_for, len(times))
            del self._failures[ip]
            if not already:
                security_log.warning(
                    "blocked SIP source %s for %d s after %d failed authentications",
                    ip,
                    round(self.block_for),
                    len(times),
                )

    def succeeded(self, ip: str) -> None:
        self._failures.pop(ip, None)

    def blocked(self, now: float) -> list[BlockedSource]:
        """The sources blocked at `now`, the first to be let in again first."""
        for ip in [ip for ip, (until, _) in self._blocked.items() if now >= until]:
            del self._blocked[ip]
        blocks = sorted(self._blocked.items(), key=lambda item: item[1])
        return [BlockedSource(ip, until - now, failures) for ip, (until, failures) in blocks]

    def unblock(self, ip: str, by: str = "") -> bool:
        """Let `ip` in again at once; False when it was not blocked.

        Args:
            by: who asked (an administrator's username), for the log line.
        """
        if self._blocked.pop(ip, None) is None:
            return False
        self._failures.pop(ip, None)
        who = f" by administrator {by}" if by else ""
        security_log.warning("unblocked SIP source %s%s", ip, who)
        return True


class NonceCounts:
    """Remembers each nonce's highest nonce-count, so that a sniffed header cannot be replayed.

    With qop the count must grow (RFC 7616 3.4); without qop a nonce serves one request only.
    Entries go once their nonce has expired anyway, so memory is bounded by rate x lifetime.
    """

    def __init__(self, lifetime: float, limit: int = 500_000) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def fresh(self, credentials: digest.Credentials, now: float) -> bool:
        while self._seen:
            _, (_, first_seen) = next(iter(self._seen.items()))
            if first_seen > now - self.lifetime and len(self._seen) < self.limit:
                break
            self._seen.popitem(last=False)
        try:
            count = int(credentials.nc, 16) if credentials.qop and credentials.nc else 0
        except ValueError:
            return False
        seen = self._seen.get(credentials.nonce)
        if seen is not None and count <= seen[0]:
            return False
        self._seen[credentials.nonce] = (count, seen[1] if seen else now)
        return True


def _uri_matches(digest_uri: str, request: Request) -> bool:
    """The digest's uri names this request's target (RFC 3261 22.4): a header taken from a
    call to one number cannot place a call to another. Phones that put only our host in it
    (SIPp, pyVoIP) are accepted; a user part, when given, must be the dialled one."""
    try:
        credited = parse_uri(digest_uri)
        target = request.request_uri
    except SipParseError:
        return False
    if not isinstance(credited, SipUri) or not credited.user:
        return True
    return isinstance(target, SipUri) and credited.user == target.user


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
        self.replays = NonceCounts(nonce_lifetime)

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
        if device is None or verdict == "rejected" or not _uri_matches(credentials.uri, request):
            return self._failure(source_ip, now)
        if verdict == "stale" or not self.replays.fresh(credentials, now):
            # An expired nonce, or one used again with a count already seen (a replayed
            # header): the right password answers a new challenge without asking the user.
            return AuthOutcome(None, self.challenge(now, stale=True))
        self.tracker.succeeded(source_ip)
        self.accepted[algorithm] += 1
        return AuthOutcome(device, [])

    def _failure(self, source_ip: str, now: float) -> AuthOutcome:
        self.tracker.failed(source_ip, now)
        return AuthOutcome(None, self.challenge(now), failed=True)
