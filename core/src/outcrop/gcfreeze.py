"""``gc.freeze()`` once the served app has started: a server-entry concern, not the app's.

The objects made at start-up (service models, plugins, the app) never die; frozen, full
collections under load stop re-scanning them (the pauses this removes are in
docs/performance.md). Only ``outcrop serve`` and its workers do this: an app embedded in another
process (tests, another ASGI host) leaves that process's collector alone.

Before that, ``outcrop serve`` keeps the collector off while it imports and builds the app
(``pause_until_started``): start-up makes few reference cycles, and the collections its ~100k
new objects would trigger cost about a tenth of its CPU to ready (docs/performance.md). The
freeze collects once and turns it back on.
"""

from __future__ import annotations

import gc
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

_paused = False


def pause_until_started() -> None:
    """Turn the collector off until ``resume`` (the freeze after start-up calls it)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Turn the collector back on if ``pause_until_started`` turned it off."""
    global _paused
    if _paused:
        gc.enable()
        _paused = False


def freeze_after_startup(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so the collector freezes what exists once its lifespan start-up completed."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def send_then_freeze(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
                resume()
            await send(message)

        await app(scope, receive, send_then_freeze)

    return wrapped
