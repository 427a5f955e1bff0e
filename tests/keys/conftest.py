"""Fixtures for the virtual-key tests: every test runs on SQLite and on the machine's
PostgreSQL (127.0.0.1:5432, database ``test``; a schema of its own per test, dropped after).
PostgreSQL missing is a failure, never a skip."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import outcrop
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, ClaudeReply
from outcrop.testing.replies import ConverseReply
from tests.clients import (
    calls_settled,
    isolated_aws_env,  # noqa: F401  (autouse)
    on_loop,
)

from ..bedrock_passthrough.conftest import tls_files
from ..core.converse_plugin import ConversePlugin

MASTER = "sk-keys-master-0123456789"
SALT = "keys-test-salt-key-0123456789"
PG_BASE = os.environ.get("OUTCROP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CHAT_MODEL = "testprov/amazon.nova-lite-v1:0"
BEDROCK_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.fixture(autouse=True)
def _salt_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTCROP_SALT_KEY", SALT)


def postgres_schema_url(schema: str) -> str:
    return f"{PG_BASE}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the local PostgreSQL, dropped afterwards."""
    schema = f"outcrop_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        PG_BASE.replace("postgresql://", "postgresql+psycopg://"),
        connect_args={"connect_timeout": 5},
    )
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is required for these tests ({PG_BASE}): {exc}", pytrace=False)
    yield postgres_schema_url(schema)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/outcrop.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture(autouse=True)
def _fixed_usage(bedrock_simulator: Any) -> None:
    """Every Converse answer reports 10 input and 5 output tokens, so costs are known."""
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))


@pytest.fixture
def gateway_factory(database_url: str, gateway_factory: Callable[..., Any]) -> Callable[..., Any]:
    """The core's factory, set up after the database so its gateways stop before the schema
    is dropped."""
    return gateway_factory


@pytest.fixture
def chat_plugin(outcrop_plugin: Callable[..., str]) -> ConversePlugin:
    plugin = ConversePlugin()
    outcrop_plugin(plugin, "testprov")
    return plugin


@pytest.fixture
def make_config(
    bedrock_simulator: Any,
    simulator_params: Callable[..., dict[str, Any]],
    database_url: str,
    chat_plugin: ConversePlugin,
) -> Callable[..., dict[str, Any]]:
    def make(**general: Any) -> dict[str, Any]:
        return {
            "model_list": [
                {
                    "model_name": "nova",
                    "litellm_params": simulator_params(
                        CHAT_MODEL, input_cost_per_token=0.001, output_cost_per_token=0.002
                    ),
                },
                {"model_name": "other", "litellm_params": simulator_params(CHAT_MODEL)},
            ],
            "general_settings": {
                "master_key": MASTER,
                "database_url": database_url,
                "allow_raw_models": True,
                **general,
            },
            "bedrock_passthrough": {
                "aws_region_name": "us-west-2",
                "aws_access_key_id": TEST_ACCESS_KEY,
                "aws_secret_access_key": TEST_SECRET_KEY,
                "api_base": bedrock_simulator.url,
            },
        }

    return make


@pytest.fixture
def gateway(gateway_factory: Callable[..., Any], make_config: Callable[..., dict[str, Any]]) -> Any:
    return gateway_factory(make_config())


class Admin:
    """The management API with the master key (raw HTTP)."""

    def __init__(self, url: str, key: str = MASTER, verify: Any = True) -> None:
        self.url = url
        self.headers = {"authorization": f"Bearer {key}"}
        self.verify = verify

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> Any:
        r = httpx.post(self.url + path, json=body, headers=self.headers, verify=self.verify)
        assert r.status_code == status, r.text
        return r.json()

    def get(self, path: str, status: int = 200, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, headers=self.headers, verify=self.verify)
        assert r.status_code == status, r.text
        return r.json()

    def generate(self, **fields: Any) -> dict[str, Any]:
        return self.post("/key/generate", fields)


@pytest.fixture
def admin(gateway: Any) -> Admin:
    return Admin(gateway.url)


def service_of(gateway: Any) -> Any:
    """The key service registered on a running gateway."""
    pm = gateway.gateway.pm
    return next(p for n, p in pm.list_name_plugin() if n.startswith("outcrop_keys.service."))


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def flushed(gateway: Any, timeout: float = 10.0) -> None:
    """Wait until every call ``gateway`` answered has its spend row in the database.

    A call's row is buffered when the call ends, which for a relayed or streamed answer is
    after the client has it: so first no call may be in flight, then no row buffered. Both are
    read on the gateway's own loop, where a call ends (and buffers its row) in one step.
    """
    service = service_of(gateway)
    calls_settled(gateway.server, timeout)
    assert wait_for(lambda: on_loop(gateway.server, lambda: not service.buffer), timeout), (
        f"spend rows were not written: {service.stats()}"
    )


__all__ = [
    "BEDROCK_ID",
    "MASTER",
    "Admin",
    "flushed",
    "outcrop",
    "service_of",
    "tls_files",
    "wait_for",
]


def answer_claude_and_converse(bedrock_simulator: Any) -> None:
    """A fresh simulator answering Claude's InvokeModel (``/v1/messages``) and Converse with
    "Hello" (10 prompt, 5 completion tokens)."""
    bedrock_simulator.reset()
    claude = ClaudeReply("Hello", usage=(10, 5))
    bedrock_simulator.reply(claude, operation="InvokeModel", path="anthropic")
    bedrock_simulator.reply(ConverseReply("Hello", usage=(10, 5)), operation="Converse")
