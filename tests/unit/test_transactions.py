"""RFC 3261 transactions driven by a fake clock: timers, retransmissions, matching, GC."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.sip.headers import Headers
from pbx.sip.ids import new_branch, new_call_id, new_tag
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.transaction import (
    AckTimeout,
    IllegalTransition,
    RequestReceived,
    ResponseReceived,
    SendMessage,
    StrayResponse,
    TimerConfig,
    TransactionLayer,
    TransactionTimeout,
    TxnState,
    make_cancel,
)
from pbx.sip.transaction_server import NonInviteServerTransaction

RFC4475 = Path(__file__).parent.parent / "testdata" / "rfc4475"
UAC = ("192.0.2.10", 5060)
UAS = ("192.0.2.20", 5060)


def request(
    method: str = "INVITE",
    *,
    branch: str | None = None,
    via: str | None = None,
    cseq: int = 1,
    call_id: str = "call-1@192.0.2.10",
    to_tag: str | None = None,
    extra: str = "",
) -> Request:
    branch = branch or new_branch()
    via = via or f"SIP/2.0/UDP 192.0.2.10:5060;branch={branch}"
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@example.com>;tag=a1\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def answer(req: Request, status: int, to_tag: str | None = "b1") -> Response:
    return make_response(req, status, to_tag=to_tag if status > 100 else None)


def ack_for_2xx(invite: Request, to_tag: str = "b1") -> Request:
    return request("ACK", cseq=invite.cseq.number, call_id=invite.call_id, to_tag=to_tag)


def run_until(layer: TransactionLayer, end: float) -> list[tuple[float, object]]:
    """Fire the layer's timers up to `end`, returning (time, output) pairs."""
    fired: list[tuple[float, object]] = []
    while (when := layer.next_timer()) is not None and when <= end:
        fired += [(when, out) for out in layer.handle_timers(when)]
    return fired


def send_times(fired: list[tuple[float, object]]) -> list[float]:
    return [when for when, out in fired if isinstance(out, SendMessage)]


# -- non-INVITE client --------------------------------------------------------------------


def test_non_invite_retransmissions_double_from_t1_and_cap_at_t2() -> None:
    layer = TransactionLayer()
    _, outputs = layer.send_request(request("OPTIONS"), UAS, 0.0)
    assert [type(o) for o in outputs] == [SendMessage]
    times = send_times(run_until(layer, 20.0))
    intervals = [round(b - a, 3) for a, b in zip([0.0, *times], times, strict=False)]
    assert intervals == [0.5, 1, 2, 4, 4, 4, 4]


def test_timer_f_gives_up_on_a_non_invite_after_64_t1() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS")
    key, _ = layer.send_request(req, UAS, 0.0)
    timeouts = [(t, o) for t, o in run_until(layer, 100.0) if isinstance(o, TransactionTimeout)]
    assert timeouts == [(32.0, TransactionTimeout(key, req))]
    assert layer.active_count() == 0


def test_a_provisional_slows_non_invite_retransmissions_to_t2() -> None:
    layer = TransactionLayer()
    req = request("REGISTER")
    layer.send_request(req, UAS, 0.0)
    assert isinstance(layer.receive(answer(req, 100), UAS, 0.1)[0], ResponseReceived)
    # Timer E keeps its running deadline, then repeats every T2 (RFC 3261 17.1.2.2).
    assert send_times(run_until(layer, 9.0)) == [0.5, 4.5, 8.5]


def test_a_final_response_is_passed_up_once_and_its_copies_absorbed() -> None:
    layer = TransactionLayer()
    req = request("BYE")
    key, _ = layer.send_request(req, UAS, 0.0)
    ok = answer(req, 200)
    assert layer.receive(ok, UAS, 0.2) == [ResponseReceived(ok, key)]
    assert layer.receive(ok, UAS, 0.3) == []
    assert layer.state_of(key) is TxnState.COMPLETED
    assert run_until(layer, 100.0) == []  # no retransmission, timer K is silent
    assert layer.active_count() == 0


