"""The one check every AWS region passes before it picks a host or a SigV4 scope.

A region becomes a DNS label of the endpoint host (``bedrock-runtime.{region}.amazonaws.com``)
and part of the signature's credential scope, and it comes from many places: the config, the
environment and profile, a model ARN, a request path, a client's own SigV4 scope. Anything that
is not shaped like a region (``attacker.test#``, ``x:8443#``, ``a/b``, ``US-WEST-2``...) would
move the signed request, with the gateway's credentials, to a host AWS does not own.

The check is a pattern, not botocore's list of known regions: AWS opens regions before a pinned
botocore knows them, and what keeps requests on AWS hosts is the shape (ASCII lowercase letters,
digits and ``-`` only: no ``.``, ``#``, ``@``, ``:``, ``/`` or ``%``), which is what this checks.
"""

from __future__ import annotations

import re

from .errors import OutcropError, clip

#: ``us-west-2``, ``ap-southeast-5``, ``us-gov-west-1``, ``cn-north-1``, ``eusc-de-east-1``.
#: ASCII only (``[0-9]``, not ``\d``, which matches other scripts' digits too).
REGION_PATTERN = re.compile(r"[a-z]{2,}(?:-[a-z]+)+-[0-9]{1,2}")
#: Longer than any region AWS names; keeps echoed values short.
MAX_REGION_LENGTH = 40
#: Regions that passed the check (bounded: a client's SigV4 scope can name any string).
_CHECKED: set[str] = set()
_CHECKED_MAX = 256


def is_region(value: object) -> bool:
    """True when ``value`` is shaped like an AWS region (and so safe in a host name)."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_REGION_LENGTH
        and REGION_PATTERN.fullmatch(value) is not None
    )


def region_problem(value: object, source: str) -> str:
    """The message for a value from ``source`` that is not a region."""
    return (
        f"{source}: {clip(value)!r} is not an AWS region (expected lowercase letters, digits and "
        "'-', like us-west-2)"
    )


def check_region(value: object, source: str, status: int = 400, param: str | None = None) -> str:
    """``value`` when it is a region; otherwise raise ``OutcropError`` naming ``source``.

    ``status`` is 400 when the region came with the request (a model string, a path, a SigV4
    scope) and 500 when it came from the gateway's own settings.
    """
    if type(value) is str and value in _CHECKED:  # every request checks its signing region
        return value
    if is_region(value):
        if len(_CHECKED) < _CHECKED_MAX:
            _CHECKED.add(value)  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    raise OutcropError(region_problem(value, source), status, code="invalid_region", param=param)


def arn_region(arn: str, where: str = "model ARN") -> str | None:
    """The region an ARN fixes (``arn:{partition}:{service}:{region}:...``): ``None`` for a
    value that is not an ARN or an ARN without a region. Raises ``OutcropError`` (400) when the
    region field is not a region: it would pick the host the request is signed for."""
    if not arn.startswith("arn:"):
        return None
    parts = arn.split(":", 4)
    region = parts[3] if len(parts) > 3 else ""
    return check_region(region, f"the region of the {where}", param="model") if region else None
