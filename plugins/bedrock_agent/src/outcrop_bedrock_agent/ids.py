"""Model strings and session ids: what InvokeAgent's URI labels accept (botocore's InvokeAgent model)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from outcrop import SESSION_HEADER, OutcropError, clip

PROVIDER = "bedrock_agent"
SERVICE = "bedrock-agent-runtime"
SIGNING_NAME = "bedrock"
PREFIX = "bedrock/agent/"
EXAMPLE_MODEL = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
EXPECTED_FORM = (
    "expected bedrock/agent/{AGENT_ID}/{ALIAS_ID}, each ID 1-10 letters or digits "
    f"(for example {EXAMPLE_MODEL})"
)

#: Request fields (body or Python keyword) that carry the session id; the header is the core's
#: ``outcrop.SESSION_HEADER``.
SESSION_FIELD = "session_id"
SESSION_FIELD_AWS = "sessionId"

_AGENT_ID = re.compile(r"[0-9a-zA-Z]{1,10}\Z")
# sessionId / memoryId: min 2, max 100, ^[0-9a-zA-Z._:-]+$
_SESSION_ID = re.compile(r"[0-9a-zA-Z._:-]{2,100}\Z")


def parse_model(model: str) -> tuple[str, str]:
    """``bedrock/agent/{AGENT_ID}/{ALIAS_ID}`` -> ``(agent_id, alias_id)``; 400 otherwise."""
    parts = model.removeprefix(PREFIX).split("/") if model.startswith(PREFIX) else []
    if len(parts) != 2 or not all(_AGENT_ID.match(p) for p in parts):
        raise OutcropError(
            f"invalid Bedrock agent model {clip(model)!r}: {EXPECTED_FORM}",
            400,
            param="model",
            code="invalid_model",
        )
    return parts[0], parts[1]


def valid_session_id(value: str) -> bool:
    return bool(_SESSION_ID.match(value))


def new_session_id() -> str:
    """32 hex characters: inside InvokeAgent's ``[0-9a-zA-Z._:-]{2,100}``."""
    return uuid.uuid4().hex


def requested_session_id(params: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The session id the client asked for, validated. It may come as ``session_id``,
    ``sessionId`` or the ``x-outcrop-session-id`` header; when several are sent they must
    agree (a 400 otherwise: picking one would silently continue the wrong conversation)."""
    found = {
        name: _checked(params[name], name)
        for name in (SESSION_FIELD, SESSION_FIELD_AWS)
        if params.get(name) is not None
    }
    header = headers.get(SESSION_HEADER)
    if header is not None:
        found[SESSION_HEADER] = _checked(header, SESSION_HEADER)
    if len(set(found.values())) > 1:
        names = ", ".join(f"`{n}`" for n in found)
        raise OutcropError(
            f"the session ids in {names} differ: send one session id",
            400,
            param=next(iter(found)),
            code="session_mismatch",
        )
    return next(iter(found.values()), None)


def _checked(value: Any, where: str) -> str:
    if not isinstance(value, str) or not valid_session_id(value):
        raise OutcropError(
            f"invalid session id in `{where}`: expected 2-100 characters of letters, digits "
            "and . _ : - (omit it to start a new session)",
            400,
            param=where,
            code="invalid_session_id",
        )
    return value
