"""Header storage and the structured headers Via, name-addr and CSeq."""

from __future__ import annotations

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.grammar import split_list
from pbx.sip.headers import CSeq, Headers, NameAddr, Via
from pbx.sip.uri import AbsoluteUri, SipUri


def test_it_finds_headers_by_any_case_and_by_compact_form():
    headers = Headers([("i", "abc@host"), ("CONTENT-length", "0")])

    assert headers.get("Call-ID") == "abc@host"
    assert headers.get("call-id") == "abc@host"
    assert headers.get("l") == "0"
    assert "Content-Length" in headers
    assert headers.get("Subject", "none") == "none"


def test_it_writes_canonical_names_and_keeps_unknown_names_as_received():
    headers = Headers(
        [("i", "x"), ("cseq", "1 INVITE"), ("www-authenticate", "Digest"), ("X-Foo", "1")]
    )

    assert [name for name, _ in headers.items()] == ["Call-ID", "CSeq", "WWW-Authenticate", "X-Foo"]


def test_it_splits_list_headers_on_commas_but_not_inside_quotes_or_brackets():
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"),
            ("v", "SIP/2.0/TCP c;branch=z9hG4bK3"),
            ("Contact", '"Doe, John" <sip:j@x;a=1,2>, <sip:k@y>'),
        ]
    )

    assert len(headers.get_all("Via")) == 3
    assert headers.get_all("Contact") == ['"Doe, John" <sip:j@x;a=1,2>', "<sip:k@y>"]


def test_it_does_not_split_headers_whose_grammar_has_commas():
    digest = 'Digest realm="pbx", nonce="abc", qop="auth"'
    headers = Headers([("WWW-Authenticate", digest), ("Date", "Sat, 13 Nov 2010 23:29:00 GMT")])

    assert headers.get_all("WWW-Authenticate") == [digest]
    assert headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]


def test_it_keeps_empty_list_elements_only_in_split_list():
    assert split_list("a,,b") == ["a", "", "b"]
    assert Headers([("Allow", "INVITE,,ACK")]).get_all("Allow") == ["INVITE", "ACK"]


def test_set_replaces_every_line_at_the_position_of_the_first():
    headers = Headers([("X-A", "1"), ("Contact", "<sip:a@x>"), ("X-B", "2"), ("m", "<sip:b@x>")])

    headers.set("Contact", "*")

    assert headers.items() == [("X-A", "1"), ("Contact", "*"), ("X-B", "2")]


def test_prepend_add_and_remove_change_order_and_presence():
    headers = Headers([("Via", "SIP/2.0/UDP b"), ("To", "<sip:t@x>")])

    headers.prepend("Via", "SIP/2.0/UDP a")
    headers.add("Via", "SIP/2.0/UDP c")
    assert headers.get_all("Via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]

    headers.remove("via")
    assert "Via" not in headers
    assert headers.items() == [("To", "<sip:t@x>")]


def test_a_copy_is_independent_of_the_original():
    headers = Headers([("To", "<sip:t@x>")])
    copy = headers.copy()

    copy.add("From", "<sip:f@x>")

    assert "From" not in headers
    assert copy != headers


def test_it_parses_a_plain_via():
    via = Via.parse("SIP/2.0/udp 192.0.2.1:5062;branch=z9hG4bK776;rport;received=10.0.0.1")

    assert via.transport == "UDP"
    assert (via.host, via.port) == ("192.0.2.1", 5062)
    assert via.branch == "z9hG4bK776"
    assert via.received == "10.0.0.1"
    assert "rport" in via.params and via.rport is None
    assert str(via) == "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK776;rport;received=10.0.0.1"


def test_it_parses_a_via_with_whitespace_everywhere_allowed():
    via = Via.parse("SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239")

    assert (via.transport, via.host, via.branch) == ("UDP", "192.168.255.111", "z9hG4bK30239")


def test_it_parses_an_ipv6_via_and_a_filled_rport():
    via = Via.parse("SIP/2.0/TCP [2001:db8::9:1]:5060;branch=z9hG4bKas;rport=5070")

    assert via.host == "2001:db8::9:1"
    assert via.rport == 5070
    assert via.sent_by == "[2001:db8::9:1]:5060"


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/3.0/UDP host",
        "SIP/2.0/UDP",
        "SIP/2.0 host",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host;branch=",
    ],
)
def test_it_rejects_a_malformed_via(text):
    with pytest.raises(SipParseError):
        Via.parse(text)


def test_it_parses_a_quoted_display_name_with_escapes():
    addr = NameAddr.parse('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8')

    assert addr.display == 'J Rosenberg \\"'
    assert addr.tag == "98asjd8"
    assert NameAddr.parse(str(addr)) == addr


def test_it_joins_an_unquoted_display_name_of_several_tokens():
    addr = NameAddr.parse("token1~`   token2'+_ <sip:mundane@example.com>")

    assert addr.display == "token1~` token2'+_"


def test_it_gives_addr_spec_parameters_to_the_header_not_the_uri():
    addr = NameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam")

    assert addr.params == {"unknownparam": None}
    assert isinstance(addr.uri, SipUri) and addr.uri.params == {}
    assert str(addr) == "<sip:+19725552222@gw1.example.net>;unknownparam"


def test_it_gives_parameters_inside_angle_brackets_to_the_uri():
    addr = NameAddr.parse("<sip:+19725552222@gw1.example.net;unknownparam>")

    assert addr.params == {}
    assert addr.uri.params == {"unknownparam": None}


def test_it_reads_header_parameters_with_whitespace_and_quoted_values():
    addr = NameAddr.parse('"Q" <sip:j@example.com> ; newparam = newvalue ;  second ; q = 0.33')

    assert addr.params == {"newparam": "newvalue", "second": None, "q": "0.33"}


def test_it_accepts_an_absolute_uri_in_an_address():
    addr = NameAddr.parse("<http://www.example.com>;tag=3234233")

    assert addr.uri == AbsoluteUri("http", "//www.example.com")
    assert addr.tag == "3234233"


@pytest.mark.parametrize(
    "text",
    [
        '"Mr. J. User <sip:j.user@example.com>',
        '"Watson, Thomas" < sip:t.watson@example.org >',
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        '"Joe" <sip:joe@example.org>;;;;',
        "<sip:joe@example.org",
        "*",
        "",
    ],
)
def test_it_rejects_a_malformed_address(text):
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


def test_it_parses_cseq_with_leading_zeros_and_folded_space():
    assert CSeq.parse("0009   INVITE") == CSeq(9, "INVITE")
    assert str(CSeq(9, "INVITE")) == "9 INVITE"


@pytest.mark.parametrize(
    "text",
    [
        "36893488147419103232 REGISTER",
        "2147483648 INVITE",
        "1",
        "-1 INVITE",
        "1 IN VITE",
        "x INVITE",
    ],
)
def test_it_rejects_a_malformed_cseq(text):
    with pytest.raises(SipParseError):
        CSeq.parse(text)
