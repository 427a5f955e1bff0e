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

#: Where InvokeAgentRuntime differs from the core's ``DEFAULT_AWS_STATUS``: bare statuses, for
#: error bodies without a code (a 4xx status not listed is kept as it is).
OVERRIDES: dict[str, int] = {
    "402": 429,
    "424": 502,
}


def map_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    return error_from_aws(status, body, headers, overrides=OVERRIDES)
