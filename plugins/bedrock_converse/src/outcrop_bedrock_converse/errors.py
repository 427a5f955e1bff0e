"""AWS errors -> the status the OpenAI client gets.

HTTP error responses use the core's default table (``error_from_aws``): ValidationException
400, AccessDeniedException 403, ResourceNotFoundException 404, ThrottlingException and
ServiceQuotaExceededException 429, ModelNotReadyException and ServiceUnavailableException 503,
ModelTimeoutException 504, ModelErrorException (AWS 424) and InternalServerException 502,
the gateway's own credentials refused 502. Exception frames in the middle of a ConverseStream
(after AWS already answered 200) go through the same table here.
"""

from __future__ import annotations

import msgspec

from outcrop import EventStreamMessage, UpstreamError, error_from_aws


def stream_error(event: EventStreamMessage) -> UpstreamError:
    """An ``exception`` or ``error`` frame met mid-stream, mapped like an HTTP error."""
    raw = event.exception_type or "InternalServerException"
    code = raw[:1].upper() + raw[1:]  # frames name the union member: throttlingException
    body = event.payload
    if event.message_type == "error":  # no payload: the message is a header
        body = msgspec.json.encode({"message": str(event.headers.get(":error-message") or "")})
    # 500: a code the table does not know is the upstream's failure (502), not the caller's
    return error_from_aws(500, body, {"x-amzn-errortype": code})
