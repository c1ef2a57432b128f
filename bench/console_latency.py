"""Console latency: from the SIP message that changes a call to the consoles' update, 50 consoles.

Centralino runs as users start it, in both modes: embedded (`manage.py serve`, engine in the web
process, SQLite, in-memory channel layer) and distributed (`serve` without an engine plus the
telephony Celery worker, PostgreSQL, the Redis channel layer). A raw UDP UAC in this process is
the demo trunk's carrier: each call is an INVITE to the operator queue's DID with its own caller
number, a CANCEL half a second after the 180, an ACK to the 487. The consoles are WebSocket
clients (this process, one operator user each) and Chromium pages of /console/ (Playwright):

  new call  INVITE sent (time.time() just before sendto) -> the call's `queued` update received
            (socket) or its row in #incoming-calls (page, MutationObserver);
  ended     CANCEL sent -> `call.ended` received (socket) or the row gone (page).

Three ramps per server, in this order: 1 socket (the anchor: what the engine and the channel
layer take on their own), 50 sockets (what 50 consoles cost the server), 47 sockets and 3 pages
(the target setup; the pages' CPU shares the 2 cores too). Deliveries/s = messages received by
all consoles / (last receipt - first INVITE). A step holds when each p95 (new, ended; sockets,
pages) stays under 100 ms and no console missed a message. A socket the server closes
reconnects after 2 s, as the page does, and is counted. CPU per process is read from /proc.
Nothing asserts a timing; not part of `make test`. About 8 minutes; a full run (both modes)
writes its section of bench/RESULTS.md.

    .venv/bin/python bench/console_latency.py [--quick] [--mode embedded|distributed] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    BENCH,
    HOST,
    ROOT,
    cpu_seconds,
    machine_facts,
    new_event_loop,
    percentile,
    raise_nofile,
    replace_section,
)
from tests.integration import processes  # noqa: E402
from tests.integration.peers.ports import free_port_range, free_tcp_port, free_udp_port  # noqa: E402
from tests.integration.processes import (  # noqa: E402
    POSTGRES_ADMIN_URL,
    REDIS_TEST_URL,
    Child,
    base_env,
    celery_worker,
    http_get,
    manage,
    sip_options,
    start_child,
)

RESULTS = BENCH / "RESULTS.md"
HEADING = "## Console latency (SIP message -> 50 operator consoles)"
MODES = ("embedded", "distributed")
ANCHOR, SOCKETS, MIXED = "1 socket (anchor)", "50 sockets", "47 sockets + 3 pages"
RATES = (5, 7, 10, 15, 20, 30)  # 7 calls/s: 1,000 deliveries/s to 50 consoles
QUICK_RATES = (5, 15)
STEP_SECONDS = 10.0
QUICK_STEP_SECONDS = 5.0
HOLD_SECONDS = 0.5  # 180 received -> CANCEL sent
RECONNECT_SECONDS = 2.0  # as console.js, after the server closed the socket
CONSOLES = 50
BROWSERS = 3
TARGET_P95_MS = 100.0
TARGET_DELIVERIES = 1000
NOISY_PCT = 20.0  # a step where other processes took more of a core than this is run again
GIVE_UP_P95_MS = 3 * TARGET_P95_MS  # a step this slow ends the ramp: higher rates only queue
DID = "0212345678"  # the demo's company number: the operator queue
CHROMIUM = "/usr/bin/chromium"
# The bench's own Redis database, emptied after a run; not the tests' (15): the channel layer's
# groups are named by company id, and a test run's company 1 would talk to our consoles.
REDIS_URL = REDIS_TEST_URL.rsplit("/", 1)[0] + "/14"
USER_PASSWORD = "console-bench-" + uuid.uuid4().hex[:8]

# In every page before console.js: count the socket's messages, and note when a caller's row
# appears in or leaves the incoming list (the list is redrawn on each message).
PAGE_PROBE = """
(() => {
  const bench = (window.__bench = { messages: 0, closes: 0, seen: {}, gone: {} });
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => { bench.messages += 1; });
      this.addEventListener("close", () => { bench.closes += 1; });
    }
  };
  let shown = new Set();
  document.addEventListener("DOMContentLoaded", () => {
    const list = document.getElementById("incoming-calls");
    if (!list) return;
    new MutationObserver(() => {
      const t = performance.timeOrigin + performance.now();
      const now = new Set();
      for (const who of list.querySelectorAll("li.call .who")) {
        for (const number of who.textContent.match(/\\d{6,}/g) || []) now.add(number);
      }
      for (const number of now) if (!(number in bench.seen)) bench.seen[number] = t;
      for (const number of shown) if (!now.has(number) && !(number in bench.gone)) bench.gone[number] = t;
      shown = now;
    }).observe(list, { childList: true });
  });
})();
"""


# --- the PBX under test ------------------------------------------------------------------------


@dataclass
class Pbx:
    """Centralino started in one mode: its ports, its processes, its operators' passwords."""

    mode: str
    http_port: int
    sip_port: int
    carrier_port: int
    passwords: dict[str, str]
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"


