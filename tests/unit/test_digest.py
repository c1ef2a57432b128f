"""Digest authentication: RFC worked examples, nonces, parsing, client/server round trips."""

from __future__ import annotations

import contextlib
import random

import pytest

from pbx.sip.digest import (
    Challenge,
    Credentials,
    DigestClient,
    DigestError,
    NonceService,
    authenticate,
    authorize,
    challenge,
    challenges_for,
    ha1,
    parse_challenge,
    parse_credentials,
    select_challenge,
    verify,
)

SECRET = b"0123456789abcdef0123456789abcdef"

# RFC 2617 section 3.5 (HTTP, so the method is GET).
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

# RFC 7616 section 3.9.1: note the password has a lower-case "of" (erratum 4495).
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def rfc7616_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


# --- worked examples ------------------------------------------------------------------------


def test_the_rfc2617_example_verifies_from_its_ha1():
    credentials = parse_credentials(RFC2617_AUTHORIZATION)
    stored = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert verify(credentials, method="GET", ha1=stored)


def test_the_client_reproduces_the_rfc2617_response():
    credentials = authorize(
        parse_challenge(RFC2617_CHALLENGE),
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
        nc=1,
    )
    assert credentials.response == "6629fae49393a05397450978507c4ef1"
    assert credentials.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert credentials.qop == "auth"
    assert credentials.nc == "00000001"


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_the_client_reproduces_the_rfc7616_responses(algorithm):
    credentials = authorize(
        parse_challenge(rfc7616_challenge(algorithm)),
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=RFC7616_CNONCE,
        nc=1,
    )
    assert credentials.response == RFC7616_RESPONSES[algorithm]
    assert credentials.algorithm == algorithm


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_the_rfc7616_responses_verify_from_stored_ha1(algorithm):
    credentials = Credentials(
        username="Mufasa",
        realm="http-auth@example.org",
        nonce=RFC7616_NONCE,
        uri="/dir/index.html",
        response=RFC7616_RESPONSES[algorithm],
        algorithm=algorithm,
        qop="auth",
        nc="00000001",
        cnonce=RFC7616_CNONCE,
    )
    stored = ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    assert verify(credentials, method="GET", ha1=stored)
    assert not verify(credentials, method="POST", ha1=stored)


def test_ha1_differs_per_algorithm_and_rejects_unknown_ones():
    assert len(ha1("a", "r", "p", "MD5")) == 32
    assert len(ha1("a", "r", "p", "sha-256")) == 64
    with pytest.raises(ValueError):
        ha1("a", "r", "p", "SHA-512-256")


# --- nonces ---------------------------------------------------------------------------------


def test_a_fresh_nonce_checks_ok():
    nonces = NonceService(SECRET)
    assert nonces.check(nonces.issue(now=1000.0), now=1000.0) == "ok"
    assert nonces.check(nonces.issue(now=1000.0), now=1299.0) == "ok"


def test_an_old_nonce_is_stale():
    nonces = NonceService(SECRET, lifetime=300)
    assert nonces.check(nonces.issue(now=1000.0), now=1301.0) == "stale"


def test_two_nonces_issued_at_the_same_instant_differ():
    nonces = NonceService(SECRET)
    assert nonces.issue(now=5.0) != nonces.issue(now=5.0)


def test_a_tampered_nonce_is_invalid():
    nonces = NonceService(SECRET)
    nonce = nonces.issue(now=1000.0)
    flipped = nonce[:5] + ("A" if nonce[5] != "A" else "B") + nonce[6:]
    assert nonces.check(flipped, now=1000.0) == "invalid"


def test_a_nonce_from_another_secret_is_invalid():
    other = NonceService(b"another secret of sixteen+ bytes")
    assert NonceService(SECRET).check(other.issue(now=1.0), now=1.0) == "invalid"


def test_a_nonce_from_the_future_is_invalid():
    nonces = NonceService(SECRET)
    assert nonces.check(nonces.issue(now=1000.0), now=900.0) == "invalid"


@pytest.mark.parametrize(
    "junk", ["", "abc", "x" * 43, "é" * 43, "dcd98b7102dd2f0e8b11d0f600bfb0c093"]
)
def test_junk_nonces_are_invalid_not_errors(junk):
    assert NonceService(SECRET).check(junk, now=0.0) == "invalid"


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        NonceService(b"short")


