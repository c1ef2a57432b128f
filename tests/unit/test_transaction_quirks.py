"""Interoperability leniency of the transaction layer, each for a named real client."""

from __future__ import annotations

from pbx.sip.message import Request, make_response, parse_message
from pbx.sip.transaction import RequestReceived, SendMessage, TransactionLayer

INVITE = (
    "INVITE sip:203@pbx SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKsamebranch\r\n"
    "From: <sip:201@pbx>;tag=x\r\nTo: <sip:203@pbx>\r\nCall-ID: q1\r\nCSeq: 1 INVITE\r\n"
    "Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n"
)
ADDR = ("127.0.0.1", 5070)


def _invite(auth: str = "") -> Request:
    message = parse_message(INVITE.format(auth=auth).encode())
    assert isinstance(message, Request)
    return message


def test_a_challenged_invite_resent_with_credentials_on_the_same_branch_is_a_new_request() -> None:
    # pyVoIP 1.6.8 answers a 401 this way; matched strictly it would get the 401 forever.
    layer = TransactionLayer()
    [first] = layer.receive(_invite(), ADDR, now=0)
    assert isinstance(first, RequestReceived)
    layer.send_response(make_response(first.request, 401, to_tag="t"), now=0)
    outputs = layer.receive(_invite('Authorization: Digest username="201"\r\n'), ADDR, now=0.1)
    assert [type(o) for o in outputs] == [RequestReceived]


def test_a_plain_retransmission_of_the_challenged_invite_still_gets_the_401_again() -> None:
    layer = TransactionLayer()
    [first] = layer.receive(_invite(), ADDR, now=0)
    assert isinstance(first, RequestReceived)
    layer.send_response(make_response(first.request, 401, to_tag="t"), now=0)
    outputs = layer.receive(_invite(), ADDR, now=0.1)
    assert all(isinstance(o, SendMessage) and o.message.status == 401 for o in outputs)
    assert outputs
