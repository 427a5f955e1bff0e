"""Knowing when the client has gone: the body is read, then a watcher waits for the disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class Disconnected(Exception):
    """The client went away before the answer was complete."""


async def until_disconnect(work: Awaitable[None], receive: Receive) -> None:
    """Run ``work`` in this task; if the client disconnects first, cancel it and raise
    ``Disconnected``. Only the watcher is a new task: this runs on every request."""
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        current.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await work
    except asyncio.CancelledError:
        if gone and current.uncancel() == 0:
            raise Disconnected from None
        raise
    finally:
        watcher.cancel()
