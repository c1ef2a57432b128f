"""Commands reach the engine from other threads (a view, a Celery task) and answer clearly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from pbx import worker
from pbx.engine.commands import BlindTransfer, Hangup, Hold
from pbx.engine.directory import MemoryDirectory
from pbx.engine.operations import OperationError
from pbx.engine.runtime import Engine, EngineConfig
from tests.unit.fakes.events import call_created


@pytest.fixture
def engine_in_a_thread() -> Iterator[Engine]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    engine = Engine(
        EngineConfig(sip_port=0, rtp_ports=(39000, 39010), freeze_gc=False, media_timeout=0),
        MemoryDirectory(),
    )
    asyncio.run_coroutine_threadsafe(engine.start(), loop).result(5)
    worker.attach(engine, loop)
    try:
        yield engine
    finally:
        worker.detach()
        asyncio.run_coroutine_threadsafe(engine.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.mark.parametrize(
    "command",
    [Hangup("gone"), Hold("gone"), BlindTransfer("gone", "201")],
    ids=["hangup", "hold", "transfer"],
)
def test_a_command_for_a_call_that_is_gone_says_no_such_call(
    engine_in_a_thread: Engine, command: object
) -> None:
    with pytest.raises(OperationError) as raised:
        worker.execute(command)  # type: ignore[arg-type]
    assert raised.value.code == "no_such_call"
    assert engine_in_a_thread.status()["calls"] == 0


def test_a_command_without_an_engine_in_the_process_is_refused() -> None:
    worker.detach()
    with pytest.raises(RuntimeError, match="No telephony engine"):
        worker.execute(Hangup("any"))


def test_the_engine_feeds_the_consoles_from_its_own_events(engine_in_a_thread: Engine) -> None:
    """A call of company 7 seen by the engine's bus is in company 7's console snapshot."""
    event = call_created(7)

    async def emit(engine: Engine) -> dict[str, object]:
        engine.events.emit(event)  # on the engine's loop, where its events happen
        return engine.console.snapshot(7)

    snapshot: dict = worker.call_engine(emit)
    assert snapshot["seq"] == 1
    assert snapshot["calls"]["c1"]["dialled"] == "0212345678"
    assert engine_in_a_thread.console.snapshot(1)["calls"] == {}
