"""AWS error responses -> the gateway's status: one default table, plugins list only differences."""

import msgspec

from outcrop import aws_status, error_from_aws
from outcrop.errors import DEFAULT_AWS_STATUS


def aws_error(
    status: int, code: str | None, message: str = "nope"
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"x-amzn-errortype": f"{code}:http://internal.amazon.com/"} if code else {}
    return status, msgspec.json.encode({"message": message}), headers


def test_default_table_and_fallbacks():
    assert error_from_aws(*aws_error(400, "ThrottlingException")).status == 429
    assert error_from_aws(*aws_error(403, "ExpiredTokenException")).status == 502  # our credentials
    unknown = error_from_aws(*aws_error(418, "TeapotException"))
    assert (unknown.status, unknown.aws_code, unknown.upstream_status) == (
        418,
        "TeapotException",
        418,
    )
    assert error_from_aws(*aws_error(500, "SomethingNewException")).status == 502
    assert error_from_aws(*aws_error(503, None)).status == 503  # a bare 503: retry later


def test_overrides_change_only_what_they_name():
    overrides = {"402": 429, "throttlingexception": 503}
    assert error_from_aws(*aws_error(402, None), overrides=overrides).status == 429
    assert error_from_aws(*aws_error(429, "ThrottlingException"), overrides=overrides).status == 503
    assert (
        error_from_aws(*aws_error(404, "ResourceNotFoundException"), overrides=overrides).status
        == 404
    )
    assert error_from_aws(*aws_error(402, None)).status == 402  # without them: a 4xx is kept


def test_aws_status_reads_overrides_then_the_defaults():
    assert aws_status("ValidationException") == DEFAULT_AWS_STATUS["validationexception"] == 400
    assert aws_status("validationException", {"validationexception": 422}) == 422
    assert aws_status("NeverHeardOfIt") is None
