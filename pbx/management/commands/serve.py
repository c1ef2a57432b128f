"""`manage.py serve`: the embedded PBX, web and telephony in one process on one asyncio loop.

Daphne serves HTTP and WebSocket on Twisted's asyncio reactor; the engine starts on that same
loop once the reactor runs, and stops before Daphne does when the reactor shuts down (Ctrl-C,
SIGTERM), so calls are hung up properly before the web goes away.
"""

from __future__ import annotations

# Daphne installs Twisted's asyncio reactor on import: it must come before anything imports
# twisted.internet.reactor (the daphne app in INSTALLED_APPS imports it first already).
import daphne.server  # noqa: I001  # isort:skip

import asyncio
import logging
import signal
from typing import Any

from daphne.endpoints import build_endpoint_description_strings
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from twisted.internet import defer
from twisted.internet import reactor as _reactor

from pbx import worker
from pbx.connectivity import start_up_problems

log = logging.getLogger(__name__)
# The installed reactor is an AsyncioSelectorReactor; its module-level stub types it narrowly.
reactor: Any = _reactor


class Command(BaseCommand):
    help = "Serve the web console and run the telephony engine in this one process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind", default=None, help="Address to listen on (default: CENTRALINO_BIND)."
        )
        parser.add_argument(
            "--http-port",
            type=int,
            default=None,
            help="Web port (default: CENTRALINO_HTTP_PORT).",
        )
        parser.add_argument(
            "--no-engine",
            action="store_true",
            help="Serve the web only (as CENTRALINO_ENGINE=off does).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from operator_panel.asgi import application

        # A wrong DATABASE_URL or REDIS_URL: one line saying which, before anything listens.
        problems = start_up_problems()
        if problems:
            raise CommandError("; ".join(problems))

        bind = options["bind"] or settings.CENTRALINO_BIND
        http_port = options["http_port"] or settings.CENTRALINO_HTTP_PORT
        with_engine = settings.CENTRALINO_ENGINE != "off" and not options["no_engine"]
        self.failed = False

        if with_engine:
            reactor.callWhenRunning(self._start_engine)
            # "before shutdown" triggers run in the order they were added: ours is added before
            # Daphne's own (it adds it inside run()), so the engine stops first.
            reactor.addSystemEventTrigger("before", "shutdown", self._stop_engine)
        else:
            self.stdout.write(
                "SIP off (CENTRALINO_ENGINE=off: the engine runs on a telephony worker)"
            )

        server = daphne.server.Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=bind, port=http_port),
            signal_handlers=True,
            ready_callable=lambda: self._say_web_ready(bind, http_port),
        )
        # Twisted only takes over SIGINT when Python's default handler is in place; a shell that
        # starts us in the background sets it to "ignore", and then Ctrl-C / kill -INT would
        # do nothing. This is a foreground server: SIGINT always means "stop cleanly".
        signal.signal(signal.SIGINT, signal.default_int_handler)
        server.run()
        if server.abort_start:
            raise CommandError(f"Could not listen on {bind}:{http_port}.")
        if self.failed:
            raise CommandError("The telephony engine did not start.")

    def _say_web_ready(self, bind: str, port: int) -> None:
        host = f"[{bind}]" if ":" in bind else bind
        self.stdout.write(f"Web http://{host}:{port}")
        self.stdout.flush()

    def _start_engine(self) -> defer.Deferred:
        from pbx.runtime import build_engine, start_engine

        loop = asyncio.get_event_loop()
        engine = build_engine()

        async def start() -> None:
            try:
                await start_engine(engine)
            except Exception as error:
                self.failed = True
                self.stderr.write(f"The telephony engine did not start: {error}")
                log.exception("Engine start failed")
                reactor.stop()
                return
            worker.attach(engine, loop)
            bind = settings.CENTRALINO_BIND
            host = f"[{bind}]" if ":" in bind else bind
            kind = type(loop).__module__.split(".")[0]  # "uvloop" or "asyncio"
            self.stdout.write(f"SIP udp+tcp {host}:{engine.sip_port} ({kind} loop)")
            self.stdout.flush()

        return defer.Deferred.fromFuture(loop.create_task(start()))

    def _stop_engine(self) -> defer.Deferred | None:
        current = worker.attached()
        if current is None:
            return None
        worker.detach()
        from pbx.runtime import stop_engine

        async def stop() -> None:
            try:
                await asyncio.wait_for(stop_engine(current.engine), timeout=10)
            except Exception:
                log.exception("The engine did not stop cleanly")
            self.stdout.write("SIP stopped")
            self.stdout.flush()

        return defer.Deferred.fromFuture(current.loop.create_task(stop()))
