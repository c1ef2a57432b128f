"""RFC 3261 12 dialogs: creation on both sides, route sets, CSeq spaces, target refresh."""

from __future__ import annotations

import pytest

from pbx.sip.dialog import Dialog
from pbx.sip.errors import SipParseError
from pbx.sip.headers import Via
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.uri import SipUri

VIA = Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bKdlg1"})


def invite(*, extra: str = "", contact: str | None = "<sip:alice@192.0.2.10:5070>") -> Request:
    text = (
        "INVITE sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKinv1\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Alice" <sip:alice@example.com>;tag=a1\r\n'
        "To: <sip:bob@example.com>\r\n"
        "Call-ID: dlg-1@192.0.2.10\r\n"
        "CSeq: 10 INVITE\r\n"
        + (f"Contact: {contact}\r\n" if contact else "")
        + extra
        + "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def ok(req: Request, *, status: int = 200, extra: list[tuple[str, str]] | None = None) -> Response:
    headers = [("Contact", "<sip:bob@192.0.2.20:5080>"), *(extra or [])]
    return make_response(req, status, to_tag="b1", headers=headers)


def in_dialog(method: str, cseq: int, *, contact: str | None = None) -> Request:
    """A request from Bob to Alice inside the dialog Alice created (we are Alice)."""
    text = (
        f"{method} sip:alice@192.0.2.10:5070 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.20:5080;branch=z9hG4bKin1\r\n"
        "From: <sip:bob@example.com>;tag=b1\r\n"
        "To: <sip:alice@example.com>;tag=a1\r\n"
        "Call-ID: dlg-1@192.0.2.10\r\n"
        f"CSeq: {cseq} {method}\r\n" + (f"Contact: {contact}\r\n" if contact else "") + "\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


RR = [("Record-Route", "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>")]


def test_a_uac_dialog_takes_its_identity_target_and_reversed_route_set_from_the_2xx() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req, extra=RR))
    assert dialog.id == ("dlg-1@192.0.2.10", "a1", "b1")
    assert str(dialog.remote_target) == "sip:bob@192.0.2.20:5080"
    assert dialog.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert (dialog.local_cseq, dialog.remote_cseq, dialog.early) == (10, None, False)


def test_a_bye_through_loose_routers_targets_the_contact_and_carries_the_route_set() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req, extra=RR))
    bye, next_hop = dialog.create_request("BYE", via=VIA)
    assert bye.uri == "sip:bob@192.0.2.20:5080"
    assert bye.headers.get_all("Route") == dialog.route_set
    assert str(next_hop) == "sip:p2.example.com;lr"
    assert str(bye.cseq) == "11 BYE" and dialog.local_cseq == 11
    assert bye.from_addr.tag == "a1" and bye.from_addr.display == "Alice"
    assert bye.to_addr.tag == "b1" and bye.call_id == req.call_id
    assert bye.headers.get("Max-Forwards") == "70" and bye.branch == "z9hG4bKdlg1"
    assert bytes(parse_message(bytes(bye))) == bytes(bye)


def test_a_strict_router_becomes_the_request_uri_and_the_target_the_last_route() -> None:
    req = invite()
    strict = [("Record-Route", "<sip:p1.example.com;lr>, <sip:strict.example.com;method=INVITE>")]
    dialog = Dialog.from_uac(req, ok(req, extra=strict))
    bye, next_hop = dialog.create_request("BYE", via=VIA)
    assert bye.uri == "sip:strict.example.com"  # the method parameter is stripped
    assert bye.headers.get_all("Route") == [
        "<sip:p1.example.com;lr>",
        "<sip:bob@192.0.2.20:5080>",
    ]
    assert next_hop.host == "strict.example.com"


def test_without_a_route_set_the_request_goes_straight_to_the_remote_target() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req))
    bye, next_hop = dialog.create_request("BYE", via=VIA)
    assert "Route" not in bye.headers
    assert next_hop == dialog.remote_target == SipUri.parse(bye.uri)


def test_a_uas_dialog_keeps_the_record_route_order_and_an_empty_local_cseq() -> None:
    req = invite(
        extra="Record-Route: <sip:p1.example.com;lr>\r\nRecord-Route: <sip:p2.example.com;lr>\r\n"
    )
    dialog = Dialog.from_uas(req, "b1")
    assert dialog.id == ("dlg-1@192.0.2.10", "b1", "a1")
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5070"
    bye, next_hop = dialog.create_request("BYE", via=VIA)
    assert str(bye.cseq) == "1 BYE" and next_hop.host == "p1.example.com"
    assert bye.from_addr.tag == "b1" and bye.to_addr.tag == "a1"
    assert bye.uri == "sip:alice@192.0.2.10:5070"


