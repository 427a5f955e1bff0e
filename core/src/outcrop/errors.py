"""Errors the gateway answers with, in the OpenAI dialect and in the AWS dialect.

Plugins raise ``OutcropError`` (or ``UpstreamError`` via ``error_from_aws``); the core turns it
into the caller's dialect: OpenAI error JSON on OpenAI routes, an SSE error event mid-stream,
and the AWS error shape (``x-amzn-ErrorType``) on native routes.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from .wire import ErrorBody, ErrorEnvelope

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    424: "upstream_error",
    429: "rate_limit_error",
}


#: How many characters of a client's value an error message or a log line repeats.
MAX_ECHO = 100


def clip(value: object, limit: int = MAX_ECHO) -> str:
    """A client's value as an error message or a log line may repeat it: its first ``limit``
    characters, and how long it really was. Use it wherever a value the client chose (a model
    name, a parameter, a path) is echoed, so a 1 MB value cannot make a 1 MB answer or log."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text)} characters]"


class OutcropError(Exception):
    """An error with an HTTP status and an OpenAI-style type/code/param.

    ``aws_type`` names the AWS exception used when the error is answered in AWS shape.
    """

    def __init__(
        self,
        message: str,
        status: int = 400,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        aws_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type or _TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        self.code = code
        self.param = param
        self.aws_type = aws_type or _aws_type_for(status)
        self.headers = dict(headers or {})

    def openai_body(self) -> bytes:
        return msgspec.json.encode(
            ErrorEnvelope(ErrorBody(self.message, self.type, self.param, self.code))
        )

    def aws_body(self) -> bytes:
        return msgspec.json.encode({"message": self.message})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.message!r})"


class ConfigError(Exception):
    """The configuration is invalid. ``errors`` lists ``path: problem`` lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors

    @classmethod
    def from_validation(cls, exc: msgspec.ValidationError, prefix: str = "") -> ConfigError:
        """``Expected `int`, got `str` - at `$.keys[0].port``` under ``prefix`` ->
        ``ConfigError(["prefix.keys[0].port: expected `int`, got `str`"])``."""
        path, message = split_validation_error(exc, prefix)
        return cls([f"{path or '(top level)'}: {message[:1].lower()}{message[1:]}"])


def split_validation_error(exc: msgspec.ValidationError, prefix: str = "") -> tuple[str, str]:
    """Split a msgspec error into the field path under ``prefix`` and the message.

    ``Expected `str`, got `int` - at `$.messages[0].role``` with prefix ``body`` ->
    ``("body.messages[0].role", "Expected `str`, got `int`")``. The one place that reads
    msgspec's ``- at `$...``` suffix.
    """
    text = str(exc)
    head, sep, where = text.rpartition(" - at `$")
    if sep and where.endswith("`"):
        text, where = head, where[:-1]
    else:
        where = ""
    path = f"{prefix}{where}" if prefix else where.lstrip(".")
    return path, text


class UpstreamError(OutcropError):
    """AWS answered with an error (HTTP status or an exception frame mid-stream)."""

    def __init__(
        self,
        message: str,
        status: int,
        *,
        aws_code: str,
        upstream_status: int | None = None,
        request_id: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message, status, type=type, code=aws_code, aws_type=aws_code)
        self.aws_code = aws_code
        self.upstream_status = upstream_status
        self.request_id = request_id


def _aws_type_for(status: int) -> str:
    return {
        400: "ValidationException",
        401: "UnrecognizedClientException",
        403: "AccessDeniedException",
        404: "ResourceNotFoundException",
        408: "ModelTimeoutException",
        413: "ValidationException",
        429: "ThrottlingException",
        503: "ServiceUnavailableException",
    }.get(status, "InternalServerException" if status >= 500 else "ValidationException")


#: Default map from a lowercased AWS error code to the status the gateway answers.
#: Plugins pass only their differences (``error_from_aws(..., overrides=)``; docs/providers/*).
DEFAULT_AWS_STATUS: dict[str, int] = {
    "validationexception": 400,
    "accessdeniedexception": 403,
    # AWS rejecting the gateway's own credentials is not the caller's fault: a 401/403 would
    # make OpenAI clients report *their* key as wrong.
    "unrecognizedclientexception": 502,
    "invalidsignatureexception": 502,
    "incompletesignatureexception": 502,
    "missingauthenticationtokenexception": 502,
    "expiredtokenexception": 502,
    "resourcenotfoundexception": 404,
    "throttlingexception": 429,
    "servicequotaexceededexception": 429,
    "modelnotreadyexception": 503,
    "conflictexception": 409,
    "retryableconflictexception": 409,
    "dependencyfailedexception": 502,
    "badgatewayexception": 502,
    "runtimeclienterror": 502,
    "modelerrorexception": 502,
    "modelstreamerrorexception": 502,
    "modeltimeoutexception": 504,
    "internalserverexception": 502,
    "serviceunavailableexception": 503,
    "serviceunavailable": 503,
    "503": 503,  # no error code at all (a load balancer page): still worth a retry
}


def clean_aws_code(raw: str) -> str:
    """``ValidationException:http://internal...`` or ``com.amazon#X`` -> ``ValidationException``."""
    return raw.split(":")[0].rsplit("#", 1)[-1].strip()


def aws_status(code: str, overrides: Mapping[str, int] | None = None) -> int | None:
    """The gateway status for an AWS error code: ``overrides`` (lowercased codes), then
    ``DEFAULT_AWS_STATUS``; ``None`` when neither knows it."""
    key = code.lower()
    if overrides and key in overrides:
        return overrides[key]
    return DEFAULT_AWS_STATUS.get(key)


def error_from_aws(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    overrides: Mapping[str, int] | None = None,
) -> UpstreamError:
    """Build an ``UpstreamError`` from an AWS error response, parsed as botocore does.

    The code comes from ``x-amzn-ErrorType``, then body ``code``/``Code``, then ``__type``, then the
    status. The gateway's status comes from ``aws_status(code, overrides)``; an unknown code keeps
    a 4xx status and turns anything else into 502.
    """
    try:
        data = msgspec.json.decode(body) if body else {}
    except msgspec.DecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    raw_code = (
        headers.get("x-amzn-errortype")
        or data.get("code")
        or data.get("Code")
        or data.get("__type")
        or str(status)
    )
    code = clean_aws_code(str(raw_code))
    message = data.get("message") or data.get("Message") or body.decode("utf-8", "replace")[:500]
    mapped = aws_status(code, overrides)
    if mapped is None:
        mapped = status if 400 <= status < 500 else 502
    return UpstreamError(
        f"{code}: {message}" if message else code,
        mapped,
        aws_code=code,
        upstream_status=status,
        request_id=headers.get("x-amzn-requestid"),
    )
