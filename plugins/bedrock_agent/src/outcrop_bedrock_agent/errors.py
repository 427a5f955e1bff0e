"""AWS errors -> the status the OpenAI client gets (docs/providers/bedrock_agent.md has the table).

The same table serves HTTP error responses (``outcrop_map_error``) and exception frames that
arrive in the middle of the event stream, where AWS has already answered 200.
"""

from __future__ import annotations

from collections.abc import Mapping

from outcrop import EventStreamMessage, UpstreamError, error_from_aws

#: Lower-cased AWS error code -> gateway status. InvokeAgent's modeled exceptions first.
STATUS: dict[str, int] = {
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "conflictexception": 409,
    "throttlingexception": 429,
    "servicequotaexceededexception": 429,  # AWS says 400; it is a rate/quota limit to retry later
    "dependencyfailedexception": 502,  # AWS 424: a Lambda or model the agent called failed
    "badgatewayexception": 502,
    "internalserverexception": 502,
    "modelnotreadyexception": 503,  # AWS 424: retryable once the model is ready
    "serviceunavailableexception": 503,
    "serviceunavailable": 503,
    "503": 503,  # no error code at all (a load balancer page): still worth a retry
    # The gateway's own AWS credentials were refused: the client's request is not at fault.
    "unrecognizedclientexception": 502,
    "invalidsignatureexception": 502,
    "incompletesignatureexception": 502,
    "expiredtokenexception": 502,
    "missingauthenticationtokenexception": 502,
}


def http_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """A non-2xx InvokeAgent response, parsed as botocore does (unknown codes: 4xx kept, else 502)."""
    return error_from_aws(status, body, headers, status_map=STATUS)


def stream_error(event: EventStreamMessage) -> UpstreamError:
    """An ``exception`` or ``error`` frame in the middle of the stream."""
    raw = event.exception_type or "InternalServerException"
    code = raw[:1].upper() + raw[1:]  # frames name the member: throttlingException
    if event.message_type == "error":
        message = str(event.headers.get(":error-message") or "")
    else:
        try:
            data = event.json()
        except ValueError:
            data = {}
        message = str(data.get("message") or data.get("Message") or "") if isinstance(data, dict) else ""
    return UpstreamError(
        f"{code}: {message}" if message else code,
        STATUS.get(code.lower(), 502),
        aws_code=code,
    )
