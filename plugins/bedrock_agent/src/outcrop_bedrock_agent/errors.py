"""AWS errors -> the status the OpenAI client gets (docs/providers/bedrock_agent.md has the table).

The core's table (``DEFAULT_AWS_STATUS``) serves HTTP error responses (``outcrop_map_error``)
and exception frames that arrive in the middle of the event stream, where AWS already answered 200.
"""

from __future__ import annotations

from collections.abc import Mapping

from outcrop import EventStreamMessage, UpstreamError, aws_status, error_from_aws

# InvokeAgent's codes need no overrides: the core's ``DEFAULT_AWS_STATUS`` already turns
# ServiceQuotaExceeded (AWS 400) into 429, DependencyFailed (AWS 424: a Lambda or model the agent
# called failed) into 502 and ModelNotReady (AWS 424) into 503.


def http_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """A non-2xx InvokeAgent response, parsed as botocore does (unknown codes: 4xx kept, else 502)."""
    return error_from_aws(status, body, headers)


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
        message = (
            str(data.get("message") or data.get("Message") or "") if isinstance(data, dict) else ""
        )
    return UpstreamError(
        f"{code}: {message}" if message else code,
        aws_status(code) or 502,
        aws_code=code,
    )