def _operators_script(count: int, carrier_port: int) -> str:
    """`manage.py shell` code: `count` more operators (one password hash for all, hashing is
    slow) and the demo trunk's carrier moved to our UAC's port."""
    return (
        "from django.contrib.auth.hashers import make_password\n"
        "from django.contrib.auth.models import User\n"
        "from pbx.models import Company, Membership, Role, Trunk\n"
        "company = Company.objects.get()\n"
        f"hashed = make_password({USER_PASSWORD!r})\n"
        "extensions = list(company.extensions.order_by('number'))\n"
        f"for i in range(1, {count + 1}):\n"
        "    user = User.objects.create(username=f'console{i:02}', password=hashed)\n"
        "    Membership.objects.create(user=user, company=company, role=Role.OPERATOR,\n"
        "                              extension=extensions[i % len(extensions)],\n"
        "                              must_change_password=False)\n"
        f"Trunk.objects.filter(company=company).update(port={carrier_port})\n"
    )


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    """A PostgreSQL database for one run, dropped afterwards (as the tests' postgres_url)."""
    import psycopg

    name = f"centralino_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_redis() -> None:
    """Empty the bench's own Redis database: the channel layer's group (whose departed
    members would stay a day), Celery's bindings and results."""
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).flushdb()


@contextlib.contextmanager
def started_pbx(mode: str, workdir: Path) -> Iterator[Pbx]:
    """Seed and start Centralino in `mode`; everything it started is stopped on the way out."""
    var = workdir / mode
    var.mkdir(parents=True)
    env = base_env(var)
    rtp = free_port_range(400)
    carrier_port = free_udp_port()
    pbx = Pbx(mode, free_tcp_port(), int(env["CENTRALINO_SIP_PORT"]), carrier_port, {})
    env.update(
        CENTRALINO_HTTP_PORT=str(pbx.http_port),
        CENTRALINO_RTP_PORTS=f"{rtp}-{rtp + 399}",
        CENTRALINO_MEDIA_TIMEOUT="0",  # the UAC sends no RTP
    )
    node = f"bench{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as stack:
        if mode == "distributed":
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
            database = stack.enter_context(throwaway_database())
            env.update(DATABASE_URL=database, REDIS_URL=REDIS_URL, CENTRALINO_NODE=node)
            stack.callback(_empty_redis)
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
        manage(env, "shell", "-c", _operators_script(CONSOLES - 1, carrier_port))
        credentials = json.loads((var / "demo_credentials.json").read_text())
        pbx.passwords = {"alice": credentials["passwords"]["alice"]}
        pbx.passwords.update({f"console{i:02}": USER_PASSWORD for i in range(1, CONSOLES)})
        try:
            if mode == "distributed":
                command = celery_worker(f"telephony.{node}", "-n", f"{node}@%h")
                worker = start_child([*command, "--without-heartbeat"], env, var / "worker.log")
                pbx.children["worker"] = worker
                worker.wait_until(lambda: sip_options(pbx.sip_port) is not None, "worker")
            serve = start_child([sys.executable, "manage.py", "serve"], env, var / "serve.log")
            pbx.children["serve"] = serve
            serve.wait_until(lambda: http_get(pbx.http_port, "/login/")[0] == 200, "serve")
            if mode == "embedded":
                serve.wait_until(lambda: sip_options(pbx.sip_port) is not None, "serve (SIP)")
            yield pbx
        finally:
            for child in reversed(pbx.children.values()):
                if child.process.poll() is None:
                    child.stop(signal.SIGTERM, timeout=20)
                child.kill()


