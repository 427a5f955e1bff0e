"""An open gateway (no client credential configured) serves loopback callers only.

``outcrop serve`` refuses to bind anything else without
``general_settings.allow_unauthenticated: true``; this middleware holds the same line when the
app is served some other way (``hypercorn outcrop.server:app --bind 0.0.0.0:4000``).
"""

from __future__ import annotations

import ipaddress

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import OutcropError

REFUSAL = (
    "this gateway has no client authentication configured and serves loopback callers only: "
    "set general_settings.master_key (or OUTCROP_MASTER_KEY), or "
    "general_settings.allow_unauthenticated: true"
)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8, ``::1`` and IPv4-mapped loopback addresses."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class LoopbackOnly:
    """Pure ASGI: 403 for a caller whose address is not loopback (a Unix socket has none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or client is None or is_loopback(str(client[0])):
            await self.app(scope, receive, send)
            return
        error = OutcropError(REFUSAL, 403, code="loopback_only")
        # Both dialects in one body: OpenAI clients read "error", AWS SDKs read "message" and
        # x-amzn-ErrorType.
        body = error.openai_body()[:-1] + b',"message":' + msgspec.json.encode(REFUSAL) + b"}"
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-amzn-errortype", b"AccessDeniedException"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