def test_the_ack_of_a_2xx_reuses_the_invite_cseq_and_may_carry_a_body() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req, extra=RR))
    ack, next_hop = dialog.make_ack(10, via=VIA, body=b"v=0\r\n", content_type="application/sdp")
    assert ack.method == "ACK" and str(ack.cseq) == "10 ACK"
    assert ack.headers.get("Content-Type") == "application/sdp" and ack.body == b"v=0\r\n"
    assert ack.headers.get_all("Route") == dialog.route_set
    assert dialog.local_cseq == 10 and next_hop.host == "p2.example.com"
    cancel, _ = dialog.create_request("CANCEL", via=VIA)
    assert str(cancel.cseq) == "10 CANCEL"


def test_contact_and_extra_headers_are_added_when_given() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req))
    reinvite, _ = dialog.create_request(
        "INVITE",
        via=VIA,
        contact="<sip:pbx@192.0.2.1>",
        body=b"v=0\r\n",
        content_type="application/sdp",
        extra_headers=[("Supported", "timer")],
    )
    assert reinvite.headers.get("Contact") == "<sip:pbx@192.0.2.1>"
    assert reinvite.headers.get("Supported") == "timer"
    assert b"Content-Length: 5" in bytes(reinvite)


def test_requests_with_a_lower_cseq_get_500_and_higher_ones_advance() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req))
    assert dialog.receive_request(in_dialog("INFO", 5)) is None
    assert dialog.remote_cseq == 5
    late = dialog.receive_request(in_dialog("INFO", 4))
    assert late is not None and late.status == 500
    assert dialog.remote_cseq == 5
    assert dialog.receive_request(in_dialog("BYE", 6)) is None and dialog.remote_cseq == 6
    assert dialog.receive_request(in_dialog("ACK", 1)) is None  # never answered, never checked


def test_a_reinvite_refreshes_the_remote_target_but_a_bye_does_not() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req))
    dialog.receive_request(in_dialog("BYE", 1, contact="<sip:bob@198.51.100.9>"))
    assert dialog.remote_target.host == "192.0.2.20"
    dialog.receive_request(in_dialog("INVITE", 2, contact="<sip:bob@198.51.100.9:5090>"))
    assert str(dialog.remote_target) == "sip:bob@198.51.100.9:5090"
    bad = dialog.receive_request(in_dialog("UPDATE", 3, contact="<tel:+3902123>"))
    assert bad is not None and bad.status == 400
    assert dialog.remote_cseq == 2


def test_a_2xx_to_our_reinvite_refreshes_the_target_and_a_failure_does_not() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req))
    reinvite, _ = dialog.create_request("INVITE", via=VIA, contact="<sip:pbx@192.0.2.1>")
    moved = make_response(reinvite, 200, headers=[("Contact", "<sip:bob@203.0.113.5>")])
    refused = make_response(reinvite, 488, headers=[("Contact", "<sip:bob@203.0.113.6>")])
    dialog.update_from_response(refused)
    assert dialog.remote_target.host == "192.0.2.20"
    dialog.update_from_response(moved)
    assert dialog.remote_target.host == "203.0.113.5"


def test_the_2xx_confirming_an_early_dialog_recomputes_its_route_set() -> None:
    req = invite()
    ringing = ok(req, status=180, extra=[("Record-Route", "<sip:early.example.com;lr>")])
    dialog = Dialog.from_uac(req, ringing)
    assert dialog.early and dialog.route_set == ["<sip:early.example.com;lr>"]
    dialog.update_from_response(ok(req, extra=RR))
    assert not dialog.early
    assert dialog.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]


def test_responses_and_requests_of_other_dialogs_are_refused() -> None:
    req = invite()
    dialog = Dialog.from_uac(req, ok(req))
    other_fork = make_response(req, 200, to_tag="c9", headers=[("Contact", "<sip:c@x>")])
    with pytest.raises(ValueError):
        dialog.update_from_response(other_fork)
    stranger = in_dialog("BYE", 9)
    stranger.headers.set("Call-ID", "another@call")
    with pytest.raises(ValueError):
        dialog.receive_request(stranger)


def test_dialog_creation_refuses_what_cannot_make_a_dialog() -> None:
    req = invite()
    with pytest.raises(ValueError):
        Dialog.from_uac(req, make_response(req, 100))
    with pytest.raises(ValueError):
        Dialog.from_uac(req, ok(req, status=486))
    with pytest.raises(SipParseError):
        Dialog.from_uas(invite(contact=None), "b1")
    with pytest.raises(SipParseError):
        Dialog.from_uac(req, make_response(req, 200, to_tag="b1"))


def test_a_sips_request_uri_makes_the_dialog_secure() -> None:
    req = invite()
    req.uri = "sips:bob@example.com"
    assert Dialog.from_uas(req, "b1").secure
    assert not Dialog.from_uas(invite(), "b1").secure
