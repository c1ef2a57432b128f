"""`make soak`: the distributed mode under a steady call load for 30 minutes, watched for leaks.

Centralino runs as users deploy it: `manage.py serve` for the web (CENTRALINO_ENGINE=off), the
telephony Celery worker with the engine, PostgreSQL (a throwaway database) and Redis (database
13, emptied before and after). The demo is seeded and the soak's phones are provisioned with
`manage.py extension add`. The phones (bench/soak_phones.py) register every ~45 s with 60 s
expiries and call each other with RTP both ways: of every 8 calls, 4 plain (6 s), 2 held and
resumed (re-INVITE sendonly, music on hold checked, sendrecv) and 2 transferred (REFER blind:
B ends up talking to C). An operator console is on its WebSocket, its page reloaded every
15 s (each time a snapshot from the engine, through Redis), and a monitor asks /healthz
every 5 s.

The rate is 70% of the best rate held, measured first by a short ramp on a fresh PBX with the
same calls (a step holds with <= 0.1% failed and PDD p95 <= 500 ms; bench/RESULTS.md's call
set-up figure is the bare engine with 1 s calls, no media and no database: not this setup),
unless --rate gives it. A warm-up of a minute at that rate (past the phones' first refreshes)
and a drain come before the idle baseline. Every --sample-seconds, per process (web, telephony
worker): RSS, open files, threads, CPU; the engine's own counts (its NodeHeartbeat row, and its
status() through the `pbx.engine_status` task, whose result is forgotten); Redis keys; the rows
of the tables that grow. After the load the calls drain and the phones unregister.

It FAILS (exit 1) when a call failed, a phone saw an error, /healthz was not 200, the console
was disconnected, or a figure grows without bound: over the second half of the load a fitted
line's rise must stay within a tolerance (RSS: 10% + 10 MB), and once drained the open files,
threads, tasks, Redis keys and journal rows must be back at their idle level, the engine
without calls, and the call records exactly those the calls made. Runs of 30 minutes or more
write their section into bench/RESULTS.md.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate CALLS_PER_S] [--sample-seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import soak_phones as phones_mod  # noqa: E402
from bench.common import (  # noqa: E402
    BENCH,
    HOST,
    cpu_seconds,
    machine_facts,
    new_event_loop,
    percentile,
    raise_nofile,
    replace_section,
)
from bench.console_latency import Pbx, describe_code, login, throwaway_database  # noqa: E402
from tests.integration.peers.ports import free_port_range, free_tcp_port  # noqa: E402
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
HEADING = "## Soak"  # its own section of RESULTS.md, which `make bench` keeps
REDIS_URL = REDIS_TEST_URL.rsplit("/", 1)[0] + "/13"  # the soak's own (tests 15, consoles 14)
SHARE = 0.7  # of the best rate held
RAMP = (5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)
RAMP_STEP_SECONDS = 20.0
MAX_FAILED = 0.001  # a ramp step holds when at most 0.1 % of its calls fail (as call_setup)
# ... and its post-dial delay stays short: past it a queue builds up that a 20 s step is too
# short to see end in timeouts (the first soak at 70% of a ramp without it drowned).
PDD_LIMIT_MS = 500.0
PHONE_SECONDS_PER_CALL = 22.0  # phones x seconds each is busy (cool-down included), on average
FIRST_NUMBER = 50000
DRAIN_SECONDS = 90.0
RTP_PORTS = 2000  # the engine's range: about 2 per call in progress
HEALTH_EVERY = 5.0
RELOAD_SECONDS = 15.0  # the console's page reloaded (one operator of many, now and then)


# --- the PBX -----------------------------------------------------------------------------------


@dataclass
class Deployment:
    """Centralino in the distributed mode: its processes, database, node and phones."""

    pbx: Pbx
    database: str
    node: str
    env: dict[str, str]
    var: Path
    phones: list[phones_mod.Phone] = field(default_factory=list)

    def pid(self, name: str) -> int:
        return self.pbx.children[name].process.pid

    def provision(self, count: int) -> list[phones_mod.Phone]:
        """`manage.py extension add` until there are `count` phones, in one process (Django
        starts once); the new ones."""
        new = [
            phones_mod.Phone(str(FIRST_NUMBER + i), phones_mod.new_id()[:16])
            for i in range(len(self.phones), count)
        ]
        if not new:
            return []
        started = time.monotonic()
        listing = self.var / "phones.json"
        listing.write_text(json.dumps([[p.number, p.secret] for p in new]))
        script = (
            "import io, json\n"
            "from django.core.management import call_command\n"
            f"for number, secret in json.load(open({str(listing)!r})):\n"
            "    call_command('extension', 'add', number, '--name', f'Soak {number}',\n"
            "                 '--secret', secret, stdout=io.StringIO())\n"
        )
        manage(self.env, "shell", "-c", script)
        self.phones += new
        took = time.monotonic() - started
        print(f"  {len(new)} extensions added ({count} in all) in {took:.0f} s", flush=True)
        return new


def services_missing() -> str:
    """Why the distributed mode cannot run here ("" when PostgreSQL and Redis answer)."""
    import psycopg
    import redis

    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except Exception as error:
        return f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {error}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:
        return f"Redis is unreachable at {REDIS_URL}: {error}"
    return ""


def _empty_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).flushdb()


@contextlib.contextmanager
def deployed(workdir: Path) -> Iterator[Deployment]:
    """Seed and start the distributed mode; everything is stopped on the way out."""
    var = workdir / f"pbx-{int(time.time() * 1000)}"
    var.mkdir(parents=True)
    env = base_env(var)
    rtp = free_port_range(RTP_PORTS)
    pbx = Pbx("distributed", free_tcp_port(), int(env["CENTRALINO_SIP_PORT"]), 0, {})
    node = f"soak{os.getpid()}"
    env.update(
        CENTRALINO_HTTP_PORT=str(pbx.http_port),
        CENTRALINO_RTP_PORTS=f"{rtp}-{rtp + RTP_PORTS - 1}",
        REDIS_URL=REDIS_URL,
        CENTRALINO_NODE=node,
        CENTRALINO_ENGINE="off",
    )
    _empty_redis()
    with throwaway_database() as database, contextlib.ExitStack() as stack:
        stack.callback(_empty_redis)
        env["DATABASE_URL"] = database
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
        credentials = json.loads((var / "demo_credentials.json").read_text())
        pbx.passwords = {"alice": credentials["passwords"]["alice"]}
        deployment = Deployment(pbx, database, node, env, var)
        try:
            command = celery_worker(f"telephony.{node}", "-n", f"{node}@%h")
            worker = start_child([*command, "--without-heartbeat"], env, var / "worker.log")
            pbx.children["worker"] = worker
            _wait(worker, lambda: sip_options(pbx.sip_port) is not None, "telephony worker")
            serve = start_child([sys.executable, "manage.py", "serve"], env, var / "serve.log")
            pbx.children["web"] = serve
            _wait(serve, lambda: http_get(pbx.http_port, "/login/")[0] == 200, "web")
            yield deployment
        finally:
            for child in reversed(pbx.children.values()):
                if child.process.poll() is None:
                    child.stop(signal.SIGTERM, timeout=30)
                child.kill()


def _wait(child: Child, ready: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{child.output()[-3000:]}")
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{child.output()[-3000:]}")


# --- what is sampled ---------------------------------------------------------------------------

TABLES = ("stats_callrecord", "pbx_registration", "pbx_opendialog", "pbx_lineidle")
TABLES += ("pbx_nodeheartbeat",)


def process_figures(pid: int) -> dict[str, float]:
    """RSS (MB), open files, threads and CPU seconds of one process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
        "cpu_s": cpu_seconds(pid),
    }


