"""Fixtures for the admin page: the keys plugin's gateway fixtures (a simulator-backed gateway
with a master key, keys on SQLite and PostgreSQL) and ``UI``, a signed-in HTTP client."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from outcrop.testing.replies import ConverseReply

from ..keys.conftest import (  # noqa: F401 (fixtures)
    MASTER,
    Admin,
    _salt_key,
    admin,
    chat_plugin,
    database_url,
    flushed,
    gateway_factory,
    isolated_aws_env,
    make_config,
    pg_url,
    service_of,
    wait_for,
)

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


class UI:
    """The admin page through raw HTTP, as a browser without JavaScript uses it."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, follow_redirects=False, timeout=30, **kwargs)
        self.csrf = ""

    def close(self) -> None:
        self.client.close()

    def login(self, key: str = MASTER, expect: int = 303) -> httpx.Response:
        form = self.client.get("/ui/login")
        assert form.status_code == 200, form.text
        r = self.client.post(
            "/ui/login", data={"key": key, "csrf": csrf_of(form.text), "next": "/ui/keys"}
        )
        assert r.status_code == expect, r.text
        if expect == 303:
            self.csrf = csrf_of(self.get("/ui/keys").text)
        return r

    def get(self, path: str, expect: int = 200, **params: Any) -> httpx.Response:
        r = self.client.get(path, params=params)
        assert r.status_code == expect, (r.status_code, r.text[:2000])
        return r

    def post(self, path: str, data: dict[str, Any], status: int = 303) -> httpx.Response:
        r = self.client.post(path, data={"csrf": self.csrf, **data})
        assert r.status_code == status, (r.status_code, r.text[:2000])
        return r


@pytest.fixture
def gateway(gateway_factory: Any, make_config: Any, bedrock_simulator: Any) -> Any:  # noqa: F811
    """The keys tests' gateway: models ``nova`` (priced) and ``other``; every Converse answer
    reports 10 input and 5 output tokens."""
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))
    return gateway_factory(make_config())


@pytest.fixture
def ui(gateway: Any) -> Any:
    client = UI(gateway.url)
    client.login()
    yield client
    client.close()
