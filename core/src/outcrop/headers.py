"""Names of the headers Outcrop adds to responses (public: plugins set them too)."""

import os
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers

REQUEST_ID_HEADER = "x-request-id"
#: Milliseconds spent in the gateway, upstream waiting excluded.
OVERHEAD_HEADER = "x-outcrop-overhead-ms"
#: USD cost of a non-streamed call, when usage and a price are known.
COST_HEADER = "x-outcrop-response-cost"
#: A conversation's session id, for providers with server-side sessions (request and response).
SESSION_HEADER = "x-outcrop-session-id"
#: How many upstream attempts the call made (more than 1 after retries, failover, fallbacks).
ATTEMPTS_HEADER = "x-outcrop-attempts"
#: The OpenAI parameters (and system messages) a call carried that its target cannot honour and
#: that were dropped (``drop_params``), comma-separated.
DROPPED_PARAMS_HEADER = "x-outcrop-dropped-params"


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """``{"Name": "value"}`` -> ASGI's ``[(b"name", b"value")]``."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def new_request_id() -> str:
    """A fresh request id: 32 random hex digits (a quarter of ``uuid4().hex``'s cost)."""
    return os.urandom(16).hex()


class RequestHeaders(Headers):
    """A request's headers (Starlette's ``Headers``: case-insensitive, ``getlist``, ``raw``)
    whose ``get`` scans the list once. Starlette's goes through ``Mapping.get`` and raises and
    catches a ``KeyError`` for every absent header, and most looked up per call are absent
    (``x-api-key``, the tags and session headers)."""

    def get(self, key: str, default: Any = None) -> Any:
        wanted = key.lower().encode("latin-1")
        for name, value in self._list:
            if name == wanted:
                return value.decode("latin-1")
        return default
