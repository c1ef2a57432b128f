"""G.711 µ-law and A-law companding of 16-bit linear PCM.

The quantisation follows ITU-T G.711 as implemented by the G.191 reference software: µ-law
looks at the 14 most significant bits of a sample, A-law at the 13 most significant, and
negative samples are folded by one's complement (so -1 is "negative zero", not -4). All
conversions are table look-ups built once at import: a 65536-entry encode table indexed by
the sample's bit pattern, 256-entry decode tables, and ``bytes.translate`` tables that
transcode µ-law <-> A-law without going through numpy on the relay's hot path.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_SILENCE",
    "ALAW_TO_ULAW",
    "ULAW_SILENCE",
    "ULAW_TO_ALAW",
    "alaw_to_ulaw",
    "decode",
    "decode_alaw",
    "decode_ulaw",
    "encode",
    "encode_alaw",
    "encode_ulaw",
    "ulaw_to_alaw",
]

ULAW_SILENCE = 0xFF
"""µ-law code of a zero sample (positive zero)."""
ALAW_SILENCE = 0xD5
"""A-law code of a zero sample (the positive code nearest zero, decoding to +8)."""

Samples = npt.NDArray[np.int16]


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its unsigned bit pattern (the encode-table index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _leading_bit(values: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """Index of the highest set bit of positive integers (exact, unlike a float log2)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int32) - 1


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    x = _all_samples()
    magnitude = np.where(x < 0, ~x, x) >> 2  # 14-bit magnitude, one's complement for negatives
    biased = np.minimum(magnitude + 33, 0x1FFF)
    # The segment is the position of the leading one of the biased value, counted from bit 5.
    segment = _leading_bit(biased) - 5
    mantissa = (biased >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x7F).astype(np.uint8)  # µ-law transmits magnitude bits inverted


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    x = _all_samples()
    magnitude = np.where(x < 0, ~x, x) >> 4  # 12-bit magnitude, one's complement for negatives
    segment = np.where(magnitude < 16, 0, _leading_bit(np.maximum(magnitude, 1)) - 3)
    mantissa = np.where(segment == 0, magnitude, (magnitude >> np.maximum(segment - 1, 0)) - 16)
    code = (segment << 4) | mantissa
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)  # A-law inverts the even bits


def _ulaw_decode_table() -> Samples:
    code = np.arange(256, dtype=np.int32)
    inverted = ~code & 0xFF
    segment = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 1) + 33) << segment) - 33  # midpoint of the 14-bit interval
    value = np.where(code & 0x80, magnitude, -magnitude) * 4
    return value.astype(np.int16)


def _alaw_decode_table() -> Samples:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(segment == 0, (mantissa << 4) + 8, ((mantissa + 16) << 4) + 8)
    magnitude = magnitude << np.maximum(segment - 1, 0)
    value = np.where(code & 0x80, magnitude, -magnitude)
    return value.astype(np.int16)


_ULAW_ENCODE = _ulaw_encode_table()
_ALAW_ENCODE = _alaw_encode_table()
ULAW_DECODE: Samples = _ulaw_decode_table()
"""Linear value of each µ-law code."""
ALAW_DECODE: Samples = _alaw_decode_table()
"""Linear value of each A-law code."""

# Transcoding goes through the linear value: decode with one law, re-quantise with the other.
ULAW_TO_ALAW: bytes = _ALAW_ENCODE[ULAW_DECODE.view(np.uint16)].tobytes()
"""``bytes.translate`` table from µ-law codes to A-law codes."""
ALAW_TO_ULAW: bytes = _ULAW_ENCODE[ALAW_DECODE.view(np.uint16)].tobytes()
"""``bytes.translate`` table from A-law codes to µ-law codes."""


def _as_int16(samples: Samples | bytes | bytearray | memoryview) -> Samples:
    if isinstance(samples, bytes | bytearray | memoryview):
        if len(samples) % 2:
            raise ValueError("16-bit PCM needs an even number of bytes")
        return np.frombuffer(samples, dtype="<i2")
    array = np.asarray(samples)
    if array.dtype != np.int16:
        raise TypeError(f"expected int16 samples, got {array.dtype}")
    return array


def encode_ulaw(samples: Samples | bytes | bytearray | memoryview) -> bytes:
    """Encode linear PCM (int16 array or little-endian bytes) as µ-law."""
    return _ULAW_ENCODE[_as_int16(samples).view(np.uint16)].tobytes()


def encode_alaw(samples: Samples | bytes | bytearray | memoryview) -> bytes:
    """Encode linear PCM (int16 array or little-endian bytes) as A-law."""
    return _ALAW_ENCODE[_as_int16(samples).view(np.uint16)].tobytes()


def decode_ulaw(payload: bytes | bytearray | memoryview) -> Samples:
    """Decode µ-law bytes to an int16 array."""
    return ULAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def decode_alaw(payload: bytes | bytearray | memoryview) -> Samples:
    """Decode A-law bytes to an int16 array."""
    return ALAW_DECODE[np.frombuffer(payload, dtype=np.uint8)]


def ulaw_to_alaw(payload: bytes) -> bytes:
    """Transcode a µ-law payload to A-law, byte for byte."""
    return payload.translate(ULAW_TO_ALAW)


def alaw_to_ulaw(payload: bytes) -> bytes:
    """Transcode an A-law payload to µ-law, byte for byte."""
    return payload.translate(ALAW_TO_ULAW)


def encode(codec: str, samples: Samples | bytes) -> bytes:
    """Encode with the codec named as in SDP ("PCMU" or "PCMA")."""
    if codec == "PCMU":
        return encode_ulaw(samples)
    if codec == "PCMA":
        return encode_alaw(samples)
    raise ValueError(f"unsupported codec {codec!r}: expected 'PCMU' or 'PCMA'")


def decode(codec: str, payload: bytes) -> Samples:
    """Decode with the codec named as in SDP ("PCMU" or "PCMA")."""
    if codec == "PCMU":
        return decode_ulaw(payload)
    if codec == "PCMA":
        return decode_alaw(payload)
    raise ValueError(f"unsupported codec {codec!r}: expected 'PCMU' or 'PCMA'")
