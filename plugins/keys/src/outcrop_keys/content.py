"""What a spend row keeps of a call's request and answer with ``store_prompts_in_spend_logs``:
the JSON document when the body is one, else its text, at most ``MAX_STORED`` bytes each."""

from __future__ import annotations

from typing import Any

import msgspec

from outcrop import CallEvent

#: The most of one request or answer body a spend row keeps (the core captures no more).
MAX_STORED = CallEvent.CAPTURED_BYTES


def stored_body(body: bytes | None) -> Any:
    """The body as JSON for the ``messages``/``response`` columns (``None`` when absent).

    A whole JSON body is kept as its document; anything else (an event stream, a body cut at
    the limit) as ``{"text": ..., "truncated": bool}``."""
    if body is None:
        return None
    truncated = len(body) >= MAX_STORED
    part = body[:MAX_STORED]
    if not truncated:
        try:
            return msgspec.json.decode(part)
        except msgspec.DecodeError:
            pass
    return {"text": part.decode("utf-8", "replace"), "truncated": truncated}