def test_a_reliable_non_invite_is_sent_once_and_ends_with_its_final_response() -> None:
    layer = TransactionLayer()
    req = request("BYE")
    layer.send_request(req, UAS, 0.0, reliable=True)
    assert layer.next_timer() == 32.0  # timer F only, no timer E
    layer.receive(answer(req, 200), UAS, 1.0)
    assert layer.active_count() == 0


# -- INVITE client --------------------------------------------------------------------------


def test_invite_retransmissions_double_without_cap_until_timer_b() -> None:
    layer = TransactionLayer()
    invite = request()
    key, _ = layer.send_request(invite, UAS, 0.0)
    fired = run_until(layer, 100.0)
    assert send_times(fired) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert fired[-1] == (32.0, TransactionTimeout(key, invite))
    assert layer.active_count() == 0


def test_a_failed_connection_ends_the_requests_waiting_on_it_at_once() -> None:
    layer = TransactionLayer()
    invite, bye = request(), request("BYE")
    elsewhere = request("OPTIONS")
    invite_key, _ = layer.send_request(invite, UAS, 0.0, reliable=True)
    bye_key, _ = layer.send_request(bye, UAS, 0.0, reliable=True)
    layer.send_request(elsewhere, ("192.0.2.99", 5060), 0.0, reliable=True)

    outputs = layer.transport_failed(UAS, 0.2)

    assert outputs == [
        TransactionTimeout(invite_key, invite),
        TransactionTimeout(bye_key, bye),
    ]
    assert layer.active_count() == 1  # the request to the other address waits on
    assert layer.transport_failed(UAS, 0.3) == []


def test_a_provisional_stops_invite_retransmissions_and_timer_b() -> None:
    layer = TransactionLayer()
    invite = request()
    key, _ = layer.send_request(invite, UAS, 0.0)
    ringing = answer(invite, 180)
    assert layer.receive(ringing, UAS, 0.1) == [ResponseReceived(ringing, key)]
    assert layer.receive(ringing, UAS, 0.2) == []  # the same 180 again is absorbed
    assert layer.next_timer() is None
    assert layer.state_of(key) is TxnState.PROCEEDING


def test_the_transaction_acks_a_failure_response_itself() -> None:
    layer = TransactionLayer()
    invite = request(extra="Route: <sip:proxy.example.com;lr>\r\n")
    key, _ = layer.send_request(invite, UAS, 0.0)
    busy = answer(invite, 486)
    received, sent = layer.receive(busy, UAS, 0.1)
    assert received == ResponseReceived(busy, key)
    assert isinstance(sent, SendMessage) and sent.addr == UAS
    ack = sent.message
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.uri == invite.uri and ack.branch == invite.branch
    assert ack.headers.get_all("Via") == invite.headers.get_all("Via")
    assert ack.to_addr.tag == "b1" and str(ack.cseq) == "1 ACK"
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    # A copy of the 486 gets the same ACK and is not passed up again.
    assert layer.receive(busy, UAS, 0.2) == [SendMessage(ack, UAS)]
    assert run_until(layer, 31.0) == [] and layer.active_count() == 1
    run_until(layer, 32.1)  # timer D
    assert layer.active_count() == 0


def test_after_a_2xx_other_forks_are_passed_up_and_copies_absorbed() -> None:
    layer = TransactionLayer()
    invite = request()
    key, _ = layer.send_request(invite, UAS, 0.0)
    ok_b, ok_c = answer(invite, 200, "b"), answer(invite, 200, "c")
    assert layer.receive(ok_b, UAS, 0.1) == [ResponseReceived(ok_b, key)]
    assert layer.state_of(key) is TxnState.ACCEPTED
    assert layer.receive(ok_b, UAS, 0.6) == []
    assert layer.receive(ok_c, UAS, 0.7) == [ResponseReceived(ok_c, key)]
    run_until(layer, 32.1)  # timer M
    assert layer.active_count() == 0
    assert layer.receive(ok_c, UAS, 33.0) == [StrayResponse(ok_c, UAS)]