def describe_code() -> str:
    """HEAD of this tree and how many files differ from it (git, read only: no index lock)."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *args], capture_output=True, text=True
        )
        return out.stdout.strip()

    changed = [line for line in git("status", "--porcelain").splitlines() if line]
    return f"{git('log', '-1', '--format=%h %s')[:80]}, {len(changed)} uncommitted file(s)"


def login(pbx: Pbx, username: str) -> str:
    """Log `username` in through /login/ (CSRF token and all); their session id."""
    return processes.login(pbx.http_port, username, pbx.passwords[username])


# --- the carrier: a raw UDP UAC ---------------------------------------------------------------


@dataclass
class OutCall:
    """One call the carrier places: when its INVITE and its CANCEL left."""

    caller: str
    call_id: str
    branch: str
    tag: str
    invite_sent: float = 0.0
    cancel_sent: float = 0.0
    ringing: bool = False
    cancel_ok: bool = False
    final: int = 0
    retries: int = 0


class Carrier(asyncio.DatagramProtocol):
    """Places calls to the DID from the trunk's address: INVITE, 180, CANCEL, 487, ACK."""

    def __init__(self, pbx: Pbx, media_port: int) -> None:
        self.pbx = pbx
        self.media_port = media_port
        self.calls: dict[str, OutCall] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.stray = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    @property
    def _target(self) -> tuple[str, int]:
        return (HOST, self.pbx.sip_port)

    def _request(self, call: OutCall, method: str, *, to_tag: str = "", body: str = "") -> bytes:
        port = self.pbx.carrier_port
        lines = [
            f"{method} sip:{DID}@{HOST}:{self.pbx.sip_port} SIP/2.0",
            f"Via: SIP/2.0/UDP {HOST}:{port};branch={call.branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{call.caller}@{HOST}:{port}>;tag={call.tag}",
            f"To: <sip:{DID}@{HOST}>" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call.call_id}",
            f"CSeq: 1 {method}",
        ]
        if method == "INVITE":
            lines += [
                f"Contact: <sip:{call.caller}@{HOST}:{port}>",
                "Content-Type: application/sdp",
            ]
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _offer(self) -> str:
        session = int(time.time() * 1000)
        return (
            f"v=0\r\no=carrier {session} {session} IN IP4 {HOST}\r\ns=-\r\n"
            f"c=IN IP4 {HOST}\r\nt=0 0\r\nm=audio {self.media_port} RTP/AVP 0 101\r\n"
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\na=sendrecv\r\n"
        )

    def invite(self, caller: str) -> OutCall:
        """Send the INVITE of a new call from `caller` (retransmitted until answered)."""
        hexid = uuid.uuid4().hex
        call = OutCall(caller, f"{hexid}@{HOST}", f"z9hG4bK{hexid[:16]}", hexid[16:26])
        self.calls[call.call_id] = call
        data = self._request(call, "INVITE", body=self._offer())
        assert self.transport is not None
        call.invite_sent = time.time()
        self.transport.sendto(data, self._target)
        self._retransmit(call, data, lambda: call.final == 0 and not call.ringing, 0.5)
        return call

    def _retransmit(self, call: OutCall, data: bytes, pending: Any, interval: float) -> None:
        """RFC 3261 timer A/E style: again after 0.5, 1, 2 s while `pending()`, 4 times."""
        loop = asyncio.get_running_loop()

        def again(interval: float) -> None:
            if not pending() or call.retries >= 4 or self.transport is None:
                return
            call.retries += 1
            self.transport.sendto(data, self._target)
            loop.call_later(interval * 2, again, interval * 2)

        loop.call_later(interval, again, interval)

    def _cancel(self, call: OutCall) -> None:
        if call.final or self.transport is None:
            return
        data = self._request(call, "CANCEL")
        call.cancel_sent = time.time()
        self.transport.sendto(data, self._target)
        self._retransmit(call, data, lambda: not call.cancel_ok and call.final == 0, 0.5)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        head, _, _body = data.decode("utf-8", "replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if not lines[0].startswith("SIP/2.0 "):
            self._answer_request(lines[0], headers, addr)
            return
        call = self.calls.get(headers.get("call-id", headers.get("i", "")))
        if call is None:
            self.stray += 1
            return
        status = int(lines[0].split()[1])
        method = headers.get("cseq", "").split()[-1]
        if method == "CANCEL":
            call.cancel_ok = call.cancel_ok or status == 200
        elif status == 180 and not call.ringing:
            call.ringing = True
            asyncio.get_running_loop().call_later(HOLD_SECONDS, self._cancel, call)
        elif status >= 200:
            to_tag = re.search(r";tag=([^;>\s]+)", headers.get("to", ""))
            if status < 300:  # not expected from a queue: take it and hang up at once
                self.stray += 1
            call.final = call.final or status
            if status >= 300 and self.transport is not None:
                ack = self._request(call, "ACK", to_tag=to_tag.group(1) if to_tag else "")
                self.transport.sendto(ack, self._target)

    def _answer_request(self, line: str, headers: dict[str, str], addr: tuple[str, int]) -> None:
        """200 to whatever the PBX asks of the carrier (OPTIONS keepalives), except an ACK."""
        method = line.split(" ", 1)[0]
        if method == "ACK" or self.transport is None:
            return
        reply = [
            "SIP/2.0 200 OK",
            *(
                f"{n}: {headers[n]}"
                for n in ("via", "from", "to", "call-id", "cseq")
                if n in headers
            ),
            "Content-Length: 0",
        ]
        self.transport.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), addr)


class _Discard(asyncio.DatagramProtocol):
    """The UAC's media port: whatever RTP comes is dropped."""


# --- the consoles -----------------------------------------------------------------------------


@dataclass
class Receipts:
    """What one console received during a step, and when (time.time())."""

    messages: int = 0
    last: float = 0.0
    gaps: int = 0
    queued: dict[str, float] = field(default_factory=dict)  # caller -> first `queued` update
    ended: dict[str, float] = field(default_factory=dict)  # engine call id -> call.ended


