"""Registrar bindings: several contacts, expiry, un-register, refused intervals."""

from __future__ import annotations

from pbx.engine.registrar import Registrar, StoredBinding
from pbx.sip.message import Request, parse_message


def _register(
    contacts: list[str], *, expires: str | None = None, cseq: int = 1, call_id: str = "reg-1"
) -> Request:
    lines = [
        "REGISTER sip:pbx SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-r" + str(cseq),
        "From: <sip:201@pbx>;tag=a",
        "To: <sip:201@pbx>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "Max-Forwards: 70",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_it_keeps_several_contacts_per_device_and_lists_them_in_the_answer() -> None:
    registrar = Registrar()
    response = registrar.register(
        "201",
        _register(["<sip:201@10.0.0.1:5060>", "<sip:201@10.0.0.2:5060>"]),
        ("127.0.0.1", 5062),
        "udp",
        now=0,
    )
    assert response.status == 200
    assert len(response.headers.get_all("Contact")) == 2
    assert len(registrar.contacts("201", now=1)) == 2


def test_a_binding_disappears_when_it_expires() -> None:
    registrar = Registrar(min_expires=60)
    registrar.register("201", _register(["<sip:201@10.0.0.1>;expires=120"]), ("h", 1), "udp", now=0)
    assert registrar.contacts("201", now=119)
    assert registrar.contacts("201", now=121) == []


def test_expires_zero_removes_a_contact_and_the_wildcard_removes_all() -> None:
    registrar = Registrar()
    registrar.register("201", _register(["<sip:201@a>", "<sip:201@b>"]), ("h", 1), "udp", now=0)
    registrar.register("201", _register(["<sip:201@a>;expires=0"], cseq=2), ("h", 1), "udp", now=1)
    assert [b.contact.host for b in registrar.contacts("201", now=2)] == ["b"]
    response = registrar.register(
        "201", _register(["*"], expires="0", cseq=3), ("h", 1), "udp", now=3
    )
    assert response.status == 200
    assert registrar.contacts("201", now=4) == []


def test_a_too_brief_interval_gets_423_with_the_minimum() -> None:
    registrar = Registrar(min_expires=60)
    response = registrar.register(
        "201", _register(["<sip:201@a>;expires=10"]), ("h", 1), "udp", now=0
    )
    assert response.status == 423
    assert response.headers.get("Min-Expires") == "60"
    assert registrar.contacts("201", now=1) == []


def test_a_wildcard_with_a_nonzero_expiry_is_refused_and_changes_nothing() -> None:
    registrar = Registrar()
    registrar.register("201", _register(["<sip:201@a>"]), ("h", 1), "udp", now=0)
    response = registrar.register(
        "201", _register(["*"], expires="60", cseq=2), ("h", 1), "udp", now=1
    )
    assert response.status == 400
    assert len(registrar.contacts("201", now=2)) == 1


def test_an_older_reordered_register_does_not_override_a_newer_one() -> None:
    registrar = Registrar()
    registrar.register(
        "201", _register(["<sip:201@a>;expires=600"], cseq=5), ("h", 1), "udp", now=0
    )
    registrar.register("201", _register(["<sip:201@a>;expires=0"], cseq=4), ("h", 1), "udp", now=1)
    assert len(registrar.contacts("201", now=2)) == 1


class _Store:
    def __init__(self) -> None:
        self.saved: dict[str, list[StoredBinding]] = {}

    def save(self, username: str, bindings: list[StoredBinding]) -> None:
        self.saved[username] = bindings

    async def load(self) -> list[StoredBinding]:
        return [b for bindings in self.saved.values() for b in bindings]


def test_every_change_is_saved_with_wall_clock_expiry() -> None:
    store = _Store()
    registrar = Registrar(store=store, wall_clock=lambda: 1_000_000.0)
    registrar.register(
        "201", _register(["<sip:201@10.0.0.1>;expires=600"]), ("10.0.0.1", 5062), "udp", now=50
    )
    [saved] = store.saved["201"]
    assert (saved.contact, saved.source_host, saved.source_port) == (
        "sip:201@10.0.0.1",
        "10.0.0.1",
        5062,
    )
    assert saved.expires_at == 1_000_600.0
    registrar.register(
        "201", _register(["*"], expires="0", cseq=2), ("10.0.0.1", 5062), "udp", now=60
    )
    assert store.saved["201"] == []


async def test_a_new_registrar_takes_back_what_has_not_expired() -> None:
    store = _Store()
    before = Registrar(store=store, wall_clock=lambda: 1_000_000.0)
    before.register("201", _register(["<sip:201@a>;expires=600"]), ("h", 1), "udp", now=0)
    before.register(
        "202", _register(["<sip:202@b>;expires=60"], call_id="reg-2"), ("h", 2), "udp", now=0
    )
    # Restarted 100 s later (wall clock), on a loop whose clock starts again from 5.
    after = Registrar(store=store, wall_clock=lambda: 1_000_100.0)
    assert await after.restore(now=5) == 1
    [binding] = after.contacts("201", now=5)
    assert binding.expires_in(5) == 500 and binding.source == ("h", 1)
    assert after.contacts("202", now=5) == []


def test_two_phones_behind_different_routers_with_the_same_contact_both_stay() -> None:
    registrar = Registrar()
    contact = ["<sip:201@192.168.1.10:5060>"]
    registrar.register(
        "201", _register(contact, call_id="home"), ("203.0.113.5", 5060), "udp", now=0
    )
    registrar.register(
        "201", _register(contact, call_id="office"), ("198.51.100.7", 5060), "udp", now=1
    )
    sources = {b.source for b in registrar.contacts("201", now=2)}
    assert sources == {("203.0.113.5", 5060), ("198.51.100.7", 5060)}


def test_the_same_phone_refreshing_replaces_its_binding() -> None:
    registrar = Registrar()
    contact = ["<sip:201@192.168.1.10:5060>"]
    registrar.register(
        "201", _register(contact, call_id="home"), ("203.0.113.5", 5060), "udp", now=0
    )
    registrar.register(
        "201", _register(contact, call_id="home", cseq=2), ("203.0.113.5", 5060), "udp", now=100
    )
    [binding] = registrar.contacts("201", now=101)
    assert binding.cseq == 2
