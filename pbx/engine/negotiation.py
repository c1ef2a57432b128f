"""SDP for the engine's legs: what we offer or answer on each side, and taking answers."""

from __future__ import annotations

import logging

from pbx.engine.legs import Leg, Negotiation
from pbx.engine.media import MediaEndpoint
from pbx.sip import sdp

log = logging.getLogger(__name__)

CODECS = ("PCMU", "PCMA")
_NO_ADDRESS = ("0.0.0.0", "::")  # RFC 2543 hold: keep sending where we were


def offer_for_callee(advertise: str, caller: Leg | None, media: MediaEndpoint) -> bytes:
    """The offer to the phones we ring: the caller's codecs first, so that most calls relay
    without transcoding (ours alone when nobody calls: the PBX rings for itself)."""
    offered = caller.offer if caller is not None else None
    preferred = [n for _, n, _ in sdp.codecs(offered) if n in CODECS] if offered else []
    order = list(dict.fromkeys([*preferred, *CODECS]))
    return bytes(sdp.make_offer(advertise, media.port, order, session_id=media.port, version=1))


def unanswerable(offer: sdp.SessionDescription, advertise: str, port: int) -> str | None:
    """Why we could never answer `offer` (no common codec, no c= line...), or None."""
    try:
        sdp.negotiate(offer, local_ip=advertise, local_port=port, session_id=1, version=1)
    except sdp.NoCommonCodec:
        return "No common codec"
    except sdp.SdpError as error:
        return f"Unusable SDP: {error}"
    return None


def local_sdp(
    advertise: str, leg: Leg, *, prefer: str | None = None, direction: str | None = None
) -> bytes:
    """Our SDP for `leg`: the answer to its pending offer, or an offer of our own.

    The answer prefers `prefer` (the other leg's codec) so that the relay need not transcode.
    Without a pending offer (late offer) we offer and expect the answer in the ACK.

    Raises:
        sdp.NoCommonCodec: the pending offer has nothing we can use.
    """
    media = leg.media
    version, leg.sdp_version = leg.sdp_version, leg.sdp_version + 1
    offer, leg.offer = leg.offer, None
    if offer is None:
        leg.negotiation = Negotiation.OFFER_SENT
        order = list(dict.fromkeys([prefer or media.codec, *CODECS]))
        return bytes(
            sdp.make_offer(
                advertise,
                media.port,
                order,
                session_id=media.port,
                version=version,
                direction=direction or "sendrecv",
            )
        )
    leg.negotiation = Negotiation.IDLE
    offered = [name for _, name, _ in sdp.codecs(offer) if name in CODECS]
    codecs = [prefer] if prefer in offered else offered
    answer = sdp.negotiate(
        offer,
        codecs or CODECS,
        local_ip=advertise,
        local_port=media.port,
        session_id=media.port,
        version=version,
        direction=direction,
    )
    if answer.remote[0] not in _NO_ADDRESS:
        media.set_remote(answer.remote, answer.payload_type, answer.codec, answer.telephone_event)
    return bytes(answer.sdp)


def take_answer(leg: Leg, body: bytes) -> bool:
    """Apply the answer a far end gave to our offer (in a 2xx or an ACK); False if unusable."""
    leg.negotiation = Negotiation.IDLE
    try:
        answer = sdp.SessionDescription.parse(body)
        ip, port = sdp.audio_endpoint(answer)
        pt, codec, _ = next(c for c in sdp.codecs(answer) if c[1] in CODECS)
    except (sdp.SdpError, StopIteration, ValueError):
        log.info("unusable SDP answer from %s", leg.label)
        return False
    event = next((c[0] for c in sdp.codecs(answer) if c[1].lower() == "telephone-event"), None)
    if ip not in _NO_ADDRESS:
        leg.media.set_remote((ip, port), pt, codec, event)
    return True


def is_hold(body: bytes) -> bool:
    """Whether an offer or answer puts the media on hold (sendonly, inactive, 0.0.0.0)."""
    try:
        return sdp.direction(sdp.SessionDescription.parse(body)) in ("sendonly", "inactive")
    except sdp.SdpError:
        return False
