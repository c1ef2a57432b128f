"""Digest credentials cannot be replayed or moved to another number."""

from __future__ import annotations

from pbx.engine.auth import Authenticator
from pbx.engine.directory import DeviceInfo, MemoryDirectory
from pbx.sip import digest
from pbx.sip.message import Request, parse_message

REALM = "centralino"


def _directory() -> MemoryDirectory:
    directory = MemoryDirectory()
    directory.devices["201"] = DeviceInfo(
        "201",
        REALM,
        digest.ha1("201", REALM, "s3cret-201", "MD5"),
        digest.ha1("201", REALM, "s3cret-201", "SHA-256"),
        1,
        "201",
    )
    return directory


def _invite(number: str, authorization: str = "", branch: str = "b1") -> Request:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    message = parse_message(
        (
            f"INVITE sip:{number}@pbx SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK{branch}\r\n"
            "From: <sip:201@pbx>;tag=a\r\n"
            f"To: <sip:{number}@pbx>\r\nCall-ID: c-{branch}\r\nCSeq: 1 INVITE\r\n"
            f"Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


def _answer(challenge: str, number: str, *, nc: int = 1, uri: str | None = None) -> str:
    credentials = digest.authorize(
        digest.parse_challenge(challenge),
        username="201",
        password="s3cret-201",
        method="INVITE",
        uri=uri or f"sip:{number}@pbx",
        cnonce="abc",
        nc=nc,
    )
    return str(credentials)


async def test_fresh_credentials_are_accepted() -> None:
    auth = Authenticator(REALM, _directory())
    [challenge] = (await auth.check(_invite("202"), "10.0.0.9", 0)).challenge
    outcome = await auth.check(_invite("202", _answer(challenge, "202")), "10.0.0.9", 1)
    assert outcome.device is not None


async def test_the_same_header_sent_again_is_challenged_anew() -> None:
    auth = Authenticator(REALM, _directory())
    [challenge] = (await auth.check(_invite("202"), "10.0.0.9", 0)).challenge
    header = _answer(challenge, "202")
    assert (await auth.check(_invite("202", header, "b2"), "10.0.0.9", 1)).device is not None
    replay = await auth.check(_invite("202", header, "b3"), "10.6.6.6", 2)
    assert replay.device is None
    assert "stale=true" in replay.challenge[0]


async def test_a_growing_nonce_count_reuses_the_nonce() -> None:
    auth = Authenticator(REALM, _directory())
    [challenge] = (await auth.check(_invite("202"), "10.0.0.9", 0)).challenge
    first = await auth.check(_invite("202", _answer(challenge, "202", nc=1), "b2"), "10.0.0.9", 1)
    second = await auth.check(_invite("203", _answer(challenge, "203", nc=2), "b3"), "10.0.0.9", 2)
    assert first.device is not None and second.device is not None


async def test_credentials_for_one_number_cannot_call_another() -> None:
    auth = Authenticator(REALM, _directory())
    [challenge] = (await auth.check(_invite("202"), "10.0.0.9", 0)).challenge
    header = _answer(challenge, "202")
    outcome = await auth.check(_invite("00390899999", header), "10.6.6.6", 1)
    assert outcome.device is None and outcome.failed


async def test_a_uri_naming_only_our_host_is_accepted_as_sipp_and_pyvoip_send_it() -> None:
    auth = Authenticator(REALM, _directory())
    [challenge] = (await auth.check(_invite("202"), "10.0.0.9", 0)).challenge
    header = _answer(challenge, "202", uri="sip:pbx:5060")
    assert (await auth.check(_invite("202", header), "10.0.0.9", 1)).device is not None
