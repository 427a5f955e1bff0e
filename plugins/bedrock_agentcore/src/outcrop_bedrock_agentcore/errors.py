"""InvokeAgentRuntime's modeled errors -> the status the OpenAI client gets.

AWS statuses (botocore's InvokeAgentRuntime model): Validation 400, AccessDenied 403, ResourceNotFound 404,
RetryableConflict 409, ServiceQuotaExceeded 402, RuntimeClientError 424 (the agent container
failed), Throttling 429, InternalServer 500. 402 and 424 mean nothing to OpenAI clients, so quota
becomes 429 (retry later) and a failing agent 502 (bad gateway) with the agent's message.
Bare statuses cover error bodies that lost their ``x-amzn-ErrorType`` on the way.
"""

from __future__ import annotations

from collections.abc import Mapping

from outcrop import UpstreamError, error_from_aws
from outcrop.errors import DEFAULT_AWS_STATUS

AGENTCORE_STATUS: dict[str, int] = {
    **DEFAULT_AWS_STATUS,
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "retryableconflictexception": 409,
    "servicequotaexceededexception": 429,
    "runtimeclienterror": 502,
    "throttlingexception": 429,
    "internalserverexception": 502,
    "400": 400,
    "402": 429,
    "403": 403,
    "404": 404,
    "409": 409,
    "424": 502,
    "429": 429,
    "503": 503,
}


def map_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    return error_from_aws(status, body, headers, status_map=AGENTCORE_STATUS)
