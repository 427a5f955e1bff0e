"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

The status says the type, as on Anthropic's API: 400 ``invalid_request_error``, 401
``authentication_error``, 403 ``permission_error``, 404 ``not_found_error``, 413
``request_too_large``, 429 ``rate_limit_error``, 504 ``timeout_error``, 529
``overloaded_error``, other 5xx ``api_error``. Bedrock's errors keep the core's status table,
except that the two "try again shortly" codes become Anthropic's 529, which Anthropic clients
(Claude Code included) back off and retry.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from outcrop import CallLifecycle, OutcropError, UpstreamError, error_from_aws

_encode = msgspec.json.Encoder().encode

OVERLOADED = 529
#: Bedrock codes whose Anthropic status differs from the core's default table.
AWS_OVERRIDES: Mapping[str, int] = {
    "serviceunavailableexception": OVERLOADED,
    "serviceunavailable": OVERLOADED,
    "modelnotreadyexception": OVERLOADED,
    "503": OVERLOADED,
}
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    OVERLOADED: "overloaded_error",
}


def error_type(status: int) -> str:
    """Anthropic's error type for a status."""
    found = _TYPES.get(status)
    if found is not None:
        return found
    return "api_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, message: str, request_id: str | None = None) -> bytes:
    body: dict[str, object] = {
        "type": "error",
        "error": {"type": error_type(status), "message": message},
    }
    if request_id:
        body["request_id"] = request_id
    return _encode(body)


def anthropic_answer(
    exc: OutcropError, life: CallLifecycle
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The lifecycle's error answer on this surface (status, headers, body)."""
    body = error_body(exc.status, exc.message, life.request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"request-id", life.request_id.encode("latin-1", "replace")),
    ]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
        for k, v in exc.headers.items()
    ]
    return exc.status, headers, body


def from_bedrock(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """A Bedrock error response as the error this surface answers."""
    return error_from_aws(status, body, headers, overrides=AWS_OVERRIDES)


def invalid(message: str) -> OutcropError:
    """A 400 ``invalid_request_error`` about the request."""
    return OutcropError(message, 400)