# --- server side ----------------------------------------------------------------------------


def test_the_challenge_header_parses_back():
    value = challenge("pbx.example", "n1", algorithm="SHA-256", stale=True, opaque="o")
    assert parse_challenge(value) == Challenge(
        realm="pbx.example", nonce="n1", algorithm="SHA-256", qop=("auth",), opaque="o", stale=True
    )


def test_challenges_offer_sha256_first_then_md5():
    values = challenges_for("pbx.example", "n1")
    assert [parse_challenge(v).algorithm for v in values] == ["SHA-256", "MD5"]


def test_challenges_can_be_restricted_to_md5_for_old_phones():
    values = challenges_for("pbx.example", "n1", algorithms=("MD5",))
    assert [parse_challenge(v).algorithm for v in values] == ["MD5"]


def registered_request(password: str, *, realm: str = "pbx.example", now: float = 0.0):
    nonces = NonceService(SECRET)
    header = challenges_for("pbx.example", nonces.issue(now))[0]
    ch = parse_challenge(header)
    ch = Challenge(realm, ch.nonce, ch.algorithm, ch.qop)
    value = DigestClient("alice", password).authorization(
        ch, method="REGISTER", uri="sip:pbx.example"
    )
    return nonces, parse_credentials(value)


def test_a_correct_answer_is_accepted():
    nonces, credentials = registered_request("s3cret")
    stored = ha1("alice", "pbx.example", "s3cret", "SHA-256")
    verdict = authenticate(
        credentials, realm="pbx.example", method="REGISTER", ha1=stored, nonces=nonces, now=10.0
    )
    assert verdict == "ok"


def test_a_wrong_password_is_rejected():
    nonces, credentials = registered_request("guess")
    stored = ha1("alice", "pbx.example", "s3cret", "SHA-256")
    verdict = authenticate(
        credentials, realm="pbx.example", method="REGISTER", ha1=stored, nonces=nonces, now=10.0
    )
    assert verdict == "rejected"


def test_a_wrong_realm_is_rejected():
    nonces, credentials = registered_request("s3cret", realm="elsewhere")
    stored = ha1("alice", "pbx.example", "s3cret", "SHA-256")
    verdict = authenticate(
        credentials, realm="pbx.example", method="REGISTER", ha1=stored, nonces=nonces, now=10.0
    )
    assert verdict == "rejected"
    # Even without the realm check, the HA1 of another realm cannot match.
    assert not verify(credentials, method="REGISTER", ha1=stored)


def test_a_correct_answer_on_an_old_nonce_is_stale():
    nonces, credentials = registered_request("s3cret")
    stored = ha1("alice", "pbx.example", "s3cret", "SHA-256")
    verdict = authenticate(
        credentials, realm="pbx.example", method="REGISTER", ha1=stored, nonces=nonces, now=301.0
    )
    assert verdict == "stale"


def test_a_wrong_answer_on_an_old_nonce_is_rejected_not_stale():
    nonces, credentials = registered_request("guess")
    stored = ha1("alice", "pbx.example", "s3cret", "SHA-256")
    verdict = authenticate(
        credentials, realm="pbx.example", method="REGISTER", ha1=stored, nonces=nonces, now=301.0
    )
    assert verdict == "rejected"


def test_a_forged_nonce_is_rejected_even_with_a_correct_response():
    ch = Challenge("pbx.example", "made-up-nonce", "MD5", ("auth",))
    value = DigestClient("alice", "s3cret").authorization(ch, method="INVITE", uri="sip:1@x")
    stored = ha1("alice", "pbx.example", "s3cret")
    credentials = parse_credentials(value)
    assert verify(credentials, method="INVITE", ha1=stored)
    verdict = authenticate(
        credentials,
        realm="pbx.example",
        method="INVITE",
        ha1=stored,
        nonces=NonceService(SECRET),
        now=0.0,
    )
    assert verdict == "rejected"


