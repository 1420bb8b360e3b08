"""A job's stored file as an HTTP response: streamed from Redis a chunk at a time, whole or
one byte range (``Range: bytes=...``, so players can seek in the preview and downloads resume).

One range per request: a ``Range`` of several (``bytes=0-9,20-29``) or one that does not parse
is ignored and the whole file is sent, as RFC 9110 (14.2) allows; a range that starts past the
end is answered 416 with the file's size (``Content-Range: bytes */size``).
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Literal

from service.gateway.errors import ApiError, ErrorCode
from service.gateway.head import StreamedBody
from service.gateway.header_numbers import capped_int
from service.jobs import StoredFile

# bytes=first-last, bytes=first- (to the end) or bytes=-length (the last length bytes);
# numbers of any length, capped (a range past any file's end is refused as such).
_RANGE = re.compile(r"bytes=(?P<first>[0-9]*)-(?P<last>[0-9]*)", re.ASCII)
Disposition = Literal["inline", "attachment"]


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``(start, stop)`` (stop exclusive) a ``Range`` header asks of ``size`` bytes;
    ``None`` for the whole file (no header, several ranges, or one that does not parse).

    Raises:
        ApiError: ``range_not_satisfiable``: the range starts past the end.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match["first"] and not match["last"]):
        return None
    if not match["first"]:  # a suffix: the last N bytes
        length = capped_int(match["last"])
        if length == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - length), size
    start = capped_int(match["first"])
    stop = size if not match["last"] else min(size, capped_int(match["last"]) + 1)
    if start >= size:
        raise _unsatisfiable(size)
    if stop <= start:  # last < first: not a valid range, so ignored
        return None
    return start, stop


def file_response(
    stored: StoredFile,
    media_type: str,
    filename: str,
    range_header: str | None,
    disposition: Disposition = "attachment",
) -> StreamedBody:
    """``stored`` (or the part ``range_header`` asks for) as a streamed response (a ``HEAD``
    reads none of it).

    Raises:
        ApiError: ``range_not_satisfiable``.
    """
    span = byte_range(range_header, stored.size)
    start, stop = span or (0, stored.size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(stop - start),
        "Content-Disposition": f'{disposition}; filename="{filename}"',
    }
    status = HTTPStatus.OK
    if span is not None:
        status = HTTPStatus.PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{stored.size}"
    # A plain iterator: Starlette reads it in its thread pool (each chunk is a GETRANGE).
    return StreamedBody(
        stored.chunks(start, stop), status_code=status, media_type=media_type, headers=headers
    )


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(
        ErrorCode.RANGE_NOT_SATISFIABLE,
        f"the range starts past the end of the file, which has {size} bytes",
        {"Content-Range": f"bytes */{size}"},
    )
