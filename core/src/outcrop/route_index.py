"""A Starlette router that finds the route of a fixed path at once.

Plugin routes are matched before the core's own (the hook's contract), so with the key API,
the admin page and the rest installed, Starlette tried some fifty patterns before reaching
``/v1/chat/completions`` on every call. This router answers the same question from a table:
for each path that a route declares literally and each method that route takes, which route
Starlette's own first-match loop would pick. It builds the table from that very loop, so the
winner is the same route, and anything not in the table (paths with parameters, other
methods, websockets) goes through the loop as before.

A path with parameters (the pass-through's ``/bedrock/{path:path}``) is found by that loop once;
which route won is then remembered for that path and method (at most ``SEEN_PATHS`` paths of at
most ``SEEN_PATH_LENGTH`` characters; the table is emptied when full), so the next call with
that path skips the loop too. Matching depends only on the path and the method when there is no
``Host`` route, so the remembered winner is the loop's.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Host, Match, Route, Router
from starlette.types import Receive, Scope, Send

__all__ = ["SEEN_PATHS", "SEEN_PATH_LENGTH", "IndexedRouter"]

SEEN_PATHS = 1024
SEEN_PATH_LENGTH = 512


class IndexedRouter(Router):
    """``Router`` with a ``(path, method) -> route`` table for literal paths."""

    _index: dict[tuple[str, str], BaseRoute]
    _seen: dict[tuple[str, str], BaseRoute]
    _indexed: tuple[int, int] = (-1, -1)

    def _build(self) -> dict[tuple[str, str], BaseRoute]:
        index: dict[tuple[str, str], BaseRoute] = {}
        if any(isinstance(route, Host) for route in self.routes):
            return index  # a host route matches on headers: the path alone does not decide
        for route in self.routes:
            if not isinstance(route, Route) or route.param_convertors:
                continue
            for method in route.methods or ():
                key = (route.path, method)
                if key not in index:
                    winner = self._first_full_match(route.path, method)
                    if winner is not None:
                        index[key] = winner
        return index

    def _first_full_match(self, path: str, method: str) -> BaseRoute | None:
        scope = {"type": "http", "path": path, "root_path": "", "method": method}
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
        return None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # the table follows the route list (tests and plugins may add routes later)
            if self._indexed != (id(self.routes), len(self.routes)):
                self._index = self._build()
                self._seen = {}
                self._indexed = (id(self.routes), len(self.routes))
            key = (get_route_path(scope), scope["method"])
            route = self._index.get(key) or self._seen.get(key)
            if route is None and self._index:  # no Host route: the path and method decide
                route = self._winner(scope, key)
            if route is not None:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)

    def _winner(self, scope: Scope, key: tuple[str, str]) -> BaseRoute | None:
        """The route Starlette's loop picks for this path and method (remembered), if any."""
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                if len(key[0]) <= SEEN_PATH_LENGTH:
                    if len(self._seen) >= SEEN_PATHS:
                        self._seen.clear()
                    self._seen[key] = route
                return route
        return None