def test_a_retransmitted_2xx_is_answered_with_the_remembered_ack() -> None:
    layer = TransactionLayer()
    invite = request()
    layer.send_request(invite, UAS, 0.0)
    ok = answer(invite, 200)
    layer.receive(ok, UAS, 0.1)
    ack = ack_for_2xx(invite)
    assert layer.send_ack(ack, UAS, 0.2) == [SendMessage(ack, UAS)]
    assert layer.receive(ok, UAS, 0.7) == [SendMessage(ack, UAS)]
    run_until(layer, 40.0)
    assert layer.next_timer() is None
    assert layer.receive(ok, UAS, 41.0) == [StrayResponse(ok, UAS)]


def test_a_cancelled_invite_gives_up_64_t1_after_the_cancel() -> None:
    layer = TransactionLayer()
    invite = request()
    key, _ = layer.send_request(invite, UAS, 0.0)
    layer.receive(answer(invite, 180), UAS, 0.1)
    cancel_key, _ = layer.send_request(make_cancel(invite), UAS, 10.0)
    layer.receive(answer(make_cancel(invite), 200), UAS, 10.1)
    assert [o for _, o in run_until(layer, 100.0)] == [TransactionTimeout(key, invite)]
    assert cancel_key != key and layer.active_count() == 0


def test_make_cancel_copies_what_the_far_end_matches_on() -> None:
    invite = request(extra="Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n")
    cancel = make_cancel(invite)
    assert cancel.method == "CANCEL" and cancel.uri == invite.uri
    assert cancel.headers.get_all("Via") == invite.headers.get_all("Via")[:1]
    assert cancel.headers.get("From") == invite.headers.get("From")
    assert cancel.headers.get("To") == invite.headers.get("To")
    assert (cancel.call_id, str(cancel.cseq)) == (invite.call_id, "1 CANCEL")
    assert len(cancel.headers.get_all("Route")) == 2
    with pytest.raises(ValueError):
        make_cancel(request("OPTIONS"))


def test_the_layer_refuses_acks_and_reused_or_legacy_branches() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS", branch="z9hG4bKsame")
    layer.send_request(req, UAS, 0.0)
    with pytest.raises(ValueError):
        layer.send_request(req, UAS, 0.0)
    with pytest.raises(ValueError):
        layer.send_request(request("ACK"), UAS, 0.0)
    with pytest.raises(ValueError):
        layer.send_request(request("OPTIONS", branch="1234"), UAS, 0.0)


# -- INVITE server --------------------------------------------------------------------------


def receive_new(layer: TransactionLayer, req: Request, now: float = 0.0, **kw: bool):
    (out,) = layer.receive(req, UAC, now, **kw)
    assert isinstance(out, RequestReceived) and out.key is not None
    return out.key


def test_a_retransmitted_invite_gets_the_last_provisional_again() -> None:
    layer = TransactionLayer()
    invite = request()
    receive_new(layer, invite)
    assert layer.receive(invite, UAC, 0.4) == []  # nothing sent yet: absorbed
    ringing = answer(invite, 180)
    layer.send_response(ringing, 0.5)
    assert layer.receive(invite, UAC, 1.0) == [SendMessage(ringing, UAC)]


def test_a_failure_is_retransmitted_by_timer_g_until_the_ack() -> None:
    layer = TransactionLayer()
    invite = request()
    key = receive_new(layer, invite)
    busy = answer(invite, 486)
    assert layer.send_response(busy, 0.0) == [SendMessage(busy, UAC)]
    assert send_times(run_until(layer, 12.0)) == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert layer.receive(invite, UAC, 12.1) == [SendMessage(busy, UAC)]
    ack = request("ACK", branch=invite.branch, to_tag="b1")
    assert layer.receive(ack, UAC, 12.2) == []  # absorbed: the ACK of a failure is ours
    assert layer.state_of(key) is TxnState.CONFIRMED
    assert layer.receive(ack, UAC, 12.3) == []
    assert send_times(run_until(layer, 100.0)) == []  # timer I ends it quietly
    assert layer.active_count() == 0


def test_timer_h_gives_up_when_the_ack_of_a_failure_never_comes() -> None:
    layer = TransactionLayer()
    invite = request()
    key = receive_new(layer, invite)
    layer.send_response(answer(invite, 603), 0.0)
    fired = run_until(layer, 100.0)
    assert fired[-1] == (32.0, TransactionTimeout(key, invite))
    assert layer.active_count() == 0


