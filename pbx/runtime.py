"""Builds the telephony engine from Django settings, with the database behind it."""

from __future__ import annotations

from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from pbx.announcement_store import OrmAnnouncementStore
from pbx.bindings import OrmBindingStore
from pbx.config import OrmDirectory
from pbx.dialog_store import OrmDialogJournal
from pbx.engine.runtime import Engine, EngineConfig
from pbx.events import ChannelPublisher
from pbx.hunt_memory import OrmHuntMemory
from pbx.voicemail_store import OrmVoicemailStore
from stats.recorder import OrmCallRecorder


def engine_config(**overrides: Any) -> EngineConfig:
    values: dict[str, Any] = dict(
        bind=settings.CENTRALINO_BIND,
        advertise=settings.CENTRALINO_ADVERTISE,
        sip_port=settings.CENTRALINO_SIP_PORT,
        rtp_ports=settings.CENTRALINO_RTP_PORTS,
        realm=settings.CENTRALINO_REALM,
        node=settings.CENTRALINO_NODE,
        nonce_lifetime=settings.CENTRALINO_NONCE_LIFETIME,
        min_expires=settings.CENTRALINO_REGISTER_MIN_EXPIRES,
        max_expires=settings.CENTRALINO_REGISTER_MAX_EXPIRES,
        auth_fail_limit=settings.CENTRALINO_AUTH_FAIL_LIMIT,
        auth_fail_window=settings.CENTRALINO_AUTH_FAIL_WINDOW,
        auth_block_seconds=settings.CENTRALINO_AUTH_BLOCK_SECONDS,
        digest_algorithms=settings.CENTRALINO_DIGEST_ALGORITHMS,
        moh_path=settings.CENTRALINO_MOH,
        media_timeout=settings.CENTRALINO_MEDIA_TIMEOUT,
        queue_timeout=settings.CENTRALINO_QUEUE_TIMEOUT,
        mwi_unsolicited=settings.CENTRALINO_MWI_UNSOLICITED,
        announcements_dir=str(settings.CENTRALINO_ANNOUNCEMENTS_DIR),
        voicemail_dir=str(settings.CENTRALINO_VOICEMAIL_DIR),
        voicemail_code=settings.CENTRALINO_VOICEMAIL_CODE,
        voicemail_max_seconds=settings.CENTRALINO_VOICEMAIL_MAX_SECONDS,
        voicemail_min_free_mb=settings.CENTRALINO_VOICEMAIL_MIN_FREE_MB,
        voicemail_language=settings.CENTRALINO_VOICEMAIL_LANGUAGE,
    )
    values.update(overrides)
    return EngineConfig(**values)


def build_engine(**overrides: Any) -> Engine:
    """The engine of this node: settings (with `overrides`) and the database behind it."""
    config = engine_config(**overrides)
    engine = Engine(
        config,
        OrmDirectory(),
        OrmCallRecorder(config.node),
        OrmBindingStore(config.node),
        OrmHuntMemory(),
        OrmAnnouncementStore(),
        OrmVoicemailStore(config.voicemail_dir),
        journal=OrmDialogJournal(config.node),
    )
    # The consoles (operator_panel/consumers.py) listen on the channel layer's company groups:
    # in this process (embedded) or in the web processes (Redis, distributed).
    layer = get_channel_layer()
    if layer is not None:
        engine.console.publish = ChannelPublisher(layer, engine.tasks.spawn)
    return engine


async def start_engine(engine: Engine) -> None:
    """Start `engine` and its heartbeat (pbx/heartbeat.py), on the engine's own loop."""
    from pbx import heartbeat

    await engine.start()
    engine.tasks.spawn(heartbeat.beat(engine))


async def stop_engine(engine: Engine) -> None:
    """Stop `engine` (hanging up its calls) and mark its node stopped."""
    from pbx import heartbeat

    await engine.stop()
    await heartbeat.stopped(engine)
