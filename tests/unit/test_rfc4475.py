"""The 49 RFC 4475 torture messages: what the parser and the UAS checks make of each.

Each file maps to its RFC section and the outcome this layer owns.  Where the RFC leaves a
choice ("reject or be liberal") the table records ours.  Cases whose full handling belongs to
the registrar or transaction layer (badbranch, unksm2, regaut01, bcast, regescrt ...) are
asserted here as far as parsing and check_request go; ENGINE_LEVEL names what remains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.uri import AbsoluteUri, SipUri
from pbx.sip.validate import check_request

DATA = Path(__file__).resolve().parent.parent / "testdata" / "rfc4475"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What must happen to one torture message."""

    section: str
    kind: str  # "valid", "rejected" (SipParseError), "refused" (check_request answers)
    status: int | None = None
    answerable: bool = True  # a rejected request still yields a partial to answer with


VALID, REJECTED, REFUSED = "valid", "rejected", "refused"

EXPECTED: dict[str, Outcome] = {
    # 3.1.1 valid messages
    "wsinv": Outcome("3.1.1.1", VALID),
    "intmeth": Outcome("3.1.1.2", VALID),
    "esc01": Outcome("3.1.1.3", VALID),
    "escnull": Outcome("3.1.1.4", VALID),
    "esc02": Outcome("3.1.1.5", VALID),
    "lwsdisp": Outcome("3.1.1.6", VALID),
    "longreq": Outcome("3.1.1.7", VALID),
    "dblreq": Outcome("3.1.1.8", VALID),
    "semiuri": Outcome("3.1.1.9", VALID),
    "transports": Outcome("3.1.1.10", VALID),
    "mpart01": Outcome("3.1.1.11", VALID),
    "unreason": Outcome("3.1.1.12", VALID),
    "noreason": Outcome("3.1.1.13", VALID),
    # 3.1.2 invalid messages
    "badinv01": Outcome("3.1.2.1", REJECTED, 400),
    "clerr": Outcome("3.1.2.2", REJECTED, 400),
    "ncl": Outcome("3.1.2.3", REJECTED, 400),
    "scalar02": Outcome("3.1.2.4", REJECTED, 400),
    "scalarlg": Outcome("3.1.2.5", REJECTED, 400, answerable=False),  # a response: dropped
    "quotbal": Outcome("3.1.2.6", REJECTED, 400),
    "ltgtruri": Outcome("3.1.2.7", REJECTED, 400),
    "lwsruri": Outcome("3.1.2.8", REJECTED, 400),
    "lwsstart": Outcome("3.1.2.9", REJECTED, 400),  # RFC allows liberal; we reject
    "trws": Outcome("3.1.2.10", REJECTED, 400),  # RFC allows liberal; we reject
    "escruri": Outcome("3.1.2.11", REJECTED, 400),
    "baddate": Outcome("3.1.2.12", VALID),  # RFC: may ignore a Date it does not use; we do
    "regbadct": Outcome("3.1.2.13", REFUSED, 400),
    "badaspec": Outcome("3.1.2.14", REJECTED, 400),
    "baddn": Outcome("3.1.2.15", REJECTED, 400),
    "badvers": Outcome("3.1.2.16", REJECTED, 505),
    "mismatch01": Outcome("3.1.2.17", REJECTED, 400),
    "mismatch02": Outcome("3.1.2.18", REJECTED, 400),  # RFC prefers 501, allows 400
    "bigcode": Outcome("3.1.2.19", REJECTED, 400, answerable=False),  # a response: dropped
    # 3.2 transaction layer
    "badbranch": Outcome("3.2.1", REFUSED, 400),  # RFC: 400 or fall back to RFC 2543 matching
    # 3.3 application layer
    "insuf": Outcome("3.3.1", REJECTED, 400),
    "unkscm": Outcome("3.3.2", REFUSED, 416),
    "novelsc": Outcome("3.3.3", REFUSED, 416),
    "unksm2": Outcome("3.3.4", REFUSED, 400),  # a registrar needs a SIP AOR in To
    "bext01": Outcome("3.3.5", REFUSED, 420),
    "invut": Outcome("3.3.6", REFUSED, 415),
    "regaut01": Outcome("3.3.7", VALID),  # engine: registrar challenges with 401
    "multi01": Outcome("3.3.8", REJECTED, 400),
    "mcl01": Outcome("3.3.9", REJECTED, 400),
    "bcast": Outcome("3.3.10", VALID),  # engine: a response not for us is dropped
    "zeromf": Outcome("3.3.11", VALID),  # OPTIONS to an endpoint is processed
    "cparam01": Outcome("3.3.12", VALID),
    "cparam02": Outcome("3.3.13", VALID),
    "regescrt": Outcome("3.3.14", VALID),  # engine: registrar stores the Contact as is
    "sdp01": Outcome("3.3.15", REFUSED, 406),
    # 3.4 backward compatibility
    "inv2543": Outcome("3.4.1", VALID),
}

ENGINE_LEVEL = ("badbranch", "unksm2", "regaut01", "bcast", "regescrt", "cparam01", "cparam02")


