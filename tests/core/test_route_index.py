"""The indexed router picks exactly the route Starlette's first-match loop picks."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route, Router

from outcrop.app import create_app
from outcrop.route_index import IndexedRouter


def _answer(text: str):
    async def endpoint(request):
        return PlainTextResponse(text)

    return endpoint


def _app(routes) -> Starlette:
    app = Starlette(routes=routes)
    app.router = IndexedRouter(routes)
    return app


async def _get(app, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


async def test_an_earlier_route_keeps_winning():
    app = _app(
        [
            Route("/v1/{name}", _answer("plugin pattern"), methods=["GET"]),
            Mount("/v1", routes=[Route("/chat", _answer("plugin mount"), methods=["POST"])]),
            Route("/v1/chat", _answer("core"), methods=["POST", "GET"]),
        ]
    )
    assert (await _get(app, "POST", "/v1/chat")).text == "plugin mount"
    assert (await _get(app, "GET", "/v1/chat")).text == "plugin pattern"


async def test_other_methods_and_unknown_paths_behave_as_before():
    app = _app([Route("/only-post", _answer("ok"), methods=["POST"])])
    assert (await _get(app, "POST", "/only-post")).text == "ok"
    assert (await _get(app, "GET", "/only-post")).status_code == 405
    assert (await _get(app, "GET", "/nowhere")).status_code == 404


async def test_routes_added_later_are_seen():
    app = _app([Route("/a", _answer("a"), methods=["GET"])])
    assert (await _get(app, "GET", "/a")).text == "a"
    app.router.routes.insert(0, Route("/a", _answer("newer"), methods=["GET"]))
    assert (await _get(app, "GET", "/a")).text == "newer"


async def test_a_path_with_parameters_keeps_the_loops_winner_and_is_remembered():
    from outcrop.route_index import SEEN_PATH_LENGTH, SEEN_PATHS

    app = _app(
        [
            Route("/x", _answer("literal"), methods=["GET"]),
            Route("/bedrock/model/{name}/invoke", _answer("earlier pattern"), methods=["POST"]),
            Route("/bedrock/{path:path}", _answer("catch-all"), methods=["POST", "GET"]),
        ]
    )
    for _ in range(2):  # the second time from the remembered winner
        assert (await _get(app, "POST", "/bedrock/model/m/invoke")).text == "earlier pattern"
        assert (await _get(app, "GET", "/bedrock/model/m/invoke")).text == "catch-all"
        assert (await _get(app, "POST", "/bedrock/model/m/converse")).text == "catch-all"
    assert (await _get(app, "PUT", "/bedrock/model/m/converse")).status_code == 405
    for i in range(SEEN_PATHS + 10):
        assert (await _get(app, "POST", f"/bedrock/model/m{i}/converse")).text == "catch-all"
    assert 0 < len(app.router._seen) <= SEEN_PATHS
    long = "/bedrock/" + "a" * SEEN_PATH_LENGTH
    app.router._seen.clear()
    assert (await _get(app, "POST", long)).text == "catch-all"
    assert not app.router._seen


def test_the_gateways_table_agrees_with_starlettes_loop(tmp_path):
    """Every (path, method) of the real gateway, every plugin installed: the same winner."""
    app = create_app({"model_list": [], "general_settings": {"master_key": "sk-route-index-test"}})
    router = app.router
    assert isinstance(router, IndexedRouter)
    index = router._build()
    assert ("/v1/chat/completions", "POST") in index
    plain = Router(router.routes)
    for (path, method), route in index.items():
        scope = {"type": "http", "path": path, "root_path": "", "method": method}
        first = next(r for r in plain.routes if r.matches(scope)[0] is Match.FULL)
        assert first is route, (path, method)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings"])
def test_core_paths_are_in_the_table(path):
    app = create_app({"model_list": []})
    assert (path, "POST") in app.router._build()
