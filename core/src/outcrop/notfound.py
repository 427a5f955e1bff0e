"""A JSON 404 for paths no route serves, in the caller's dialect, saying where to go instead.

An AWS SDK (its SigV4 ``Authorization`` or ``x-amz-*`` headers, or a Bedrock path) gets the AWS
shape (``x-amzn-ErrorType: UnknownOperationException``) and the hint that the pass-through lives
under ``/bedrock`` (boto3's ``endpoint_url`` must end with it); everyone else an OpenAI error
with the routes this gateway serves.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from .errors import OutcropError, clip

_BEDROCK_PATH = re.compile(
    r"^/(model|agents|knowledgebases|runtimes|guardrail|async-invoke|flows|sessions)/"
)


def _from_aws_sdk(request: Request) -> bool:
    auth = request.headers.get("authorization", "")
    return (
        auth.startswith("AWS4-HMAC-SHA256")
        or any(k.startswith("x-amz-") for k in request.headers)
        or _BEDROCK_PATH.match(request.url.path) is not None
    )


async def not_found(request: Request, exc: Exception) -> Response:
    path = request.url.path
    if _from_aws_sdk(request):
        hint = (
            "Bedrock APIs are served under /bedrock: set the SDK's endpoint_url to "
            f"{request.base_url}bedrock"
            if not path.startswith("/bedrock")
            else "this gateway has no pass-through plugin installed (outcrop-bedrock-passthrough)"
        )
        err = OutcropError(
            f"no route for {request.method} {clip(path)}; {hint}",
            404,
            aws_type="UnknownOperationException",
        )
        return Response(
            err.aws_body(),
            status_code=404,
            media_type="application/json",
            headers={"x-amzn-ErrorType": err.aws_type},
        )
    hint = (
        "OpenAI routes are /v1/chat/completions, /v1/embeddings and /v1/models "
        "(an OpenAI client's base_url ends with /v1)"
    )
    err = OutcropError(f"no route for {request.method} {clip(path)}; {hint}", 404, code="not_found")
    return Response(err.openai_body(), status_code=404, media_type="application/json")
