"""The Redis channel layer of the distributed mode, configured as settings.py configures it."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels_redis.core import RedisChannelLayer

from operator_panel.settings import redis_channel_hosts
from tests.integration.processes import REDIS_TEST_URL

pytestmark = pytest.mark.integration


async def test_a_console_channel_survives_minutes_without_a_message(redis_url: str) -> None:
    """Quiet is normal at a switchboard: waiting for a message longer than redis-py's default
    read timeout (5 s, channels_redis waits 5 s per read) must not fail the consumer."""
    layer = RedisChannelLayer(hosts=redis_channel_hosts(REDIS_TEST_URL))
    channel = await layer.new_channel()
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 6.5)
    assert time.monotonic() - started >= 6.4
    await layer.send(channel, {"type": "console.event"})
    assert (await asyncio.wait_for(layer.receive(channel), 2))["type"] == "console.event"
    await layer.flush()