def test_an_answer_without_qop_verifies_rfc2069_style():
    ch = Challenge("pbx.example", "n1", "MD5", ())
    value = DigestClient("bob", "pw").authorization(ch, method="INVITE", uri="sip:200@pbx")
    credentials = parse_credentials(value)
    assert credentials.qop is None and credentials.cnonce is None and credentials.nc is None
    assert verify(credentials, method="INVITE", ha1=ha1("bob", "pbx.example", "pw"))


def test_auth_int_covers_the_body():
    ch = Challenge("pbx.example", "n1", "SHA-256", ("auth-int",))
    value = DigestClient("bob", "pw").authorization(
        ch, method="INVITE", uri="sip:200@pbx", body=b"v=0\r\n"
    )
    credentials = parse_credentials(value)
    stored = ha1("bob", "pbx.example", "pw", "SHA-256")
    assert credentials.qop == "auth-int"
    assert verify(credentials, method="INVITE", ha1=stored, body=b"v=0\r\n")
    assert not verify(credentials, method="INVITE", ha1=stored, body=b"v=1\r\n")


@pytest.mark.parametrize(
    "response", ["", "zz", "é" * 32, "6629FAE49393A05397450978507C4EF0", "\x00" * 32]
)
def test_odd_responses_are_refused_without_raising(response):
    credentials = parse_credentials(
        RFC2617_AUTHORIZATION.replace("6629fae49393a05397450978507c4ef1", response)
    )
    assert not verify(credentials, method="GET", ha1=ha1("Mufasa", "testrealm@host.com", "x"))


def test_upper_case_hex_in_the_response_and_the_stored_ha1_still_verifies():
    credentials = parse_credentials(
        RFC2617_AUTHORIZATION.replace(
            "6629fae49393a05397450978507c4ef1", "6629FAE49393A05397450978507C4EF1"
        )
    )
    stored = ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert verify(credentials, method="GET", ha1=stored.upper())


def test_an_unknown_algorithm_in_credentials_is_refused():
    credentials = parse_credentials(RFC2617_AUTHORIZATION + ", algorithm=SHA-512-256")
    assert not verify(credentials, method="GET", ha1="0" * 64)


# --- client side ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_client_and_server_agree_for_each_algorithm(algorithm):
    nonces = NonceService(SECRET)
    header = challenge("trunk.example", nonces.issue(now=0.0), algorithm=algorithm, opaque="op")
    client = DigestClient("acct", "pw")
    credentials = parse_credentials(
        client.authorization(header, method="INVITE", uri="sip:+39061234@trunk.example")
    )
    assert credentials.algorithm == algorithm
    assert credentials.opaque == "op"
    stored = ha1("acct", "trunk.example", "pw", algorithm)
    assert (
        authenticate(
            credentials,
            realm="trunk.example",
            method="INVITE",
            ha1=stored,
            nonces=nonces,
            now=1.0,
        )
        == "ok"
    )


def test_the_client_counts_nc_per_nonce():
    client = DigestClient("acct", "pw")
    first = Challenge("r", "nonce-1", "MD5", ("auth",))
    second = Challenge("r", "nonce-2", "MD5", ("auth",))
    ncs = [
        parse_credentials(client.authorization(ch, method="REGISTER", uri="sip:r")).nc
        for ch in (first, first, second, first)
    ]
    assert ncs == ["00000001", "00000002", "00000001", "00000003"]


def test_the_client_uses_a_fresh_cnonce_each_time():
    client = DigestClient("acct", "pw")
    ch = Challenge("r", "n", "MD5", ("auth",))
    a = parse_credentials(client.authorization(ch, method="REGISTER", uri="sip:r"))
    b = parse_credentials(client.authorization(ch, method="REGISTER", uri="sip:r"))
    assert a.cnonce != b.cnonce


def test_the_client_refuses_an_algorithm_it_cannot_do():
    ch = Challenge("r", "n", "SHA-512-256", ("auth",))
    with pytest.raises(DigestError):
        DigestClient("acct", "pw").authorization(ch, method="REGISTER", uri="sip:r")


def test_the_client_refuses_a_qop_it_cannot_do():
    ch = Challenge("r", "n", "MD5", ("auth-conf",))
    with pytest.raises(DigestError):
        DigestClient("acct", "pw").authorization(ch, method="REGISTER", uri="sip:r")


