"""Session ids: what InvokeAgent's ``sessionId`` accepts, and where a client sends one."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from outcrop import SESSION_HEADER, OutcropError

#: Request fields (body or Python keyword) that carry the session id; the header is the core's
#: ``outcrop.SESSION_HEADER``.
SESSION_FIELD = "session_id"
SESSION_FIELD_AWS = "sessionId"

# sessionId / memoryId: min 2, max 100, ^[0-9a-zA-Z._:-]+$
_SESSION_ID = re.compile(r"[0-9a-zA-Z._:-]{2,100}\Z")


def valid_session_id(value: str) -> bool:
    return bool(_SESSION_ID.match(value))


def new_session_id() -> str:
    """32 random hex characters: inside InvokeAgent's ``[0-9a-zA-Z._:-]{2,100}`` (``os.urandom``:
    a quarter of ``uuid4().hex``'s cost, the same 128 bits less uuid4's 6 fixed ones)."""
    return os.urandom(16).hex()


def requested_session_id(params: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The session id the client asked for, validated. It may come as ``session_id``,
    ``sessionId`` or the ``x-outcrop-session-id`` header; when several are sent they must
    agree (a 400 otherwise: picking one would silently continue the wrong conversation)."""
    found = (
        {
            name: _checked(params[name], name)
            for name in (SESSION_FIELD, SESSION_FIELD_AWS)
            if params.get(name) is not None
        }
        if params
        else {}
    )
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