def _load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def _assert_equivalent(first: Request | Response, second: Request | Response) -> None:
    assert type(first) is type(second)
    if isinstance(first, Request) and isinstance(second, Request):
        assert (first.method, first.request_uri) == (second.method, second.request_uri)
    elif isinstance(first, Response) and isinstance(second, Response):
        assert (first.status, first.reason) == (second.status, second.reason)
    assert first.body == second.body
    # Content-Length is rewritten (or added) on output; every other header survives unchanged.
    keyed = [(k, v) for k, _, v in first.headers.keyed_items() if k != "content-length"]
    assert keyed == [(k, v) for k, _, v in second.headers.keyed_items() if k != "content-length"]
    assert (first.call_id, first.cseq, first.vias) == (second.call_id, second.cseq, second.vias)
    assert (first.from_addr, first.to_addr) == (second.from_addr, second.to_addr)


def test_the_table_covers_every_torture_message():
    assert sorted(p.stem for p in DATA.glob("*.dat")) == sorted(EXPECTED)
    assert len(EXPECTED) == 49


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_torture_message_gets_its_rfc_outcome(name):
    expected = EXPECTED[name]

    if expected.kind == REJECTED:
        with pytest.raises(SipParseError) as info:
            parse_message(_load(name))
        assert info.value.status == expected.status, info.value.reason
        partial = info.value.partial
        assert (partial is not None) == expected.answerable
        if partial is not None:
            assert make_response(partial, expected.status).status == expected.status
        return

    message = parse_message(_load(name))
    again = parse_message(bytes(message))
    _assert_equivalent(message, again)
    answer = check_request(message) if isinstance(message, Request) else None
    if expected.kind == VALID:
        assert answer is None, answer and answer.reason
    else:
        assert answer is not None and answer.status == expected.status


def test_wsinv_reads_folded_whitespace_everywhere():
    req = parse_message(_load("wsinv"))

    assert req.headers.get("Max-Forwards") == "0068"
    assert req.cseq.number == 9
    assert [(v.transport, v.host, v.branch) for v in req.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert req.from_addr.display == 'J Rosenberg \\"'
    assert req.to_addr.tag == "1918181833n"
    assert req.headers.get("Subject") == ""
    assert req.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert req.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"


def test_intmeth_keeps_unusual_token_characters():
    req = parse_message(_load("intmeth"))

    assert req.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert req.request_uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert req.to_addr.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert req.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"


def test_escapes_are_decoded_only_where_the_grammar_has_escapes():
    esc01 = parse_message(_load("esc01"))
    esc02 = parse_message(_load("esc02"))

    assert esc01.request_uri.user == "sips:user@example.com"
    assert esc01.from_addr.uri.user == "I have spaces"
    assert esc02.method == "RE%47IST%45R"
    assert esc02.to_addr.display == "%Z%45"
    assert len(esc02.headers.get_all("Contact")) == 2


def test_semiuri_and_escnull_users_survive():
    assert parse_message(_load("semiuri")).request_uri.user == "user;par=u@example.net"
    contacts = parse_message(_load("escnull")).headers.get_all("Contact")
    assert contacts == ["<sip:%00@host5.example.com>", "<sip:%00%00@host5.example.com>"]


def test_dblreq_ignores_what_follows_content_length():
    req = parse_message(_load("dblreq"))

    assert req.method == "REGISTER"
    assert req.body == b""


def test_contact_parameters_go_where_the_angle_brackets_say():
    from pbx.sip.headers import NameAddr

    outside = NameAddr.parse(parse_message(_load("cparam01")).headers.get("Contact"))
    inside = NameAddr.parse(parse_message(_load("cparam02")).headers.get("Contact"))

    assert "unknownparam" in outside.params and "unknownparam" not in outside.uri.params
    assert "unknownparam" in inside.uri.params and "unknownparam" not in inside.params


def test_unknown_schemes_in_headers_parse_as_absolute_uris():
    req = parse_message(_load("unksm2"))

    assert req.to_addr.uri == AbsoluteUri("isbn", "2983792873")
    assert req.from_addr.uri == AbsoluteUri("http", "//www.example.com")


def test_inv2543_takes_the_datagram_rest_as_body():
    req = parse_message(_load("inv2543"))

    assert req.body.endswith(b"m=audio 49217 RTP/AVP 0\r\n")
    assert req.branch is None
    assert req.from_addr.tag is None


def test_responses_with_odd_reasons_keep_them():
    assert parse_message(_load("noreason")).reason == ""
    assert parse_message(_load("unreason")).reason.startswith("= 2**3 * 5**2 ")
    assert parse_message(_load("bcast")).vias[1].host == "255.255.255.255"


def test_regescrt_keeps_the_escaped_header_of_the_contact_uri():
    from pbx.sip.headers import NameAddr

    contact = NameAddr.parse(parse_message(_load("regescrt")).headers.get("Contact"))

    assert isinstance(contact.uri, SipUri)
    assert contact.uri.headers == {"Route": "<sip:sip.example.com>"}


def test_bext01_lists_both_unsupported_require_tags():
    answer = check_request(parse_message(_load("bext01")))

    assert answer.headers.get_all("Unsupported") == [
        "nothingSupportsThis",
        "nothingSupportsThisEither",
    ]