def test_the_topmost_supported_challenge_is_selected():
    values = [
        'Digest realm="r", nonce="a", algorithm=SHA-512-256, qop="auth"',
        "Basic realm=x",
        'Digest realm="r", nonce="b", algorithm=SHA-256, qop="auth"',
        'Digest realm="r", nonce="c", algorithm=MD5, qop="auth"',
    ]
    assert select_challenge(values).nonce == "b"
    with pytest.raises(DigestError):
        select_challenge(values[:2])


def test_quotes_in_the_username_are_escaped_and_survive_parsing():
    ch = Challenge("r", "n", "MD5", ("auth",))
    value = DigestClient('we"ird\\name', "pw").authorization(ch, method="REGISTER", uri="sip:r")
    assert parse_credentials(value).username == 'we"ird\\name'


# --- parsing --------------------------------------------------------------------------------


def test_odd_spacing_case_and_quoting_parse():
    value = (
        '  dIgEsT   realm = "biloxi.com" ,, QOP="auth , auth-int",nonce=abc/def=='
        ' ,\topaque="",algorithm=md5 , stale=TRUE,'
    )
    ch = parse_challenge(value)
    assert ch == Challenge(
        realm="biloxi.com",
        nonce="abc/def==",
        algorithm="MD5",
        qop=("auth", "auth-int"),
        opaque="",
        stale=True,
    )


def test_a_challenge_without_algorithm_means_md5():
    ch = parse_challenge('Digest realm="r", nonce="n"')
    assert ch.algorithm == "MD5" and ch.qop == () and not ch.stale


def test_quoted_qop_and_nc_in_credentials_are_tolerated():
    value = RFC2617_AUTHORIZATION.replace("qop=auth", 'qop="auth"').replace(
        "nc=00000001", 'nc="00000001"'
    )
    credentials = parse_credentials(value)
    assert credentials.qop == "auth" and credentials.nc == "00000001"
    assert verify(
        credentials, method="GET", ha1=ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    )


def test_escaped_characters_inside_quotes_are_unescaped():
    ch = parse_challenge(r'Digest realm="a \"quoted\" realm, with comma", nonce="n"')
    assert ch.realm == 'a "quoted" realm, with comma'


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "Digest",
        'Basic realm="r"',
        'Digestrealm="r", nonce="n"',
        'Digest realm="r", nonce="n',
        'Digest realm="r" nonce="n"',
        'Digest realm="r", nonce',
        'Digest realm="r", nonce=',
        'Digest realm="r", nonce=""',
        'Digest realm="r"',
        'Digest nonce="n"',
        'Digest realm="r", realm="s", nonce="n"',
        'Digest realm="r", nonce="n", stale=maybe',
        'Digest realm="r", nonce="n", @x=1',
    ],
)
def test_junk_challenges_raise_digest_error(junk):
    with pytest.raises(DigestError):
        parse_challenge(junk)


@pytest.mark.parametrize(
    "junk",
    [
        'Digest username="a", realm="r", nonce="n", uri="sip:x"',
        'Digest username="a", realm="r", nonce="n", uri="sip:x", response="r", qop=auth',
        'Digest username="a", realm="r", nonce="n", uri="sip:x", response="r", qop=auth, '
        'nc=1, cnonce="c"',
    ],
)
def test_junk_credentials_raise_digest_error(junk):
    with pytest.raises(DigestError):
        parse_credentials(junk)


def test_digest_error_is_a_value_error():
    assert issubclass(DigestError, ValueError)


def test_mangled_headers_raise_only_digest_error():
    rng = random.Random(2617)
    alphabet = ' ",=\\\tdigestqopauthnc0é\x00'
    for _ in range(2000):
        text = list(rng.choice([RFC2617_CHALLENGE, RFC2617_AUTHORIZATION]))
        for _ in range(rng.randint(1, 5)):
            text[rng.randrange(len(text))] = rng.choice(alphabet)
        value = "".join(text)
        with contextlib.suppress(DigestError):
            verify(parse_credentials(value), method="GET", ha1="0" * 32)
        with contextlib.suppress(DigestError):
            DigestClient("a", "b").authorization(value, method="GET", uri="/")
