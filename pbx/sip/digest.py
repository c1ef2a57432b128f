"""SIP digest authentication: RFC 3261 section 22 with RFC 2617, RFC 7616 and RFC 8760.

Both sides live here. As a registrar/proxy we challenge phones and verify their answers from a
stored HA1 (the plain secret is never kept). As a UAC toward a SIP trunk we answer the trunk's
401/407 challenges. Everything is pure: randomness comes from ``secrets``, time is passed in.

Errors: a header from the network that cannot be understood raises ``DigestError`` (a
``ValueError``); a wrong or unverifiable answer makes ``verify`` return ``False``, never raise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestClient",
    "DigestError",
    "NonceService",
    "authenticate",
    "authorize",
    "challenge",
    "challenges_for",
    "ha1",
    "parse_challenge",
    "parse_credentials",
    "select_challenge",
    "verify",
]

# Preferred first. The -sess variants and SHA-512-256 are neither offered nor answered: no phone
# or trunk we target uses them, and SHA-512-256 would be a third stored HA1 per user.
ALGORITHMS: dict[str, str] = {"SHA-256": "sha256", "MD5": "md5"}

NonceState = Literal["ok", "stale", "invalid"]
Verdict = Literal["ok", "stale", "rejected"]


class DigestError(ValueError):
    """A challenge or credentials header from the network that cannot be understood."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` / ``Proxy-Authenticate`` Digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None

    def __str__(self) -> str:
        parts = [f"realm={_quote(self.realm)}"]
        if self.domain is not None:
            parts.append(f"domain={_quote(self.domain)}")
        parts.append(f"nonce={_quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A parsed ``Authorization`` / ``Proxy-Authorization`` Digest answer."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None

    def __str__(self) -> str:
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        # qop and nc go unquoted: RFC 2617's grammar says so and some servers insist.
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        return "Digest " + ", ".join(parts)


# --- header grammar -------------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Unquoted values are taken leniently: phones send nonces and URIs bare that are not tokens.
_BARE = re.compile(r'[^\s,"]+')
_SPACE = re.compile(r"\s*")
_NC = re.compile(r"[0-9a-fA-F]{8}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parse_params(value: str) -> dict[str, str]:
    """Split ``Digest a=b, c="d"`` into lower-cased names and unquoted values."""
    text = value.strip()
    scheme = _TOKEN.match(text)
    if scheme is None or scheme.group().lower() != "digest":
        raise DigestError(f"not a Digest header: {value[:40]!r}")
    pos = scheme.end()
    if pos < len(text) and not text[pos].isspace():
        raise DigestError("no space after the Digest scheme")
    params: dict[str, str] = {}
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == ","):
            pos += 1
        if pos == len(text):
            return params
        name = _TOKEN.match(text, pos)
        if name is None:
            raise DigestError(f"bad parameter name at {text[pos : pos + 20]!r}")
        pos = _SPACE.match(text, name.end()).end()  # type: ignore[union-attr]
        if pos == len(text) or text[pos] != "=":
            raise DigestError(f"parameter {name.group()!r} has no value")
        pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] == '"':
            item, pos = _read_quoted(text, pos + 1)
        else:
            bare = _BARE.match(text, pos)
            if bare is None:
                raise DigestError(f"parameter {name.group()!r} has no value")
            item, pos = bare.group(), bare.end()
        key = name.group().lower()
        if key in params:
            raise DigestError(f"parameter {key!r} repeated")
        params[key] = item
        pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos < len(text) and text[pos] != ",":
            raise DigestError(f"junk after parameter {key!r}")


def _read_quoted(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\\" and pos + 1 < len(text):
            pos += 1
            char = text[pos]
        out.append(char)
        pos += 1
    raise DigestError("unterminated quoted string")


def _required(params: dict[str, str], *names: str) -> None:
    for name in names:
        if name not in params:
            raise DigestError(f"missing {name!r}")
    if not params.get("nonce"):
        raise DigestError("empty nonce")


def parse_challenge(value: str) -> Challenge:
    """Parse a ``WWW-Authenticate`` or ``Proxy-Authenticate`` header value."""
    params = _parse_params(value)
    _required(params, "realm", "nonce")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    stale = params.get("stale", "false").lower()
    if stale not in ("true", "false"):
        raise DigestError(f"bad stale value {stale!r}")
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        opaque=params.get("opaque"),
        stale=stale == "true",
        domain=params.get("domain"),
    )


