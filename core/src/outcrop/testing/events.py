"""``CallEvents``: a plugin that records a gateway's ``outcrop_after_call`` events for tests and
waits for them with a deadline.

A call's event is emitted when the call is over, on the gateway's thread: for an answer sent in
pieces (a stream, a pass-through's relayed body) that is after the last byte reached the client,
so the client's call can return before the event exists. Read events through ``wait_for``,
``wait_count``, ``one`` or ``last``, never ``events`` right after a response.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..hookimpl import hookimpl
from ..types import CallEvent

#: How long the waiting methods wait unless told (seconds): generous, a loaded CI machine.
DEFAULT_TIMEOUT = 10.0


class CallEvents:
    """Records every ``outcrop_after_call`` event (optionally only one ``surface``'s).

    Register it before the gateway starts, with the ``call_events`` fixture or
    ``outcrop_plugin(CallEvents())``. It runs after every other observer of the event
    (``trylast``), so once it has an event, other plugins' observers have seen it too.
    Thread-safe: the gateway appends on its thread while the test waits on its own.
    """

    def __init__(self, surface: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.surface = surface
        self.timeout = timeout
        self._events: list[CallEvent] = []
        self._changed = threading.Condition()

    @hookimpl(trylast=True)
    def outcrop_after_call(self, event: CallEvent) -> None:
        if self.surface is not None and event.surface != self.surface:
            return
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    @property
    def events(self) -> list[CallEvent]:
        """The events recorded so far, oldest first (a copy: it does not wait)."""
        with self._changed:
            return list(self._events)

    def __len__(self) -> int:
        with self._changed:
            return len(self._events)

    def clear(self) -> None:
        """Forget the events recorded so far."""
        with self._changed:
            self._events.clear()

    def _until(
        self, ready: Callable[[list[CallEvent]], bool], timeout: float | None, what: str
    ) -> list[CallEvent]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._changed:
            while not ready(self._events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what}; after-call events so far: {self._events!r}")
                self._changed.wait(left)
            return list(self._events)

    def wait_for(
        self, predicate: Callable[[CallEvent], bool], timeout: float | None = None
    ) -> CallEvent:
        """The first event ``predicate`` accepts, waiting up to ``timeout`` seconds for it;
        ``AssertionError`` (listing what came) when none does in time."""
        found: list[CallEvent] = []

        def ready(events: list[CallEvent]) -> bool:
            found[:] = [e for e in events if predicate(e)][:1]
            return bool(found)

        self._until(ready, timeout, "no after-call event matched")
        return found[0]

    def wait_count(self, count: int, timeout: float | None = None) -> list[CallEvent]:
        """All events once there are at least ``count``, waiting up to ``timeout`` seconds."""
        return self._until(
            lambda events: len(events) >= count, timeout, f"expected {count} after-call events"
        )

    def one(self, timeout: float | None = None) -> CallEvent:
        """The single event of a test that made one call: waits for it, and fails if more
        than one was recorded by then."""
        events = self.wait_count(1, timeout)
        assert len(events) == 1, f"expected one after-call event, got {events!r}"
        return events[0]

    def last(self, timeout: float | None = None) -> CallEvent:
        """The newest event, waiting for a first one if there is none yet."""
        return self.wait_count(1, timeout)[-1]