class SocketConsole:
    """A console as a WebSocket client: the snapshot, then every message noted on arrival."""

    def __init__(self, pbx: Pbx, session: str, callers: dict[str, str]) -> None:
        self.pbx = pbx
        self.session = session
        self.callers = callers  # engine call id -> caller, shared by all consoles
        self.receipts = Receipts()
        self.seqs: dict[str, int] = {}
        # (close code, when): the server closed the socket (it reconnects, as the page does)
        self.closes: list[tuple[str, float]] = []
        self.reconnecting = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._socket: Any = None

    async def open(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._listen())

    async def _connect(self) -> None:
        from websockets.asyncio.client import connect

        self._socket = await connect(
            f"ws://{HOST}:{self.pbx.http_port}/ws/console/",
            origin=self.pbx.url,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={self.session}"},
            ping_interval=None,
            open_timeout=30,
        )
        first = json.loads(await asyncio.wait_for(self._socket.recv(), 30))
        if first.get("type") != "snapshot":
            raise RuntimeError(f"the console's first message is not a snapshot: {first}")
        # One stream per telephony node: its snapshot's sequence, then its messages in turn.
        self.seqs = {node: snapshot["seq"] for node, snapshot in first["nodes"].items()}

    async def _listen(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                async for raw in self._socket:
                    now = time.time()
                    self._note(json.loads(raw), now)
            except ConnectionClosed:
                pass
            if self._closing:
                return
            self.closes.append((str(self._socket.close_code), time.time()))
            self.reconnecting = True
            await asyncio.sleep(RECONNECT_SECONDS)
            try:
                await self._connect()
            except Exception as error:  # counted as missing messages from now on
                self.closes.append((f"no reconnect: {error}", time.time()))
                return
            self.reconnecting = False

    def _note(self, message: dict[str, Any], now: float) -> None:
        got = self.receipts
        got.messages += 1
        got.last = now
        seq, node = message.get("seq"), message.get("node", "")
        if isinstance(seq, int):
            last = self.seqs.get(node)
            if last is not None and seq <= last:
                return  # already in the snapshot
            if last is None or seq != last + 1:
                got.gaps += 1
            self.seqs[node] = seq
        kind = message.get("type")
        if kind == "call.updated":
            call = message["call"]
            self.callers[call["id"]] = call["caller"]
            if call["state"] == "queued":
                got.queued.setdefault(call["caller"], now)
        elif kind == "call.ended":
            got.ended.setdefault(message["call_id"], now)

    async def close(self) -> None:
        self._closing = True
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close(), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class BrowserConsoles:
    """A few /console/ pages in one Chromium; the pages time the rows themselves."""

    def __init__(self) -> None:
        self.pages: list[Any] = []
        self._playwright: Any = None
        self._browser: Any = None

    async def open(self, pbx: Pbx, usernames: list[str]) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"]
        )
        for username in usernames:
            context = await self._browser.new_context(viewport={"width": 1400, "height": 860})
            await context.add_init_script(PAGE_PROBE)
            page = await context.new_page()
            await page.goto(f"{pbx.url}/login/")
            await page.get_by_label("Username").fill(username)
            await page.get_by_label("Password").fill(pbx.passwords[username])
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url("**/console/")
            await page.locator("#status-connection.ok").wait_for()
            self.pages.append(page)

    async def reset(self) -> None:
        for page in self.pages:
            await page.evaluate(
                "() => Object.assign(window.__bench, {messages: 0, seen: {}, gone: {}})"
            )

    async def collect(self) -> list[dict[str, Any]]:
        """Each page's {messages, seen: {caller: ms}, gone: {caller: ms}}."""
        return [await page.evaluate("() => window.__bench") for page in self.pages]

    async def close(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()


# --- CPU ---------------------------------------------------------------------------------------


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _named(names: tuple[str, ...]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
    return pids


def process_groups(pbx: Pbx) -> dict[str, list[int]]:
    """The processes whose CPU is reported: the PBX's, the browsers', this one, the services."""
    groups = {name: [child.process.pid] for name, child in pbx.children.items()}
    ours = {pid for pids in groups.values() for pid in pids}
    tree, browsers, todo = _children_of(), [], [os.getpid()]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in ours:
                browsers.append(child)
                todo.append(child)
    groups["bench client"] = [os.getpid()]
    groups["browsers"] = browsers
    if pbx.mode == "distributed":
        groups["redis"] = _named(("redis-server",))
        groups["postgres"] = _named(("postgres", "postmaster"))
    return groups


def _cpu_with_children(pid: int) -> float:
    """CPU of `pid` and of its children that ended: the postmaster reaps a backend per
    connection, and Django opens a connection per request or task (CONN_MAX_AGE 0)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_sample(pbx: Pbx) -> dict[str, float]:
    """CPU seconds so far per process group, and the machine's busy seconds (all cores)."""
    sample = {}
    for name, pids in process_groups(pbx).items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += _cpu_with_children(pid) if name == "postgres" else cpu_seconds(pid)
        sample[name] = total
    # user, nice, system, idle, iowait, irq, softirq, steal: busy leaves out idle, I/O wait
    # and the time the hypervisor gave to other guests.
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    sample["machine"] = (sum(ticks[:3]) + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")
    return sample


# --- a step, a ramp ----------------------------------------------------------------------------


@dataclass
class Step:
    """One call rate held for a step: latencies (ms), deliveries, CPU (% of one core)."""

    consoles: int
    rate: int
    calls: int
    failed: int
    socket_new: list[float]
    socket_ended: list[float]
    browser_new: list[float]
    browser_ended: list[float]
    missing: int  # updates a console should have had and did not
    gaps: int
    closes: int  # sockets the server closed since the step before (the consoles reconnect)
    deliveries: int
    seconds: float
    cpu: dict[str, float]
    retry: bool = False

    @property
    def noisy(self) -> bool:
        """Other processes (not the PBX, the consoles, the services) took a share."""
        return self.cpu.get("other", 0.0) > NOISY_PCT

    @property
    def delivery_rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds > 0 else 0.0

    @property
    def held(self) -> bool:
        kinds = (self.socket_new, self.socket_ended, self.browser_new, self.browser_ended)
        p95s = [percentile(v, 95) for v in kinds if v]
        ok = bool(p95s) and all(p < TARGET_P95_MS for p in p95s)
        return ok and self.missing == 0 and self.failed == 0 and self.gaps == 0


class Bench:
    """The consoles and the carrier against one running PBX."""

    def __init__(self, pbx: Pbx, seconds: float) -> None:
        self.pbx = pbx
        self.seconds = seconds
        self.sockets: list[SocketConsole] = []
        self.browsers = BrowserConsoles()
        self.callers: dict[str, str] = {}
        self.carrier: Carrier | None = None
        self.sessions: list[str] = []
        self._next_caller = 0
        self._closes_counted = 0
        self._transports: list[asyncio.BaseTransport] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        media, _ = await loop.create_datagram_endpoint(_Discard, local_addr=(HOST, 0))
        media_port = media.get_extra_info("sockname")[1]
        transport, carrier = await loop.create_datagram_endpoint(
            lambda: Carrier(self.pbx, media_port), local_addr=(HOST, self.pbx.carrier_port)
        )
        self._transports += [media, transport]
        self.carrier = carrier
        socket_users = ["alice"] + [f"console{i:02}" for i in range(1, CONSOLES)]
        pool = asyncio.Semaphore(3)  # logins hash passwords: a few at a time

        async def session(user: str) -> str:
            async with pool:
                return await asyncio.to_thread(login, self.pbx, user)

        self.sessions = list(await asyncio.gather(*(session(u) for u in socket_users)))

    async def connect_sockets(self, count: int) -> None:
        while len(self.sockets) < count:
            console = SocketConsole(self.pbx, self.sessions[len(self.sockets)], self.callers)
            await console.open()
            self.sockets.append(console)

    async def drop_sockets(self, count: int) -> None:
        for console in self.sockets[-count:]:
            await console.close()
            self._closes_counted -= len(console.closes)
        del self.sockets[-count:]

    def _new_closes(self, pages: list[dict[str, Any]]) -> int:
        total = sum(len(c.closes) for c in self.sockets) + sum(p["closes"] for p in pages)
        new, self._closes_counted = total - self._closes_counted, total
        return new

    async def open_browsers(self) -> None:
        users = [f"console{i:02}" for i in range(CONSOLES - BROWSERS, CONSOLES)]
        await self.browsers.open(self.pbx, users)

    async def close(self) -> None:
        for console in self.sockets:
            await console.close()
        await self.browsers.close()
        for transport in self._transports:
            transport.close()

    def _caller(self) -> str:
        self._next_caller += 1
        return f"39{self._next_caller:08d}"

    async def warm_up(self) -> None:
        """One unmeasured call once every console is connected, just before a step.

        A console the server closed reconnects after 2 s, as the page does: a step must not
        start with one of them away, nor right after a quiet spell (until edb4cd4 the
        distributed mode closed a socket after 5 s without a message).
        """
        assert self.carrier is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline and any(c.reconnecting for c in self.sockets):
            await asyncio.sleep(0.1)
        for page in self.browsers.pages:
            await page.locator("#status-connection.ok").wait_for(timeout=20000)
        call = self.carrier.invite(self._caller())
        while loop.time() < deadline and not call.final:
            await asyncio.sleep(0.05)
        await self._drain([call], deadline)

    async def step(self, rate: int) -> Step:
        """`rate` calls/s for the step's seconds, then until every console saw them end."""
        assert self.carrier is not None
        await self.warm_up()
        for console in self.sockets:
            console.receipts = Receipts()
        await self.browsers.reset()
        before = cpu_sample(self.pbx)
        loop = asyncio.get_running_loop()
        calls: list[OutCall] = []
        start = loop.time()
        for i in range(int(rate * self.seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            calls.append(self.carrier.invite(self._caller()))
        deadline = loop.time() + HOLD_SECONDS + 15
        while loop.time() < deadline and not all(c.final for c in calls):
            await asyncio.sleep(0.05)
        # CPU over the offered load (the calls), not over the wait for late messages.
        after = cpu_sample(self.pbx)
        elapsed = loop.time() - start
        cpu = {name: 100 * (after[name] - before[name]) / elapsed for name in before}
        cpu["other"] = cpu.pop("machine") - sum(cpu.values())
        await self._drain(calls, deadline + 5)
        return self._result(rate, calls, await self.browsers.collect(), cpu)

    async def _drain(self, calls: list[OutCall], until: float) -> None:
        """Wait (up to `until`) for every socket console to have every call's end."""
        loop = asyncio.get_running_loop()
        by_caller = {c.caller for c in calls if c.cancel_sent}
        while loop.time() < until:
            ids = {i for i, caller in self.callers.items() if caller in by_caller}
            if len(ids) >= len(by_caller) and all(
                ids <= console.receipts.ended.keys() for console in self.sockets
            ):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the pages draw after the sockets got it

    def _result(
        self, rate: int, calls: list[OutCall], pages: list[dict[str, Any]], cpu: dict[str, float]
    ) -> Step:
        id_of = {caller: call_id for call_id, caller in self.callers.items()}
        socket_new, socket_ended, browser_new, browser_ended = [], [], [], []
        missing = 0
        ok = [c for c in calls if c.ringing and c.cancel_sent]
        for console in self.sockets:
            got = console.receipts
            for call in ok:
                seen = got.queued.get(call.caller)
                ended = got.ended.get(id_of.get(call.caller, ""))
                missing += (seen is None) + (ended is None)
                if seen is not None:
                    socket_new.append(1000 * (seen - call.invite_sent))
                if ended is not None:
                    socket_ended.append(1000 * (ended - call.cancel_sent))
        for page in pages:
            for call in ok:
                seen, gone = page["seen"].get(call.caller), page["gone"].get(call.caller)
                missing += (seen is None) + (gone is None)
                if seen is not None:
                    browser_new.append(seen - 1000 * call.invite_sent)
                if gone is not None:
                    browser_ended.append(gone - 1000 * call.cancel_sent)
        deliveries = sum(c.receipts.messages for c in self.sockets)
        deliveries += sum(int(p["messages"]) for p in pages)
        last = max((c.receipts.last for c in self.sockets), default=0.0)
        first = min((c.invite_sent for c in calls), default=0.0)
        return Step(
            consoles=len(self.sockets) + len(pages),
            rate=rate,
            calls=len(calls),
            failed=len(calls) - len(ok),
            socket_new=socket_new,
            socket_ended=socket_ended,
            browser_new=browser_new,
            browser_ended=browser_ended,
            missing=missing,
            gaps=sum(c.receipts.gaps for c in self.sockets),
            closes=self._new_closes(pages),
            deliveries=deliveries,
            seconds=max(0.0, last - first),
            cpu=cpu,
        )


def _p(values: list[float]) -> str:
    if not values:
        return "n/a"
    return "/".join(f"{percentile(values, q):.0f}" for q in (50, 95, 99))


def _log(step: Step) -> None:
    cpu = ", ".join(f"{k} {v:.0f}%" for k, v in step.cpu.items())
    print(
        f"    {step.rate:3} calls/s: new {_p(step.socket_new)}"
        f" ended {_p(step.socket_ended)} ms; pages new {_p(step.browser_new)} ended "
        f"{_p(step.browser_ended)} ms; {step.delivery_rate:.0f} deliveries/s; failed "
        f"{step.failed}/{step.calls}, missing {step.missing}, gaps {step.gaps}, server closes "
        f"{step.closes}; "
        f"{'held' if step.held else 'NOT HELD'}\n      CPU: {cpu}",
        flush=True,
    )


async def ramp(bench: Bench, rates: tuple[int, ...]) -> list[Step]:
    """The rates in turn, until one is hopeless (p95 over GIVE_UP_P95_MS). A step that does
    not hold while other processes were busy, or after sockets were closed, runs once more."""
    steps = []
    for rate in rates:
        step = await bench.step(rate)
        steps.append(step)
        _log(step)
        if not step.held and (step.noisy or step.closes):
            await asyncio.sleep(1)
            step = await bench.step(rate)
            step.retry = True
            steps.append(step)
            _log(step)
        every = step.socket_new + step.socket_ended
        p95 = percentile(every, 95) if every else float("inf")
        if p95 > GIVE_UP_P95_MS or step.failed:
            break
        await asyncio.sleep(1)
    return steps


@dataclass
class ModeResult:
    mode: str
    ramps: dict[str, list[Step]]  # ANCHOR, SOCKETS, MIXED
    code: str = ""  # the tree the servers ran, as the mode started


async def _measure(pbx: Pbx, rates: tuple[int, ...], seconds: float) -> ModeResult:
    """The three ramps on one server: 1 socket, 50 sockets, 47 sockets and 3 pages."""
    bench = Bench(pbx, seconds)
    result = ModeResult(pbx.mode, {})
    try:
        await bench.start()
        for name in (ANCHOR, SOCKETS, MIXED):
            if name == ANCHOR:
                await bench.connect_sockets(1)
            elif name == SOCKETS:
                await bench.connect_sockets(CONSOLES)
            else:
                await bench.drop_sockets(BROWSERS)
                await bench.open_browsers()
            print(f"  {pbx.mode}, {name} ({time.strftime('%H:%M:%S')}):", flush=True)
            result.ramps[name] = await ramp(bench, rates)
        codes = sorted({code for c in bench.sockets for code, _ in c.closes})
        if codes:
            print(f"  sockets closed by the server, close codes: {codes}", flush=True)
        return result
    finally:
        await bench.close()


def run(
    rates: tuple[int, ...] = RATES,
    seconds: float = STEP_SECONDS,
    modes: tuple[str, ...] = MODES,
    keep: bool = False,
) -> list[ModeResult]:
    """Both modes, each against a freshly seeded PBX; every process started is stopped.

    keep leaves the servers' logs (and SQLite database) in the work folder it prints.
    """
    raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-console-"))
    if keep:
        print(f"logs in {workdir}", flush=True)
    results = []
    try:
        for mode in modes:
            print(f"console latency, {mode}:", flush=True)
            code = describe_code()
            with started_pbx(mode, workdir) as pbx:
                loop = new_event_loop()
                try:
                    results.append(loop.run_until_complete(_measure(pbx, rates, seconds)))
                finally:
                    loop.close()
            results[-1].code = code
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


# --- the report --------------------------------------------------------------------------------


def _final(steps: list[Step]) -> list[Step]:
    """The last attempt at each rate, by rate."""
    return sorted({s.rate: s for s in steps}.values(), key=lambda s: s.rate)


def _best(steps: list[Step]) -> Step | None:
    """The highest rate held with every lower rate held too."""
    best = None
    for step in _final(steps):
        if not step.held:
            break
        best = step
    return best


def _at(steps: list[Step], rate: int) -> Step | None:
    return next((s for s in _final(steps) if s.rate == rate), None)


def _held(step: Step) -> str:
    said = "yes" if step.held else "no"
    if step.noisy:
        said += ", other processes busy"
    return said + (" (retry)" if step.retry else "")


def _cpu(step: Step) -> str:
    return ", ".join(f"{name} {value:.0f}" for name, value in step.cpu.items() if value >= 0.5)


def _vs_anchor(step: Step, anchor: list[Step]) -> str:
    """p95 of the new-call updates over the anchor's at the same rate."""
    one = _at(anchor, step.rate)
    if one is None or not one.socket_new or not step.socket_new:
        return "n/a"
    p_many, p_one = percentile(step.socket_new, 95), percentile(one.socket_new, 95)
    return f"{p_many:.0f} / {p_one:.0f} = {p_many / p_one:.1f}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _saturated(step: Step) -> str:
    """Which CPU, if any, ran out in a step."""
    web = max(step.cpu.get("serve", 0.0), step.cpu.get("worker", 0.0))
    busy = sum(step.cpu.values()) / 2
    if web >= 90:
        return f"the web process's one event loop ran out of its core ({_cpu(step)})"
    if busy >= 85:
        return f"the 2 cores ran out, {busy:.0f}% busy ({_cpu(step)})"
    return f"no CPU ran out: the 2 cores were {busy:.0f}% busy ({_cpu(step)})"


def _limits(result: ModeResult) -> list[str]:
    """What this run measured of a mode's limits: the fan-out's cost, what ran out."""
    anchor, sockets, mixed = (result.ramps.get(n, []) for n in (ANCHOR, SOCKETS, MIXED))
    lines = []
    many = _best(sockets)
    one = _at(anchor, many.rate) if many else None
    if many and one:
        extra = many.delivery_rate - one.delivery_rate
        serve = many.cpu.get("serve", 0.0) - one.cpu.get("serve", 0.0)
        if extra > 0:
            per = 10 * serve / extra  # % of a core per delivery/s -> ms per delivery
            lines.append(
                f"- {result.mode}: at {many.rate} calls/s, {CONSOLES - 1} more consoles cost the "
                f"web process (serve) {serve:.0f}% of a core for {extra:.0f} more deliveries/s: "
                f"{per:.2f} ms per delivery, {per * 3 * CONSOLES:.0f} ms per call for "
                f"{CONSOLES} consoles; the new-call p50 goes from "
                f"{percentile(one.socket_new, 50):.0f} to {percentile(many.socket_new, 50):.0f} ms."
            )
    if sockets:
        top = max(sockets, key=lambda s: s.delivery_rate)
        lines.append(
            f"- {result.mode}: the most deliveries/s measured, {top.delivery_rate:.0f} "
            f"({top.rate} calls/s to {CONSOLES} sockets), with the web process at "
            f"{top.cpu.get('serve', 0.0):.0f}% of a core and a new-call p95 of "
            f"{percentile(top.socket_new, 95):.0f} ms."
        )
    for name, steps in ((SOCKETS, sockets), (MIXED, mixed)):
        failed = next((s for s in _final(steps) if not s.held), None)
        if failed is not None:
            lines.append(
                f"- {result.mode}, {name}: at the first step not held, {failed.rate} calls/s "
                f"({failed.delivery_rate:.0f} deliveries/s), {_saturated(failed)}."
            )
    gaps = sum(s.gaps for steps in result.ramps.values() for s in steps)
    if gaps and result.mode == "embedded":
        lines.append(
            f"- {result.mode}: {gaps} messages lost past saturation: the in-memory channel "
            "layer keeps 100 messages per console and drops the rest (the console resyncs)."
        )
    if any(s.cpu.get("postgres", 0.0) > s.cpu.get("worker", 0.0) for s in anchor):
        top = max(anchor, key=lambda s: s.rate)
        lines.append(
            f"- {result.mode}: PostgreSQL took more CPU than the engine's worker ("
            f"{top.cpu.get('postgres', 0.0):.0f}% vs {top.cpu.get('worker', 0.0):.0f}% of a "
            f"core at {top.rate} calls/s, 1 console): with CENTRALINO_DB_CONN_MAX_AGE 0 Django "
            "opens a connection, a new backend process, for every request, task and record."
        )
    closes = sum(s.closes for steps in result.ramps.values() for s in steps)
    if closes:
        lines.append(
            f"- {result.mode}: the web process closed {closes} console sockets (the consoles "
            "reconnected after 2 s, as the page does; `--keep` leaves serve's log to say why). "
            "Until edb4cd4 a console quiet for 5 s lost its socket: redis-py's 5 s read timeout "
            "ended channels_redis's 5 s BZPOPMIN."
        )
    return lines


WHERE_THE_TIME_GOES = [
    "- Every console is a consumer of its own: each company event is copied into each "
    "console's channel, and each consumer encodes the JSON and writes the frame for itself. "
    "The 50 copies of an event go out one after the other on the web process's one event "
    "loop: the last console gets it tens of ms after the first (new-call p50, 1 console vs "
    "50), and the loop runs out of its core at the deliveries/s given below. (Channels' "
    "close_old_connections() hop to the sync thread before every message, about 0.15 ms, was "
    "most of a delivery's cost: the console's consumer skips it for stream messages, which "
    "touch no database; the earlier run of this section, before that, held 15-20 calls/s to "
    "50 sockets where this one holds 30.)",
    "- Distributed: the worker's group_send puts the 50 copies into Redis in one call, but "
    "channels_redis hands them to the web process one at a time (EVAL, BZPOPMIN, ZADD, and "
    "a ZPOPMIN of the backup queue for each, under one receive lock per process): the copies "
    "of a burst wait on each other's Redis round trips even while CPU is left.",
    "- Pages: the console draws a burst of messages once per frame and reloads today's "
    "counters at most every 2 s; the 3 Chromium pages still take most of a core here, on the "
    "same 2 cores as the server (in use they run on the operators' machines).",
]


def markdown(results: list[ModeResult], seconds: float = STEP_SECONDS) -> str:
    """The console latency section of RESULTS.md."""
    facts = machine_facts()
    versions = ", ".join(
        f"{p} {_version(p)}"
        for p in ("daphne", "channels", "channels_redis", "redis", "websockets")
    )
    lines = [
        HEADING,
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: nproc {facts['nproc']}, "
        f"{facts['cpu']}, {facts['os']}, loopback only; Python {facts['python']}; {versions}",
        *sorted({f"- code ({r.mode}): {r.code}" for r in results}),
        "- produced by `bench/console_latency.py` (also run by `make bench`)",
        "",
        f"Centralino started as users start it (`manage.py serve`; distributed: `serve` "
        "without an engine, the telephony Celery worker, PostgreSQL, Redis), seeded with the "
        f"demo and {CONSOLES - 1} more operators. A raw UDP UAC in the bench process is the "
        f"demo trunk's carrier: each call is an INVITE to the operator queue ({DID}) with its "
        f"own caller number, a CANCEL {HOLD_SECONDS:g} s after the 180, an ACK to the 487; "
        f"steps of {seconds:g} s at a fixed call rate. The consoles are WebSocket clients "
        "(websockets, one operator session each, all in the bench process) and Chromium "
        "pages of /console/ (Playwright). One clock: *new* = INVITE sent -> the call's "
        "`queued` update received (socket) or its row in #incoming-calls (page, "
        "MutationObserver); *ended* = CANCEL sent -> `call.ended` received or the row gone. "
        "Each console's receipt of each call is one sample. Deliveries/s = messages "
        "received by all consoles / (last receipt - first INVITE); a call makes 3 "
        "(`call.updated` routing and queued, `call.ended`). A step holds when each p95 (new, "
        f"ended; sockets, pages) is under {TARGET_P95_MS:.0f} ms and no console missed a "
        "message. Three ramps per server, in this order: the anchor, 1 socket (the engine "
        f"and the channel layer alone); {CONSOLES} sockets (what the consoles cost the "
        f"server); {CONSOLES - BROWSERS} sockets + {BROWSERS} pages (the target setup). A "
        f"ramp ends after a step over {GIVE_UP_P95_MS:.0f} ms; a step not held while other "
        f"processes took over {NOISY_PCT:.0f}% of a core, or after the server closed sockets, "
        "is run once more, and the best rate held is the highest with every lower rate held. CPU: % "
        "of one core over the calls of a step, per process, from /proc (postgres includes "
        "its ended backends); *other* is the rest of the machine's busy time. Everything, "
        "load generators and browsers included, shares the 2 cores, and other users' "
        "processes (*other*) come and go: between runs the best rate held moves by a step.",
        "",
        f"Target (issue 6): p95 < {TARGET_P95_MS:.0f} ms at {TARGET_DELIVERIES:,} deliveries/s "
        f"({TARGET_DELIVERIES / 3 / CONSOLES:.1f} calls/s to {CONSOLES} consoles).",
        "",
        "| mode | consoles | best rate held (calls/s) | deliveries/s there | target met "
        "| socket new p50/p95/p99 (ms) | socket ended | page new | page ended "
        "| new p95 vs 1 console |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        anchor = result.ramps.get(ANCHOR, [])
        for name, steps in result.ramps.items():
            best = _best(steps)
            if best is None:
                tried = ", ".join(str(s.rate) for s in steps)
                lines.append(f"| {result.mode} | {name} | none of {tried} | | no | | | | | |")
                continue
            met = "yes" if best.delivery_rate >= TARGET_DELIVERIES else "no"
            if name == ANCHOR:
                met = "n/a"
            lines.append(
                f"| {result.mode} | {name} | {best.rate} | {best.delivery_rate:.0f} | {met} | "
                f"{_p(best.socket_new)} | {_p(best.socket_ended)} | {_p(best.browser_new)} | "
                f"{_p(best.browser_ended)} | {_vs_anchor(best, anchor)} |"
            )
    lines += ["", "Where the time goes (from the code, at the versions above):", ""]
    lines += WHERE_THE_TIME_GOES
    lines += ["", "What this run measured of the limits:", ""]
    for result in results:
        lines += _limits(result)
    lines += [
        "",
        "Every step (latencies in ms, p50/p95/p99; closed: sockets the server closed since "
        "the step before):",
        "",
        "| mode | consoles | calls/s | socket new | socket ended | page new | page ended "
        "| deliveries/s | failed / missing / gaps / closed | held | CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        for name, steps in result.ramps.items():
            for step in steps:
                lines.append(
                    f"| {result.mode} | {name} | {step.rate} | {_p(step.socket_new)} | "
                    f"{_p(step.socket_ended)} | {_p(step.browser_new)} | "
                    f"{_p(step.browser_ended)} | {step.delivery_rate:.0f} | {step.failed} / "
                    f"{step.missing} / {step.gaps} / {step.closes} | "
                    f"{_held(step)} | {_cpu(step)} |"
                )
    return "\n".join(lines) + "\n"


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the finally blocks: every process goes


def main() -> None:
    """Run the ramps; a full run writes its section into RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"rates {QUICK_RATES}, short steps")
    parser.add_argument("--mode", choices=MODES, help="one mode only (default: both)")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs")
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    seconds = QUICK_STEP_SECONDS if args.quick else STEP_SECONDS
    modes = (args.mode,) if args.mode else MODES
    results = run(QUICK_RATES if args.quick else RATES, seconds, modes, args.keep)
    text = markdown(results, seconds)
    if not args.quick and not args.mode:
        RESULTS.write_text(replace_section(RESULTS.read_text(), HEADING, text))
    print(text)


if __name__ == "__main__":
    main()
