"""AWS-shaped answers the gateway makes itself: JSON ``{"message"}`` plus ``x-amzn-ErrorType``."""

from __future__ import annotations

import msgspec

from outcrop import OutcropError

_encode = msgspec.json.Encoder().encode


def error_parts(exc: OutcropError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the AWS error response for ``exc``."""
    body = _encode({"message": exc.message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-errortype", exc.aws_type.encode("latin-1", "replace")),
        (b"x-amzn-requestid", request_id.encode("latin-1", "replace")),
    ]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
        for k, v in exc.headers.items()
    ]
    return exc.status, headers, body