def services_cpu() -> float:
    """CPU seconds of PostgreSQL (its ended backends included) and Redis so far: every
    instance on the machine, ours being the busy ones during a run."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            name = (entry / "comm").read_text().strip()
            if name in ("postgres", "postmaster", "redis-server"):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                # utime, stime, and for the postmaster its reaped children (one per connection)
                ticks = fields[11:15] if name != "redis-server" else fields[11:13]
                total += sum(int(v) for v in ticks) / os.sysconf("SC_CLK_TCK")
    return total


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all cores) so far."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks[:3]) + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Takes one Sample of a deployment: its processes, the engine, Redis, the tables."""

    def __init__(self, deployment: Deployment, farm: phones_mod.Farm) -> None:
        import psycopg
        import redis
        from celery import Celery

        self.deployment = deployment
        self.farm = farm
        self.db = psycopg.connect(deployment.database, autocommit=True)
        self.redis = redis.Redis.from_url(REDIS_URL)
        self.celery = Celery("soak", broker=REDIS_URL, backend=REDIS_URL)
        self.queue = f"telephony.{deployment.node}"
        self._cpu: dict[str, float] = {}
        self._at = time.monotonic()
        self._cpu_snapshot()

    def close(self) -> None:
        self.db.close()
        self.redis.close()
        self.celery.close()

    def _cpu_snapshot(self) -> dict[str, float]:
        now = {name: cpu_seconds(self.deployment.pid(name)) for name in ("web", "worker")}
        now["bench"] = cpu_seconds(os.getpid())
        now["services"] = services_cpu()
        now["machine"] = machine_busy()
        return now

    def engine_status(self) -> dict[str, Any]:
        """What the engine says of itself (pbx.engine_status); its result is not left behind."""
        result = self.celery.send_task("pbx.engine_status", queue=self.queue, expires=10)
        try:
            return dict(result.get(timeout=10))
        except Exception as error:
            return {"error": repr(error)}
        finally:
            result.forget()

    def rows(self) -> dict[str, int]:
        return {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in TABLES
        }

    def census(self) -> dict[str, int]:
        """Rows of every table of the database (start and end of the run)."""
        names = self.db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        ).fetchall()
        return {
            name: self.db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # type: ignore[index]
            for (name,) in names
        }

    def take(self, t: float, phase: str) -> Sample:
        """One sample (blocking: run it in a thread)."""
        figures: dict[str, float] = {}
        for name in ("web", "worker"):
            for key, value in process_figures(self.deployment.pid(name)).items():
                figures[f"{name}.{key}"] = value
        cpu, now = self._cpu_snapshot(), time.monotonic()
        span = max(now - self._at, 1e-6)
        ours = 0.0
        for name in ("web", "worker", "bench", "services"):
            used = cpu[name] - self._cpu.get(name, cpu[name])
            figures[f"{name}.cpu_pct"] = 100 * used / span
            ours += used
        machine = cpu["machine"] - self._cpu.get("machine", cpu["machine"])
        figures["other.cpu_pct"] = max(0.0, 100 * (machine - ours) / span)
        self._cpu, self._at = cpu, now
        beat = self.db.execute(
            "SELECT calls, registered_devices, extract(epoch FROM now() - seen_at) "
            "FROM pbx_nodeheartbeat WHERE node = %s",
            (self.deployment.node,),
        ).fetchone()
        if beat is not None:
            figures["heartbeat.calls"] = beat[0]
            figures["heartbeat.registered"] = beat[1]
            figures["heartbeat.age_s"] = float(beat[2])
        status = self.engine_status()
        for key in ("tasks", "calls", "subscriptions", "rtp_ports_in_use"):
            if isinstance(status.get(key), int):
                figures[f"engine.{key}"] = status[key]
        figures["redis.keys"] = int(self.redis.dbsize())
        for table, count in self.rows().items():
            figures[f"rows.{table}"] = count
        farm = self.farm
        figures["phones.calls"] = len(farm.calls)
        figures["phones.legs"] = len(farm.legs)
        pdd = farm.tally.take_pdd()
        figures["phones.pdd_p95_ms"] = 1000 * percentile(pdd, 95) if pdd else float("nan")
        lags, farm.clock.lags = farm.clock.lags, []
        figures["phones.clock_lag_p99_ms"] = 1000 * percentile(lags, 99) if lags else float("nan")
        return Sample(t, phase, figures, pdd, status.get("error", ""))