def test_a_2xx_is_retransmitted_until_its_ack_arrives() -> None:
    layer = TransactionLayer()
    invite = request()
    key = receive_new(layer, invite)
    ok = answer(invite, 200)
    layer.send_response(ok, 0.0)
    assert layer.state_of(key) is TxnState.ACCEPTED
    assert send_times(run_until(layer, 12.0)) == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert layer.receive(invite, UAC, 12.1) == []  # RFC 6026: copies absorbed in Accepted
    ack = ack_for_2xx(invite)
    assert layer.receive(ack, UAC, 12.2) == [RequestReceived(ack, UAC, None)]
    assert layer.receive(ack, UAC, 12.3) == []
    fired = run_until(layer, 100.0)
    assert fired == [] and layer.active_count() == 0


def test_a_2xx_never_acked_reports_ack_timeout_after_64_t1() -> None:
    layer = TransactionLayer()
    invite = request()
    key = receive_new(layer, invite)
    layer.send_response(answer(invite, 200), 0.0)
    fired = run_until(layer, 100.0)
    assert send_times(fired) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, AckTimeout(key))
    assert layer.active_count() == 0


def test_over_a_reliable_transport_a_2xx_is_sent_once_but_its_ack_still_awaited() -> None:
    layer = TransactionLayer()
    invite = request(via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKtcp1")
    key = receive_new(layer, invite, reliable=True)
    layer.send_response(answer(invite, 200), 0.0)
    assert [o for _, o in run_until(layer, 100.0)] == [AckTimeout(key)]


def test_over_a_reliable_transport_the_ack_of_a_failure_ends_the_transaction() -> None:
    layer = TransactionLayer()
    invite = request(via="SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKtcp2")
    receive_new(layer, invite, reliable=True)
    layer.send_response(answer(invite, 486), 0.0)
    assert send_times(run_until(layer, 10.0)) == []
    layer.receive(request("ACK", via=invite.headers.get("Via"), to_tag="b1"), UAC, 10.0)
    assert layer.active_count() == 0


def test_sending_after_the_final_response_or_without_a_transaction_raises() -> None:
    layer = TransactionLayer()
    invite = request()
    receive_new(layer, invite)
    layer.send_response(answer(invite, 486), 0.0)
    with pytest.raises(IllegalTransition):
        layer.send_response(answer(invite, 200), 0.1)
    with pytest.raises(ValueError):
        layer.send_response(answer(request(), 200), 0.1)


# -- non-INVITE server ----------------------------------------------------------------------


def test_a_non_invite_server_repeats_its_final_response_until_timer_j() -> None:
    layer = TransactionLayer()
    bye = request("BYE", to_tag="b1")
    receive_new(layer, bye)
    assert layer.receive(bye, UAC, 0.1) == []  # Trying: nothing to repeat yet
    ok = answer(bye, 200)
    layer.send_response(ok, 0.2)
    assert layer.receive(bye, UAC, 0.3) == [SendMessage(ok, UAC)]
    with pytest.raises(IllegalTransition):
        layer.send_response(answer(bye, 500), 0.4)
    assert run_until(layer, 100.0) == []  # the server never retransmits by itself
    assert layer.active_count() == 0


def test_a_reliable_non_invite_server_ends_with_its_final_response() -> None:
    layer = TransactionLayer()
    bye = request("BYE", via="SIP/2.0/TLS 192.0.2.10;branch=z9hG4bKtls", to_tag="b1")
    receive_new(layer, bye, reliable=True)
    layer.send_response(answer(bye, 200), 0.0)
    assert layer.active_count() == 0


# -- CANCEL ---------------------------------------------------------------------------------


def test_a_cancel_is_matched_to_its_invite_server_transaction() -> None:
    layer = TransactionLayer()
    invite = request()
    invite_key = receive_new(layer, invite)
    cancel = make_cancel(invite)
    cancel_key = receive_new(layer, cancel, 1.0)
    assert layer.find_invite_for_cancel(cancel) == invite_key
    assert cancel_key != invite_key
    layer.send_response(answer(cancel, 200), 1.0)
    layer.send_response(answer(invite, 487), 1.0)


def test_a_cancel_matching_nothing_gets_481_from_the_layer_itself() -> None:
    layer = TransactionLayer()
    cancel = make_cancel(request())
    (out,) = layer.receive(cancel, UAC, 0.0)
    assert isinstance(out, SendMessage) and isinstance(out.message, Response)
    assert out.message.status == 481 and out.message.to_addr.tag
    assert layer.receive(cancel, UAC, 0.5) == [out]  # a copy of the CANCEL: the same 481


# -- response addressing (RFC 3261 18.2.2, RFC 3581) ----------------------------------------


@pytest.mark.parametrize(
    ("via", "source", "expected_addr", "expected_params"),
    [
        (
            "SIP/2.0/UDP 10.0.0.5:5062;rport;branch=z9hG4bKr1",
            ("203.0.113.7", 40000),
            ("203.0.113.7", 40000),
            {"received": "203.0.113.7", "rport": "40000"},
        ),
        (
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKr2",
            ("203.0.113.7", 40000),
            ("203.0.113.7", 5062),
            {"received": "203.0.113.7"},
        ),
        (
            "SIP/2.0/UDP phone.example.com;branch=z9hG4bKr3",
            ("203.0.113.7", 5060),
            ("203.0.113.7", 5060),
            {"received": "203.0.113.7"},
        ),
        (
            "SIP/2.0/UDP 203.0.113.7:5070;branch=z9hG4bKr4",
            ("203.0.113.7", 5070),
            ("203.0.113.7", 5070),
            {},
        ),
    ],
)
def test_responses_are_addressed_by_the_top_via_and_rport(
    via: str, source: tuple[str, int], expected_addr: tuple[str, int], expected_params: dict
) -> None:
    layer = TransactionLayer()
    req = request("OPTIONS", via=via)
    layer.receive(req, source, 0.0)
    (sent,) = layer.send_response(answer(req, 200), 0.0)
    assert isinstance(sent, SendMessage) and sent.addr == expected_addr
    params = sent.message.top_via.params
    assert {k: params[k] for k in ("received", "rport") if params.get(k)} == expected_params


# -- peers without the magic cookie ---------------------------------------------------------


def test_an_rfc2543_invite_and_its_ack_are_matched_without_a_branch() -> None:
    invite = parse_message((RFC4475 / "inv2543.dat").read_bytes())
    assert isinstance(invite, Request) and invite.branch is None
    layer = TransactionLayer()
    (out,) = layer.receive(invite, UAC, 0.0)
    assert isinstance(out, RequestReceived)
    busy = answer(invite, 486)
    layer.send_response(busy, 0.1)
    assert layer.receive(invite, UAC, 0.2) == [SendMessage(busy, UAC)]
    ack = Request("ACK", invite.uri, busy.headers.copy())
    ack.headers.set("CSeq", f"{invite.cseq.number} ACK")
    assert layer.receive(ack, UAC, 0.3) == []
    assert layer.state_of(out.key) is TxnState.CONFIRMED


def test_a_branch_of_only_the_magic_cookie_is_still_a_branch() -> None:
    options = parse_message((RFC4475 / "badbranch.dat").read_bytes())
    assert isinstance(options, Request) and options.branch == "z9hG4bK"
    layer = TransactionLayer()
    (out,) = layer.receive(options, UAC, 0.0)
    assert isinstance(out, RequestReceived) and out.key is not None
    assert out.key.legacy is None
    ok = answer(options, 200)
    layer.send_response(ok, 0.0)
    assert layer.receive(options, UAC, 0.1) == [SendMessage(ok, UAC)]


# -- a UAC and a UAS over a lossy link ------------------------------------------------------


class LossyLink:
    """Carries messages as bytes between two layers, dropping the first copy of each."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()
        self.dropped = 0

    def carry(self, out: SendMessage) -> Request | Response | None:
        wire = bytes(out.message)
        if wire not in self.seen:
            self.seen.add(wire)
            self.dropped += 1
            return None
        return parse_message(wire)


def test_invite_200_ack_and_bye_complete_although_every_first_copy_is_lost() -> None:
    uac, uas = TransactionLayer(), TransactionLayer()
    link = LossyLink()
    seen_by_uac: list[object] = []
    seen_by_uas: list[object] = []
    invite = request()
    bye = request("BYE", cseq=2, to_tag="b1")

    def deliver(outputs: list, frm: TransactionLayer, now: float) -> None:
        for out in outputs:
            if isinstance(out, SendMessage):
                message = link.carry(out)
                if message is not None:
                    to = uas if frm is uac else uac
                    deliver(to.receive(message, UAC if frm is uac else UAS, now), to, now)
            elif frm is uas:
                seen_by_uas.append(out)
                if isinstance(out, RequestReceived) and out.key is not None:
                    req = out.request
                    if req.method == "INVITE":
                        deliver(uas.send_response(answer(req, 180), now), uas, now)
                    deliver(uas.send_response(answer(req, 200), now), uas, now)
            else:
                seen_by_uac.append(out)
                answered = isinstance(out, ResponseReceived) and out.response.status == 200
                if answered and out.key.method == "INVITE":
                    deliver(uac.send_ack(ack_for_2xx(invite), UAS, now), uac, now)

    _, outputs = uac.send_request(invite, UAS, 0.0)
    deliver(outputs, uac, 0.0)
    bye_at: float | None = 5.0  # hang up once the call is up
    while True:
        pending = [t for t in (uac.next_timer(), uas.next_timer(), bye_at) if t is not None]
        if not pending:
            break
        now = min(pending)
        if now == bye_at:
            bye_at = None
            deliver(uac.send_request(bye, UAS, now)[1], uac, now)
        deliver(uac.handle_timers(now), uac, now)
        deliver(uas.handle_timers(now), uas, now)

    assert link.dropped == 6  # INVITE, 180, 200, ACK, BYE, 200
    statuses = [
        (o.key.method, o.response.status) for o in seen_by_uac if isinstance(o, ResponseReceived)
    ]
    assert statuses == [("INVITE", 200), ("BYE", 200)]  # the 180's only copy was lost
    methods = [o.request.method for o in seen_by_uas if isinstance(o, RequestReceived)]
    assert methods == ["INVITE", "ACK", "BYE"]
    assert not any(isinstance(o, TransactionTimeout | AckTimeout) for o in seen_by_uac)
    assert not any(isinstance(o, TransactionTimeout | AckTimeout) for o in seen_by_uas)
    assert uac.active_count() == uas.active_count() == 0
    assert uac.next_timer() is None and uas.next_timer() is None


def test_hundreds_of_finished_transactions_leave_nothing_behind() -> None:
    client, server = TransactionLayer(), TransactionLayer()
    for i in range(300):
        req = request("OPTIONS", call_id=f"gc-{i}")
        client.send_request(req, UAS, i * 0.01)
        server.receive(req, UAC, i * 0.01)
        ok = answer(req, 200, to_tag=new_tag())
        server.send_response(ok, i * 0.01)
        client.receive(ok, UAS, i * 0.01)
    assert client.active_count() == server.active_count() == 300
    client.handle_timers(1000.0)
    server.handle_timers(1000.0)
    assert client.active_count() == server.active_count() == 0
    assert client.next_timer() is None and server.next_timer() is None


def test_an_ack_matching_no_transaction_goes_to_the_tu_without_a_key() -> None:
    layer = TransactionLayer()
    ack = request("ACK", to_tag="b1")
    assert layer.receive(ack, UAC, 0.0) == [RequestReceived(ack, UAC, None)]
    assert layer.active_count() == 0


def test_a_message_without_the_core_headers_is_dropped_not_raised() -> None:
    layer = TransactionLayer()
    assert layer.receive(Request("OPTIONS", "sip:bob@example.com", Headers()), UAC, 0.0) == []
    assert layer.receive(Response(200, "OK", Headers()), UAS, 0.0) == []


def test_a_transition_outside_the_table_raises() -> None:
    txn = NonInviteServerTransaction(request("BYE"), UAC, False, TimerConfig())
    with pytest.raises(IllegalTransition):
        txn.move(TxnState.CONFIRMED)


def test_ids_are_fresh_and_branches_carry_the_magic_cookie() -> None:
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()
    assert new_tag() != new_tag() and len(new_tag()) >= 8
    assert new_call_id("192.0.2.1").endswith("@192.0.2.1") and "@" not in new_call_id()