def parse_credentials(value: str) -> Credentials:
    """Parse an ``Authorization`` or ``Proxy-Authorization`` header value."""
    params = _parse_params(value)
    _required(params, "username", "realm", "nonce", "uri", "response")
    qop = params.get("qop")
    nc, cnonce = params.get("nc"), params.get("cnonce")
    if qop is not None:
        qop = qop.lower()
        # RFC 2617 3.2.2: with a qop the cnonce and nc are mandatory.
        if nc is None or cnonce is None:
            raise DigestError("qop given without nc and cnonce")
        if not _NC.fullmatch(nc):
            raise DigestError(f"bad nc {nc!r}")
    return Credentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=params.get("algorithm", "MD5").upper(),
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        opaque=params.get("opaque"),
    )


# --- the arithmetic -------------------------------------------------------------------------


def _hash(algorithm: str, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(ALGORITHMS[algorithm], raw).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """Return H(username:realm:password), the value the database stores per algorithm."""
    algorithm = algorithm.upper()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _hash(algorithm, f"{username}:{realm}:{password}")


def _response(
    algorithm: str,
    ha1_value: str,
    *,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
    body: bytes,
) -> str:
    if qop == "auth-int":
        ha2 = _hash(algorithm, f"{method}:{uri}:{_hash(algorithm, body)}")
    else:
        ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        # RFC 2069 compatibility: old phones answer a challenge without qop this way.
        return _hash(algorithm, f"{ha1_value}:{nonce}:{ha2}")
    return _hash(algorithm, f"{ha1_value}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- server side ----------------------------------------------------------------------------


class NonceService:
    """Stateless nonces: a timestamp and a random salt, signed with HMAC-SHA-256.

    Any node sharing the secret can check a nonce another node issued. Being stateless, a nonce
    may be replayed within its lifetime; nc is not tracked (the engine may add that per binding).
    """

    _SKEW = 30.0  # seconds a nonce may come from the future: nodes' clocks differ a little
    _MAC_LEN = 16
    _SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")

    def __init__(self, secret: bytes, lifetime: float = 300) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        if lifetime <= 0:
            raise ValueError("the nonce lifetime must be positive")
        self._secret = secret
        self.lifetime = lifetime

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[: self._MAC_LEN]

    def issue(self, now: float) -> str:
        """Return a fresh nonce stamped with ``now``."""
        payload = struct.pack(">Q", max(0, int(now * 1000))) + secrets.token_bytes(8)
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def check(self, nonce: str, now: float) -> NonceState:
        """Say whether ``nonce`` is ours and still fresh at ``now``."""
        if not self._SHAPE.fullmatch(nonce):
            return "invalid"
        raw = base64.urlsafe_b64decode(nonce + "=")
        # Reject spellings that decode to the same bytes: one nonce, one string.
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != nonce:
            return "invalid"
        payload, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return "invalid"
        issued = struct.unpack(">Q", payload[:8])[0] / 1000
        if issued > now + self._SKEW:
            return "invalid"
        if now - issued > self.lifetime:
            return "stale"
        return "ok"


def challenge(
    realm: str,
    nonce: str,
    *,
    algorithm: str = "MD5",
    stale: bool = False,
    opaque: str | None = None,
    qop: str | None = "auth",
) -> str:
    """Return a challenge header value for a 401 or 407."""
    algorithm = algorithm.upper()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    qops = (qop,) if qop else ()
    return str(Challenge(realm, nonce, algorithm, qops, opaque, stale))


def challenges_for(
    realm: str,
    nonce: str,
    stale: bool = False,
    *,
    algorithms: Iterable[str] = ("SHA-256", "MD5"),
) -> list[str]:
    """Return one challenge per algorithm, most preferred first, each for its own header field.

    RFC 8760 2.3 has the server list the header fields "in the order in which it would prefer to
    see them used", and 2.4 has the client "use the topmost header field that it supports". So
    SHA-256 goes first. An MD5-only phone that honours 2.4 skips it; one that blindly takes the
    first header answers MD5 arithmetic under algorithm=SHA-256 and fails. For such a device,
    pass ``algorithms=("MD5",)`` (a per-device setting).
    """
    return [challenge(realm, nonce, algorithm=a, stale=stale) for a in algorithms]


def verify(credentials: Credentials, *, method: str, ha1: str, body: bytes = b"") -> bool:
    """Check a client's response against the stored HA1 of its algorithm.

    Args:
        credentials: as parsed from the request.
        method: the request's method (RFC 3261 22.4: the method, not "GET").
        ha1: the stored HA1 for ``credentials.algorithm`` (SHA-256 HA1 for SHA-256).
        body: the request body, used only with qop=auth-int.
    Returns:
        True when the response matches. The nonce's freshness is not checked here.
    """
    if credentials.algorithm not in ALGORITHMS:
        return False
    if credentials.qop not in (None, "auth", "auth-int"):
        return False
    expected = _response(
        credentials.algorithm,
        ha1.lower(),
        nonce=credentials.nonce,
        method=method,
        uri=credentials.uri,
        qop=credentials.qop,
        nc=credentials.nc,
        cnonce=credentials.cnonce,
        body=body,
    )
    # Bytes, not str: compare_digest refuses non-ASCII str, and the response is remote input.
    given = credentials.response.lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), given)


