"""Where the engine lives in a process, and the telephony worker that hosts it.

A process holds at most one engine and knows the loop it runs on: `manage.py serve` attaches the
engine that shares Daphne's loop; a Celery worker consuming a ``telephony.<node>`` queue starts
one in a dedicated thread with its own loop (uvloop when installed) and stops it at shutdown.
Code running in other threads (Celery tasks, sync views) reaches it with `call_engine`, and
sends it call commands with `execute`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from celery import signals

from pbx import connectivity, node_lock

if TYPE_CHECKING:
    from pbx.engine.commands import Command, Done
    from pbx.engine.runtime import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")
TELEPHONY_QUEUE_PREFIX = "telephony."
# The tasks of pbx/tasks.py that only a telephony worker can run: they talk to its engine.
TELEPHONY_TASKS = frozenset(
    {
        "pbx.console_snapshot",
        "pbx.console_command",
        "pbx.engine_status",
        "pbx.blocked_sources",
        "pbx.unblock_source",
        "pbx.mailbox_changed",
    }
)


@dataclass(frozen=True)
class AttachedEngine:
    engine: Engine
    loop: asyncio.AbstractEventLoop


_attached: AttachedEngine | None = None
_host: EngineThread | None = None
_node_lock: node_lock.NodeLock | None = None


def attach(engine: Engine, loop: asyncio.AbstractEventLoop) -> None:
    """Make `engine`, running on `loop`, the engine of this process."""
    global _attached
    _attached = AttachedEngine(engine, loop)


def detach() -> None:
    """Forget the engine of this process (it is stopping)."""
    global _attached
    _attached = None


def attached() -> AttachedEngine | None:
    """The engine of this process and its loop, or None when it runs elsewhere."""
    return _attached


def telephony_queue(node: str | None = None) -> str:
    """The Celery queue of a telephony node (this node by default)."""
    from django.conf import settings

    return f"{TELEPHONY_QUEUE_PREFIX}{node or settings.CENTRALINO_NODE}"


def route_task(name: str, *args: Any, **kwargs: Any) -> dict[str, str] | None:
    """Celery router (settings.CELERY_TASK_ROUTES): a telephony task that names no queue goes to
    this node's; every other task to Celery's default queue."""
    return {"queue": telephony_queue()} if name in TELEPHONY_TASKS else None


def call_engine(work: Callable[[Engine], Awaitable[T]], timeout: float = 5.0) -> T:
    """Run `work(engine)` on the engine's loop from another thread and return its result.

    Raises RuntimeError when this process has no engine, or when called from the engine's own
    loop (blocking there would freeze every call: await the coroutine instead).
    """
    current = _attached
    if current is None:
        raise RuntimeError("No telephony engine runs in this process.")
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is current.loop:
        raise RuntimeError("call_engine() would block the engine's own loop: await instead.")
    future = asyncio.run_coroutine_threadsafe(_invoke(work, current.engine), current.loop)
    return future.result(timeout)


async def _invoke(work: Callable[[Engine], Awaitable[T]], engine: Engine) -> T:
    return await work(engine)


def execute(command: Command, timeout: float = 5.0) -> Done:
    """Carry out a call command (pbx/engine/commands.py) on this process's engine.

    Raises OperationError (its `code` says why: `no_such_call`, `not_answered`...), or
    RuntimeError when this process has no engine.
    """

    async def run(engine: Engine) -> Done:
        return await engine.execute(command)

    return call_engine(run, timeout)


async def describe(engine: Engine) -> dict[str, Any]:
    """The engine's status as plain JSON-able data (run it on the engine's loop)."""
    from django.conf import settings

    status: dict[str, Any] = {
        "node": settings.CENTRALINO_NODE,
        "running": True,
        "sip_port": engine.sip_port,
    }
    # The engine may report more (registrations, calls); use it when it does.
    extra = getattr(engine, "status", None)
    if callable(extra):
        result = extra()
        if inspect.isawaitable(result):
            result = await result
        status.update(result)
    return status


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class EngineThread:
    """An engine running on its own asyncio loop in a dedicated daemon thread."""

    def __init__(self, factory: Callable[[], Engine]) -> None:
        self._factory = factory
        self.loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name="telephony-engine", daemon=True)
        self.engine: Engine | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def start(self, timeout: float = 30.0) -> Engine:
        """Start the loop thread, build and start the engine there; return when it serves."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._build_and_start(), self.loop)
        try:
            self.engine = future.result(timeout)
        except BaseException:
            self._stop_loop()
            raise
        attach(self.engine, self.loop)
        return self.engine

    async def _build_and_start(self) -> Engine:
        # Built on its own loop so that anything the engine creates binds to that loop.
        from pbx.runtime import start_engine

        engine = self._factory()
        await start_engine(engine)
        return engine

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the engine (hanging up its calls), then the loop and the thread."""
        detach()
        if self.engine is not None:
            from pbx.runtime import stop_engine

            future = asyncio.run_coroutine_threadsafe(stop_engine(self.engine), self.loop)
            try:
                future.result(timeout)
            except Exception:
                log.exception("The engine did not stop cleanly")
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def consumes_telephony_queue(queue_names: Iterable[str]) -> bool:
    """Whether a worker consuming these queues is a telephony worker."""
    return any(name.startswith(TELEPHONY_QUEUE_PREFIX) for name in queue_names)


@signals.worker_init.connect
def _start_engine_in_worker(sender: Any = None, **kwargs: Any) -> None:
    """Check the database and Redis (every worker), then start the engine when this worker
    consumes a telephony queue (not in ordinary workers)."""
    global _host, _node_lock
    queues = list(sender.app.amqp.queues.consume_from or {})
    import django

    django.setup()
    from django.conf import settings

    # A wrong DATABASE_URL or REDIS_URL: one line saying which, and an exit the supervisor
    # sees (Celery would only log what a signal handler raises, with its traceback, and
    # serve on without the engine, or retry a broker that is not there for ever).
    problems = connectivity.start_up_problems()
    if problems:
        log.error("This worker exits: %s", "; ".join(problems))
        raise SystemExit(1)
    if not consumes_telephony_queue(queues):
        return

    from pbx.runtime import build_engine

    if telephony_queue() not in queues:
        log.warning(
            "This worker consumes %s but CENTRALINO_NODE is %r: commands for this node go to %s.",
            ", ".join(queues),
            settings.CENTRALINO_NODE,
            telephony_queue(),
        )
    # Before anything is touched: a second worker of this node must not close the first
    # one's live call records or take its commands (pbx/node_lock.py).
    _node_lock = node_lock.hold(settings.CENTRALINO_NODE)
    _host = EngineThread(build_engine)
    try:
        engine = _host.start()
    except Exception:
        # Celery only logs what a signal handler raises and would serve on with no engine;
        # exiting lets the supervisor (systemd, honcho) see the failure and restart us.
        log.exception("The telephony engine did not start: the worker stops")
        raise SystemExit(1) from None
    log.info(
        "Telephony engine of node %s: SIP udp+tcp %s:%s",
        settings.CENTRALINO_NODE,
        settings.CENTRALINO_BIND,
        engine.sip_port,
    )


@signals.beat_init.connect
def _check_redis_for_beat(sender: Any = None, **kwargs: Any) -> None:
    """`celery beat` only sends to Redis: a wrong REDIS_URL (or none) is one line and an exit,
    not a retry for ever with a traceback each time."""
    from django.conf import settings

    if not settings.REDIS_URL:
        problem = "REDIS_URL is not set: the jobs it would send have no worker to reach"
    else:
        problem = connectivity.redis_problem(settings.REDIS_URL)
    if problem:
        log.error("celery beat exits: %s", problem)
        raise SystemExit(1)


@signals.worker_shutdown.connect
def _stop_engine_in_worker(sender: Any = None, **kwargs: Any) -> None:
    global _host, _node_lock
    if _host is not None:
        log.info("Stopping the telephony engine")
        _host.stop()
        _host = None
    if _node_lock is not None:
        _node_lock.release()
        _node_lock = None
