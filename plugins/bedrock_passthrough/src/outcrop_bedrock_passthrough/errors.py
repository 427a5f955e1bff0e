"""AWS-shaped answers the gateway makes itself (JSON ``{"message"}`` plus ``x-amzn-ErrorType``),
and the operations it refuses."""

from __future__ import annotations

import msgspec

from outcrop import CallLifecycle, OutcropError

_encode = msgspec.json.Encoder().encode

#: The operations of ``outcrop``'s data-plane table that the pass-through cannot relay
#: (operation name -> why it is refused).
UNSUPPORTED = {
    "InvokeModelWithBidirectionalStream": (
        "InvokeModelWithBidirectionalStream needs a bidirectional HTTP/2 event stream, which the "
        "pass-through does not relay; call Bedrock directly for it"
    ),
}


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


def aws_answer(
    exc: OutcropError, life: CallLifecycle
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The gateway's own errors in AWS shape (``x-amzn-ErrorType``)."""
    status, headers, body = error_parts(exc, life.request_id)
    if life.attempts:
        headers.append(life.attempts_header())
    return status, headers, body
