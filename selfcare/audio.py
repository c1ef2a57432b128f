"""Serving a stored WAV to its owner, with byte ranges: browsers ask for ranges to seek in an
<audio> element, and Safari on a phone plays nothing from a server that ignores them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def wav_response(
    request: HttpRequest, path: Path, *, filename: str, attachment: bool = False
) -> HttpResponse:
    """The file at `path` as audio/wav, whole or the one byte range asked for.

    Raises:
        Http404: the file is missing.
    """
    try:
        audio = path.open("rb")
    except FileNotFoundError:
        raise Http404("The recording's file is missing.") from None
    size = path.stat().st_size
    wanted = _byte_range(request.headers.get("Range", ""), size)
    if wanted is None:
        response: HttpResponse = FileResponse(
            audio, content_type="audio/wav", as_attachment=attachment, filename=filename
        )
    elif wanted == (-1, -1):
        audio.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    else:
        start, end = wanted
        audio.seek(start)
        response = StreamingHttpResponse(
            _chunks(audio, end - start + 1), status=206, content_type="audio/wav"
        )
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        kind = "attachment" if attachment else "inline"
        response["Content-Disposition"] = f'{kind}; filename="{filename}"'
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-cache"  # a message may be deleted: ask each time
    return response


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `Range: bytes=...` header; None to send the whole file
    (no header, or one we do not serve, like several ranges); (-1, -1) when it is unsatisfiable.
    """
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            return (-1, -1)
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return (-1, -1)
    return start, end


def _chunks(audio: BinaryIO, length: int) -> Iterator[bytes]:
    with audio:
        while length > 0:
            data = audio.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data
