"""Cutting a TCP/TLS byte stream into SIP messages (RFC 3261 section 18.3)."""

from __future__ import annotations

from typing import NoReturn

from pbx.sip.errors import SipParseError
from pbx.sip.message import MAX_MESSAGE_SIZE


class StreamFramer:
    """Buffers stream bytes and returns complete messages, each ready for parse_message.

    A framing error cannot be recovered from on a stream: after feed() raises, the transport
    should answer if it can and close the connection.
    """

    def __init__(self, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_message_size
        self._broken = False

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete, in order.

        Leading CRLFs (RFC 5626 keep-alives) are skipped.

        Raises:
            SipParseError: a missing or bad Content-Length, or a message over the size limit.
        """
        if self._broken:
            raise RuntimeError("StreamFramer used after a framing error")
        buffer = self._buffer
        buffer += data
        messages: list[bytes] = []
        while True:
            skip = 0
            while skip < len(buffer) and buffer[skip] in (13, 10):
                skip += 1
            if skip:
                del buffer[:skip]
            if not buffer:
                return messages
            head_end, sep = _find_head_end(buffer)
            if head_end < 0:
                if len(buffer) > self._max:
                    self._fail("headers too large", 513)
                return messages
            length = self._content_length(bytes(buffer[:head_end]))
            total = head_end + sep + length
            if total > self._max:
                self._fail("message too large", 513)
            if len(buffer) < total:
                return messages
            messages.append(bytes(buffer[:total]))
            del buffer[:total]

    def _content_length(self, head: bytes) -> int:
        value: bytes | None = None
        after_length = False
        for raw in head.split(b"\n")[1:]:
            line = raw.rstrip(b"\r")
            if line[:1] in (b" ", b"\t"):
                if after_length:
                    self._fail("folded Content-Length")
                continue
            name, colon, rest = line.partition(b":")
            after_length = bool(colon) and name.rstrip(b" \t").lower() in (b"content-length", b"l")
            if after_length:
                if value is not None:
                    self._fail("more than one Content-Length")
                value = rest.strip(b" \t")
        if value is None:
            self._fail("missing Content-Length on a stream")
        if not value.isdigit() or len(value) > 9:
            self._fail("bad Content-Length")
        return int(value)

    def _fail(self, reason: str, status: int = 400) -> NoReturn:
        self._broken = True
        raise SipParseError(reason, status)


def _find_head_end(buffer: bytearray) -> tuple[int, int]:
    """Offset of the empty line ending the headers and its length, or (-1, 0)."""
    crlf = buffer.find(b"\r\n\r\n")
    lf = buffer.find(b"\n\n")
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, 2
    if crlf >= 0:
        return crlf, 4
    return -1, 0