# --- the operator's console and the monitor -------------------------------------------------


class Watchers:
    """An operator console on its WebSocket, reloaded every RELOAD_SECONDS (each reload asks
    the engine for a snapshot, as a page does), and a monitor asking /healthz every 5 s."""

    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.messages = 0
        self.snapshots = 0
        self.closes: list[str] = []  # what closed the console but its own reloads
        self.health: dict[int, int] = {}
        self.unhealthy: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        session = await asyncio.to_thread(login, self.pbx, "alice")
        self._tasks = [
            asyncio.ensure_future(self._console(session)),
            asyncio.ensure_future(self._monitor()),
        ]

    async def _console(self, session: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        while not self._stopping:
            try:
                async with connect(
                    f"ws://{HOST}:{self.pbx.http_port}/ws/console/",
                    origin=self.pbx.url,  # type: ignore[arg-type]
                    additional_headers={"Cookie": f"sessionid={session}"},
                    open_timeout=30,
                ) as socket:
                    first = json.loads(await asyncio.wait_for(socket.recv(), 30))
                    if first.get("type") != "snapshot":
                        self.closes.append(f"no snapshot first: {str(first)[:200]}")
                    self.snapshots += 1
                    try:
                        await asyncio.wait_for(self._read(socket), RELOAD_SECONDS)
                    except TimeoutError:
                        continue  # a reload: leaving the block closes the socket
                    if not self._stopping:
                        self.closes.append(f"closed by the server ({socket.close_code})")
            except (OSError, ConnectionClosed, TimeoutError) as error:
                if not self._stopping:
                    self.closes.append(f"{type(error).__name__}: {error}")
            if not self._stopping:
                await asyncio.sleep(2)  # as console.js does

    async def _read(self, socket: Any) -> None:
        async for _ in socket:
            self.messages += 1

    async def _monitor(self) -> None:
        while not self._stopping:
            try:
                status, body = await asyncio.to_thread(http_get, self.pbx.http_port, "/healthz")
            except OSError as error:
                status, body = 0, str(error).encode()
            self.health[status] = self.health.get(status, 0) + 1
            if status != 200 and len(self.unhealthy) < 10:
                self.unhealthy.append(f"{status}: {body[:200].decode(errors='replace')}")
            await asyncio.sleep(HEALTH_EVERY)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- load ------------------------------------------------------------------------------------


async def offer_load(
    farm: phones_mod.Farm, rate: float, seconds: float, every: float = 0.0, sample: Any = None
) -> float:
    """Place `rate` calls/s for `seconds` (sampling every `every` s); the rate achieved."""
    caller = phones_mod.Caller(farm)
    loop = asyncio.get_running_loop()
    start = loop.time()
    placed = 0
    next_sample = start + every if every else float("inf")
    sampling: asyncio.Task[None] | None = None
    while (now := loop.time()) < start + seconds:
        due = int((now - start) * rate) + 1
        while placed < due:
            caller.place()
            placed += 1
        if now >= next_sample and (sampling is None or sampling.done()):
            sampling = asyncio.ensure_future(sample(now - start))
            next_sample += every
        await asyncio.sleep(min(1 / rate, 0.05))
    if sampling is not None:
        await sampling
    return placed / seconds


async def drain(farm: phones_mod.Farm, sampler: Sampler, timeout: float = DRAIN_SECONDS) -> bool:
    """Wait until the phones' calls ended, the engine has none and the journal is empty."""
    deadline = time.monotonic() + timeout
    while farm.calls and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(sampler.rows)
        beat = await asyncio.to_thread(
            lambda: sampler.db.execute(
                "SELECT calls FROM pbx_nodeheartbeat WHERE node = %s", (sampler.deployment.node,)
            ).fetchone()
        )
        if rows["pbx_opendialog"] == 0 and beat is not None and beat[0] == 0:
            await asyncio.sleep(3)  # one more heartbeat, the writers' last rows
            return True
        await asyncio.sleep(1)
    return False


@dataclass
class Step:
    rate: int
    placed: int
    failed: int
    achieved: float
    pdd_p95_ms: float
    no_idle_phone: int
    reasons: str

    @property
    def held(self) -> bool:
        ok = self.placed > 0 and self.failed <= MAX_FAILED * self.placed
        ok = ok and self.pdd_p95_ms <= PDD_LIMIT_MS
        return ok and self.no_idle_phone == 0 and self.achieved >= 0.9 * self.rate


def phones_for(rate: float) -> int:
    """Enough phones that each call finds idle ones at `rate`, twice over."""
    return int(2 * rate * PHONE_SECONDS_PER_CALL) + 40


async def calibrate(workdir: Path) -> list[Step]:
    """The ramp: RAMP_STEP_SECONDS at each rate until one does not hold (fresh PBX)."""
    steps: list[Step] = []
    with deployed(workdir) as deployment:
        farm = await phones_mod.Farm.start(deployment.pbx.sip_port)
        sampler = Sampler(deployment, farm)
        try:
            for rate in RAMP:
                # The office grows with the rate: as many phones as the soak at this rate.
                await farm.add(await asyncio.to_thread(deployment.provision, phones_for(rate)))
                before = (sum(farm.tally.placed.values()), farm.tally.failures)
                idle_before = farm.tally.no_idle_phone
                farm.tally.take_pdd()
                achieved = await offer_load(farm, rate, RAMP_STEP_SECONDS)
                await drain(farm, sampler)
                pdd = farm.tally.take_pdd()
                step = Step(
                    rate,
                    sum(farm.tally.placed.values()) - before[0],
                    farm.tally.failures - before[1],
                    achieved,
                    1000 * percentile(pdd, 95) if pdd else float("nan"),
                    farm.tally.no_idle_phone - idle_before,
                    ", ".join(f"{r} x{n}" for r, n in farm.tally.failed.most_common(3)),
                )
                steps.append(step)
                print(
                    f"  ramp {rate:4}/s: {step.placed} calls, {step.failed} failed, PDD p95 "
                    f"{step.pdd_p95_ms:.0f} ms {'held' if step.held else 'NOT HELD'}"
                    + (f" ({step.reasons})" if step.reasons else "")
                    + (f", no idle phone x{step.no_idle_phone}" if step.no_idle_phone else ""),
                    flush=True,
                )
                if not step.held:
                    break
        finally:
            await farm.stop()
            sampler.close()
    return steps


@dataclass
class Run:
    """Everything a soak run produced, for the verdict and the report."""

    minutes: float
    rate: float
    rate_source: str
    ramp: list[Step]
    phones: int
    samples: list[Sample] = field(default_factory=list)
    tally: phones_mod.Tally | None = None
    census_before: dict[str, int] = field(default_factory=dict)
    census_after: dict[str, int] = field(default_factory=dict)
    records_before: int = 0
    unregistered_rows: int = -1
    unregister_failures: int = 0
    drained: bool = False
    watchers: Watchers | None = None
    pdd: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def soak(workdir: Path, minutes: float, rate: float, every: float, run: Run) -> None:
    """Warm up, take the idle baseline, hold the load, drain, unregister: samples into `run`."""
    run.phones = phones_for(rate)
    with deployed(workdir) as deployment:
        farm = await phones_mod.Farm.start(deployment.pbx.sip_port)
        sampler = Sampler(deployment, farm)
        watchers = Watchers(deployment.pbx)
        run.watchers, run.tally = watchers, farm.tally
        t0 = time.monotonic()

        async def sample(t: float, phase: str) -> None:
            taken = await asyncio.to_thread(sampler.take, t, phase)
            run.samples.append(taken)
            run.pdd.extend(taken.pdd)
            print("  " + taken.line(), flush=True)

        try:
            await farm.add(deployment.provision(run.phones))
            await watchers.start()
            # Past the phones' first refreshes: the idle baseline has their steady REGISTERs.
            warm_up = phones_mod.REFRESH[1] + 10
            print(f"  warm-up: {warm_up:.0f} s at {rate:g} calls/s", flush=True)
            await offer_load(farm, rate, warm_up)
            await drain(farm, sampler)
            farm.tally.take_pdd()
            for _ in range(3):
                await sample(time.monotonic() - t0, "idle")
                await asyncio.sleep(2)
            run.census_before = await asyncio.to_thread(sampler.census)
            run.records_before = run.census_before["stats_callrecord"]
            records_at_start = farm.tally.records
            print(f"  load: {minutes:g} min at {rate:g} calls/s", flush=True)
            started = time.monotonic()
            await offer_load(
                farm,
                rate,
                minutes * 60,
                every,
                lambda t: sample(time.monotonic() - t0, "load"),
            )
            run.seconds = time.monotonic() - started
            run.drained = await drain(farm, sampler)
            for _ in range(3):
                await sample(time.monotonic() - t0, "drained")
                await asyncio.sleep(2)
            farm.tally.records -= records_at_start  # the warm-up's records are in the baseline
            run.census_after = await asyncio.to_thread(sampler.census)
            run.unregister_failures = await farm.unregister_all()
            await asyncio.sleep(3)
            run.unregistered_rows = (await asyncio.to_thread(sampler.rows))["pbx_registration"]
        finally:
            await watchers.stop()
            await farm.stop()
            sampler.close()


# --- the verdict -----------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the phones registered
    phase: str  # idle (before the load), load, drained (after it)
    figures: dict[str, float]
    pdd: list[float]
    error: str = ""  # the engine_status task did not answer

    def line(self) -> str:
        f = self.figures.get
        return (
            f"{self.t:6.0f}s {self.phase:7} worker {f('worker.rss_mb', 0):.0f} MB "
            f"{f('worker.fds', 0):.0f} fds {f('worker.threads', 0):.0f} thr "
            f"{f('worker.cpu_pct', 0):.0f}% | web {f('web.rss_mb', 0):.0f} MB "
            f"{f('web.fds', 0):.0f} fds {f('web.cpu_pct', 0):.0f}% | engine calls "
            f"{f('engine.calls', -1):.0f} tasks {f('engine.tasks', -1):.0f} | journal "
            f"{f('rows.pbx_opendialog', 0):.0f} records {f('rows.stats_callrecord', 0):.0f} "
            f"redis {f('redis.keys', 0):.0f} | PDD p95 {f('phones.pdd_p95_ms', 0):.0f} ms"
            + (f" | engine_status: {self.error}" if self.error else "")
        )


@dataclass(frozen=True)
class Rule:
    """How a figure is judged: its rise over the load's second half (fitted line) may not
    pass `share` of its level + `slack`; `back` = once drained it must be back at its idle
    level (+ slack), `zero` = at 0."""

    key: str
    label: str
    share: float = 0.0
    slack: float = 0.0
    back: bool = False
    zero: bool = False


RULES = (
    Rule("worker.rss_mb", "worker RSS (MB)", 0.10, 10.0),
    Rule("web.rss_mb", "web RSS (MB)", 0.10, 10.0),
    Rule("worker.fds", "worker open files", 0.10, 10.0, back=True),
    Rule("web.fds", "web open files", 0.10, 10.0, back=True),
    Rule("worker.threads", "worker threads", 0.10, 3.0, back=True),
    Rule("web.threads", "web threads", 0.10, 3.0, back=True),
    Rule("engine.tasks", "engine tasks", 0.10, 20.0, back=True),
    Rule("engine.calls", "engine calls", 0.10, 20.0, zero=True),
    Rule("heartbeat.calls", "calls (heartbeat row)", 0.10, 20.0, zero=True),
    Rule("engine.rtp_ports_in_use", "RTP ports in use", 0.10, 40.0, zero=True),
    Rule("rows.pbx_opendialog", "journal rows (pbx_opendialog)", 0.10, 40.0, zero=True),
    Rule("redis.keys", "Redis keys (DBSIZE)", 0.10, 10.0, back=True),
)
SHOWN = (  # sampled and shown, judged elsewhere or not at all
    ("rows.stats_callrecord", "call records (stats_callrecord)"),
    ("rows.pbx_registration", "registrations (pbx_registration)"),
    ("heartbeat.registered", "registered devices (heartbeat)"),
    ("rows.pbx_lineidle", "pbx_lineidle rows"),
    ("rows.pbx_nodeheartbeat", "pbx_nodeheartbeat rows"),
    ("engine.subscriptions", "engine subscriptions"),
    ("heartbeat.age_s", "heartbeat age (s)"),
    ("worker.cpu_pct", "worker CPU (% of a core)"),
    ("web.cpu_pct", "web CPU (% of a core)"),
    ("bench.cpu_pct", "phones (this process) CPU"),
    ("services.cpu_pct", "PostgreSQL + Redis CPU"),
    ("other.cpu_pct", "other processes CPU"),
    ("phones.calls", "calls in progress (phones)"),
    ("phones.pdd_p95_ms", "PDD p95 (ms)"),
    ("phones.clock_lag_p99_ms", "phones' 20 ms clock lag p99 (ms)"),
)


@dataclass
class Check:
    key: str
    label: str
    values: dict[str, float]  # idle, start, middle, end, max, drained
    rise: float | None = None  # fitted rise over the load's second half
    limit: float | None = None
    verdict: str = ""  # "ok", "GROWS", "NOT BACK" ... or "" (not judged)


def _series(samples: list[Sample], phase: str, key: str) -> list[tuple[float, float]]:
    return [
        (s.t, s.figures[key])
        for s in samples
        if s.phase == phase and key in s.figures and s.figures[key] == s.figures[key]
    ]


def fitted_rise(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(rise, level at the start) of the least-squares line over the second half of
    `points`: the line's value at the last sample minus its value at the half's first."""
    if len(points) < 4:
        return None
    middle = (points[0][0] + points[-1][0]) / 2
    half = [(t, v) for t, v in points if t >= middle]
    if len(half) < 3:
        return None
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_v = sum(v for _, v in half) / n
    spread = sum((t - mean_t) ** 2 for t, _ in half)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in half) / spread if spread else 0.0
    start = mean_v + slope * (half[0][0] - mean_t)
    return slope * (half[-1][0] - half[0][0]), start


def _check(samples: list[Sample], key: str, label: str, rule: Rule | None) -> Check | None:
    load = _series(samples, "load", key)
    if not load:
        return None
    idle = [v for _, v in _series(samples, "idle", key)]
    drained = [v for _, v in _series(samples, "drained", key)]
    values = {
        "idle": max(idle) if idle else float("nan"),
        "start": load[0][1],
        "middle": load[len(load) // 2][1],
        "end": load[-1][1],
        "max": max(v for _, v in load),
        "drained": max(drained) if drained else float("nan"),
    }
    check = Check(key, label, values)
    if rule is None:
        return check
    verdicts = []
    fit = fitted_rise(load)
    if fit is not None:
        check.rise, level = fit
        check.limit = rule.share * max(level, 0.0) + rule.slack
        if check.rise > check.limit:
            verdicts.append("GROWS")
    if rule.zero and drained and values["drained"] != 0:
        verdicts.append("NOT 0 DRAINED")
    if rule.back and drained and idle and values["drained"] > values["idle"] + rule.slack:
        verdicts.append("NOT BACK")
    check.verdict = ", ".join(verdicts) or "ok"
    return check


def judge(run: Run) -> tuple[list[str], list[Check]]:
    """(the problems, which fail the run; the figures' checks, for the table)."""
    samples, tally, problems = run.samples, run.tally, []
    checks = [c for r in RULES if (c := _check(samples, r.key, r.label, r)) is not None]
    checks += [c for k, label in SHOWN if (c := _check(samples, k, label, None)) is not None]
    for check in checks:
        if check.verdict not in ("", "ok"):
            problems.append(
                f"{check.label}: {check.verdict} (second half rise {check.rise or 0:+.1f}, "
                f"limit {check.limit or 0:.1f}; idle {check.values['idle']:.0f}, "
                f"drained {check.values['drained']:.0f})"
            )
    if tally is None or not samples:
        return [*problems, "the soak did not run to its end"], checks
    if tally.failures:
        reasons = ", ".join(f"{r} x{n}" for r, n in tally.failed.most_common())
        problems.append(f"{tally.failures} calls failed: {reasons}")
    finished = sum(tally.ok.values()) + tally.failures
    if finished != sum(tally.placed.values()):
        problems.append(f"{sum(tally.placed.values()) - finished} calls never finished")
    if tally.no_idle_phone:
        problems.append(f"{tally.no_idle_phone} calls not placed: no idle phone (the load)")
    if tally.registration_errors:
        problems.append(f"registrations failed: {dict(tally.registration_errors)}")
    if tally.unexpected:
        problems.append(f"the phones got unexpected messages: {dict(tally.unexpected)}")
    errors = [s.error for s in samples if s.error]
    if errors:
        problems.append(f"engine_status did not answer {len(errors)} times: {errors[0]}")
    if not run.drained:
        problems.append(f"calls did not drain within {DRAIN_SECONDS:.0f} s after the load")
    expected = run.records_before + tally.records
    records = [s.figures.get("rows.stats_callrecord") for s in samples if s.phase == "drained"]
    # A failed call leaves fewer records (a transfer that never happened): exact only when none.
    if records and records[-1] != expected and not tally.failures:
        problems.append(
            f"call records: {records[-1]:.0f} once drained, expected {expected} "
            f"({run.records_before} before the load + {tally.records} for its calls)"
        )
    registrations = [v for _, v in _series(samples, "load", "rows.pbx_registration")]
    if registrations and (max(registrations) > run.phones or min(registrations) < run.phones):
        problems.append(
            f"registration rows went {min(registrations):.0f}..{max(registrations):.0f} "
            f"for {run.phones} phones"
        )
    if run.unregistered_rows != 0 or run.unregister_failures:
        problems.append(
            f"after every phone unregistered: {run.unregistered_rows} registration rows, "
            f"{run.unregister_failures} failures"
        )
    lineidle = [v for _, v in _series(samples, "drained", "rows.pbx_lineidle")]
    if lineidle and lineidle[-1] > run.phones + 10:
        problems.append(f"pbx_lineidle has {lineidle[-1]:.0f} rows for {run.phones} phones")
    beats = [v for _, v in _series(samples, "load", "rows.pbx_nodeheartbeat")]
    if beats and max(beats) != 1:
        problems.append(f"pbx_nodeheartbeat has {max(beats):.0f} rows for one node")
    watchers = run.watchers
    if watchers is not None:
        if watchers.closes:
            problems.append(
                f"the console was disconnected {len(watchers.closes)} times: {watchers.closes[0]}"
            )
        if watchers.unhealthy:
            problems.append(f"/healthz answered {watchers.health}: {watchers.unhealthy[0]}")
    return problems, checks


def _n(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}f}"


def table(run: Run, checks: list[Check]) -> str:
    """The figures as a Markdown table: idle, load start/middle/end/max, drained, verdict."""
    lines = [
        "| figure | idle | load start | middle | end | max | drained | rise, 2nd half "
        "(limit) | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        v = c.values
        digits = 1 if c.key.endswith(("rss_mb", "age_s", "lag_p99_ms")) else 0
        rise = f"{c.rise:+.1f} ({c.limit:.1f})" if c.rise is not None and c.limit else "-"
        cells = [_n(v[k], digits) for k in ("idle", "start", "middle", "end", "max", "drained")]
        lines.append(f"| {c.label} | " + " | ".join(cells) + f" | {rise} | {c.verdict or '-'} |")
    return "\n".join(lines)


def markdown(
    run: Run,
    checks: list[Check],
    problems: list[str],
    started: datetime,
    command: str,
    facts: dict[str, str],
    code: str,
) -> str:
    """The Soak section of RESULTS.md."""
    tally = run.tally or phones_mod.Tally()
    placed = sum(tally.placed.values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(tally.placed.items()))
    pdd = [1000 * v for v in run.pdd]
    watchers = run.watchers
    lines = [
        HEADING,
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC; command: `{command}`; code: {code}",
        f"- machine: nproc {facts['nproc']}, {facts['cpu']}, {facts['os']}, loopback only; "
        f"Python {facts['python']}, event loop {facts['loop']}",
        f"- load: {run.seconds / 60:.1f} min at {run.rate:g} calls/s ({run.rate_source}), "
        f"after a warm-up and before a drain; {run.phones} phones registering every ~45 s "
        f"(60 s expiry)",
        "- produced by `make soak` (bench/soak.py); a run of 30 minutes or more writes this",
        "",
        "Centralino in the distributed mode as users deploy it: `manage.py serve` "
        "(CENTRALINO_ENGINE=off), the telephony Celery worker, PostgreSQL (a throwaway "
        "database) and Redis; the demo seeded, the phones added with `manage.py extension "
        "add`. The phones (bench/soak_phones.py, Python on the same 2 cores) share one SIP "
        "socket, answer after 0.5 s of ringing and send G.711 RTP every 20 ms both ways. Of "
        "every 8 calls: 4 plain (6 s), 2 held and resumed (re-INVITE sendonly, music on hold "
        "checked, sendrecv; 2 s each part), 2 transferred (A calls B, REFER blind to C, the "
        "final NOTIFY must say 200, B and C talk 2 s). A call fails on any unexpected "
        "answer, a leg that got under 90% of the RTP its party sent, a missing BYE. An "
        f"operator console is on its WebSocket, its page reloaded every {RELOAD_SECONDS:.0f} s "
        "(a snapshot from the engine each time); a monitor asks /healthz every 5 s. The "
        "rate is 70% of the best held by a ramp of "
        f"{RAMP_STEP_SECONDS:.0f} s steps of these same calls on a fresh PBX, with as many "
        "phones as a soak at each rate (a step holds with <= 0.1% of its calls failed, as "
        f"in the call set-up benchmark, and PDD p95 <= {PDD_LIMIT_MS:.0f} ms: beyond it a "
        "queue builds up that a short step does not see end in timeouts). The call set-up "
        "section's best rate is the bare engine with 1 s calls, no media and no database: "
        "it does not carry over. *Other processes*: the rest of the machine's busy time, "
        "other users' jobs included.",
        "",
    ]
    if run.ramp:
        lines += [
            "| ramp step (calls/s) | calls | failed | PDD p95 (ms) | held |",
            "|---|---|---|---|---|",
        ]
        for s in run.ramp:
            reasons = f" ({s.reasons})" if s.reasons else ""
            lines.append(
                f"| {s.rate} | {s.placed} | {s.failed}{reasons} | {_n(s.pdd_p95_ms)} | "
                f"{'yes' if s.held else 'no'} |"
            )
        lines.append("")
    lines += [
        f"Calls: {placed} placed ({kinds}), {sum(tally.ok.values())} ok, {tally.failures} "
        f"failed; PDD (INVITE -> 180) p50/p95/max {_n(percentile(pdd, 50))}/"
        f"{_n(percentile(pdd, 95))}/{_n(max(pdd) if pdd else None)} ms; RTP packets "
        f"sent {tally.rtp_sent}, received {tally.rtp_received}; registrations "
        f"{tally.registered} + {tally.refreshed} refreshes, "
        f"{sum(tally.registration_errors.values())} failed; console messages "
        f"{watchers.messages if watchers else 0}, snapshots (reloads) "
        f"{watchers.snapshots if watchers else 0}, disconnections "
        f"{len(watchers.closes) if watchers else 0}; /healthz answers "
        f"{watchers.health if watchers else {}}.",
        "",
        "Samples every few seconds; *rise, 2nd half*: the least-squares line over the second "
        "half of the load, its end minus its start, against the limit (10% of the level + a "
        "slack: 10 MB, 10 files or keys, 3 threads, 20 tasks); *drained*: after the load, "
        "calls ended; open files, threads, tasks and Redis keys must be back at their idle "
        "level, calls and journal rows at 0.",
        "",
        table(run, checks),
        "",
    ]
    changed = {
        name: (run.census_before.get(name, 0), count)
        for name, count in run.census_after.items()
        if count != run.census_before.get(name, 0)
    }
    if changed:
        lines.append(
            "Tables whose rows changed over the load (before -> drained): "
            + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in sorted(changed.items()))
            + f"; calls made: {tally.records} call records expected."
        )
        lines.append("")
    verdict = "PASSED" if not problems else "FAILED: " + "; ".join(problems)
    lines.append(f"Verdict: **{verdict}**")
    return "\n".join(lines) + "\n"


def _exit_on_signal(signum: int, _frame: object) -> None:
    print(f"\nsoak: stopped by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)  # unwinds the finally blocks: every process goes


def _run(loop: asyncio.AbstractEventLoop, coroutine: Any) -> Any:
    """Run `coroutine` on `loop`; interrupted (a signal, Ctrl-C), let it clean up first."""
    task = loop.create_task(coroutine)
    try:
        return loop.run_until_complete(task)
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        raise


def main() -> None:
    """Run the soak; print the samples and the verdict; exit 1 when it fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="load duration (default 30)")
    parser.add_argument("--rate", type=float, help="calls/s (default: 70%% of a ramp's best)")
    parser.add_argument("--sample-seconds", type=float, help="default: 10, or 5 under 10 min")
    parser.add_argument("--keep", action="store_true", help="keep the logs of the processes")
    args = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # started with nohup: stay so
            signal.signal(sig, _exit_on_signal)
    missing = services_missing()
    if missing:
        print(f"\n!!! SKIPPED: the soak needs the distributed mode. {missing}", file=sys.stderr)
        return
    raise_nofile()
    every = args.sample_seconds or (10.0 if args.minutes >= 10 else 5.0)
    command = "make soak" + (f" SOAK_MINUTES={args.minutes:g}" if args.minutes != 30 else "")
    started = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        ramp: list[Step] = []
        if args.rate:
            rate, source = args.rate, "given (--rate)"
        else:
            print("ramp (fresh PBX, the soak's calls):", flush=True)
            ramp = _run(loop, calibrate(workdir))
            best = max((s.rate for s in ramp if s.held), default=0)
            if not best:
                raise SystemExit("the ramp held no rate: see its lines above")
            rate, source = round(SHARE * best, 1), f"70% of {best} calls/s, the ramp's best held"
        print(f"soak: {args.minutes:g} min at {rate:g} calls/s ({source})", flush=True)
        run = Run(args.minutes, rate, source, ramp, 0)
        _run(loop, soak(workdir, args.minutes, rate, every, run))
    finally:
        loop.close()
        if args.keep:
            print(f"logs kept in {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    problems, checks = judge(run)
    text = markdown(run, checks, problems, started, command, machine_facts(), describe_code())
    print("\n" + text)
    if args.minutes >= 30:
        RESULTS.write_text(replace_section(RESULTS.read_text(), HEADING, text))
        print(f"written to bench/RESULTS.md ({HEADING})")
    if problems:
        print("\nSOAK FAILED:\n" + "\n".join(f"- {p}" for p in problems))
        raise SystemExit(1)
    print("\nSOAK PASSED")


if __name__ == "__main__":
    main()
