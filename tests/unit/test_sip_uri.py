"""SIP and absolute URI parsing (RFC 3261 section 19.1)."""

from __future__ import annotations

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.uri import AbsoluteUri, SipUri, parse_uri


def test_it_parses_every_part_of_a_sip_uri():
    uri = SipUri.parse("sips:alice:secret@Atlanta.Example.com:5061;transport=TCP;lr?subject=hi")

    assert uri.scheme == "sips"
    assert uri.user == "alice"
    assert uri.password == "secret"
    assert uri.host == "atlanta.example.com"
    assert uri.port == 5061
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.transport == "tcp"
    assert uri.lr
    assert uri.headers == {"subject": "hi"}


def test_it_writes_a_uri_back_unchanged_when_it_is_already_canonical():
    text = "sip:101@pbx.example.com:5060;transport=udp;user=phone?Replaces=abc%40host"

    assert str(SipUri.parse(text)) == text


def test_it_unescapes_the_user_part_and_escapes_it_again_on_output():
    uri = SipUri.parse("sip:sips%3Auser%40example.com@example.net")

    assert uri.user == "sips:user@example.com"
    assert uri.host == "example.net"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"
    assert SipUri.parse(str(uri)) == uri


def test_it_treats_escaped_and_plain_forms_of_a_user_as_the_same_uri():
    assert SipUri.parse("sip:%75se%72@example.com") == SipUri.parse("sip:user@example.com")


def test_it_keeps_a_semicolon_in_the_user_part_out_of_the_parameters():
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")

    assert uri.user == "user;par=u@example.net"
    assert uri.params == {}


def test_it_keeps_nul_octets_escaped_in_the_user_part():
    uri = SipUri.parse("sip:null-%00-null@example.com")

    assert uri.user == "null-\x00-null"
    assert str(uri) == "sip:null-%00-null@example.com"


def test_it_stores_ipv6_hosts_without_brackets_and_writes_them_with_brackets():
    uri = SipUri.parse("sip:alice@[2001:DB8::10]:5070")

    assert uri.host == "2001:db8::10"
    assert uri.port == 5070
    assert str(uri) == "sip:alice@[2001:db8::10]:5070"


def test_it_parses_a_uri_without_user_part():
    uri = SipUri.parse("sip:192.0.2.1;lr")

    assert uri.user is None
    assert uri.host == "192.0.2.1"
    assert uri.lr


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@example.com:99999",
        "sip:alice@",
        "sip:al ice@example.com",
        "sip:alice%zz@example.com",
        "sip:alice@exa mple.com",
        "sip:alice@[::1",
        "sip:alice@example.com;;lr",
        "sip:alice@example.com?noequals",
        "tel:+391234",
        "sip:<alice@example.com>",
        "sip:alice@.example.com",
    ],
)
def test_it_rejects_a_malformed_sip_uri(text):
    with pytest.raises(SipParseError) as info:
        SipUri.parse(text)
    assert info.value.status == 400


def test_it_returns_an_absolute_uri_for_other_schemes():
    uri = parse_uri("TEL:+39-06-1234;phone-context=example.com")

    assert uri == AbsoluteUri("tel", "+39-06-1234;phone-context=example.com")
    assert str(uri) == "tel:+39-06-1234;phone-context=example.com"


def test_it_returns_a_sip_uri_for_sip_and_sips():
    assert isinstance(parse_uri("SIP:bob@example.com"), SipUri)
    assert isinstance(parse_uri("sips:bob@example.com"), SipUri)


@pytest.mark.parametrize("text", ["nocolon", ":opaque", "1abc:x", "http:", "urn:a b", "x:<y>"])
def test_it_rejects_a_malformed_absolute_uri(text):
    with pytest.raises(SipParseError):
        parse_uri(text)