def authenticate(
    credentials: Credentials,
    *,
    realm: str,
    method: str,
    ha1: str,
    nonces: NonceService,
    now: float,
    body: bytes = b"",
) -> Verdict:
    """Decide on a request's credentials: ``ok``, ``stale`` (re-challenge with stale=true), or
    ``rejected`` (re-challenge afresh, or 403 after repeated failures).

    Stale is only reported for a correct response (RFC 7616 3.3): the client then knows its
    password is right and retries with the new nonce without asking the user.
    """
    if credentials.realm != realm:
        return "rejected"
    state = nonces.check(credentials.nonce, now)
    if state == "invalid":
        return "rejected"
    if not verify(credentials, method=method, ha1=ha1, body=body):
        return "rejected"
    return "stale" if state == "stale" else "ok"


# --- client side ----------------------------------------------------------------------------


def _usable(ch: Challenge) -> bool:
    return ch.algorithm in ALGORITHMS and (not ch.qop or "auth" in ch.qop or "auth-int" in ch.qop)


def select_challenge(values: Iterable[Challenge | str]) -> Challenge:
    """Pick the topmost challenge we can answer (RFC 8760 2.4); unparsable ones are skipped."""
    for value in values:
        try:
            ch = parse_challenge(value) if isinstance(value, str) else value
        except DigestError:
            continue
        if _usable(ch):
            return ch
    raise DigestError("no challenge with a supported algorithm and qop")


def authorize(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int,
    body: bytes = b"",
) -> Credentials:
    """Compute the credentials answering ``challenge``; cnonce and nc are given (for tests).

    qop=auth is chosen when offered, else auth-int, else none (RFC 2069 style).
    """
    if not _usable(challenge):
        raise DigestError(
            f"cannot answer algorithm={challenge.algorithm} qop={','.join(challenge.qop)}"
        )
    if "auth" in challenge.qop:
        qop: str | None = "auth"
    elif "auth-int" in challenge.qop:
        qop = "auth-int"
    else:
        qop = None
    nc_text = f"{nc:08x}" if qop else None
    response = _response(
        challenge.algorithm,
        ha1(username, challenge.realm, password, challenge.algorithm),
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop else None,
        body=body,
    )
    return Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=challenge.algorithm,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce if qop else None,
        opaque=challenge.opaque,
    )


class DigestClient:
    """Answers a trunk's challenges for one account, counting nc per nonce."""

    _KEEP = 8  # nonces remembered; a 401 realm and a 407 realm may interleave

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._counts: dict[str, int] = {}

    def authorization(
        self, challenge: Challenge | str, *, method: str, uri: str, body: bytes = b""
    ) -> str:
        """Return the ``Authorization``/``Proxy-Authorization`` value answering ``challenge``."""
        ch = parse_challenge(challenge) if isinstance(challenge, str) else challenge
        count = self._counts.pop(ch.nonce, 0) + 1
        self._counts[ch.nonce] = count  # re-inserted last: the dict is kept in use order
        while len(self._counts) > self._KEEP:
            del self._counts[next(iter(self._counts))]
        credentials = authorize(
            ch,
            username=self.username,
            password=self._password,
            method=method,
            uri=uri,
            cnonce=secrets.token_hex(8),
            nc=count,
            body=body,
        )
        return str(credentials)
