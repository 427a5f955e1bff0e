"""Suite-wide rules: tests only ever connect to loopback, and never reach AWS.

The loopback guard (``tests/_loopback/loopback_guard.py``) is an audit hook installed in this
process and, through ``PYTHONPATH`` and ``sitecustomize``, in every Python subprocess a test
starts. Any connection or name lookup leaving the machine is refused before it happens and
logged; a test during which one was refused fails, even if the code under test swallowed it.

Gateways with a master key keep their virtual keys (``outcrop-keys``) in a throw-away SQLite
file, never in an ``outcrop.db`` beside the test runner's working directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

GUARD_DIR = Path(__file__).parent / "_loopback"
sys.path.insert(0, str(GUARD_DIR))

import loopback_guard  # noqa: E402

if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = (
        f"sqlite:///{tempfile.mkdtemp(prefix='outcrop-tests-')}/outcrop-tests.db"
    )


def pytest_configure(config: pytest.Config) -> None:
    fd, log = tempfile.mkstemp(prefix="outcrop-loopback-", suffix=".log")
    os.close(fd)
    os.environ[loopback_guard.ENV] = log
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH")) if p
    )
    # botocore must never fall back to the instance metadata service (169.254.169.254)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    loopback_guard.install(log)


def pytest_unconfigure(config: pytest.Config) -> None:
    log = os.environ.pop(loopback_guard.ENV, None)
    if log and os.path.exists(log):
        os.unlink(log)


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    yield
    # also what a fixture or a background thread tried since the previous test ended
    refused = loopback_guard.take()
    if refused:
        pytest.fail(
            "a test tried to reach a non-loopback address:\n  " + "\n  ".join(refused),
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    refused = loopback_guard.take()  # session fixtures' teardown, after the last test
    if refused:
        print("\nnon-loopback connection attempts after the last test:\n  " + "\n  ".join(refused))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


REDIS_URL = os.environ.get("OUTCROP_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_settings() -> Iterator[dict[str, str]]:
    """``general_settings`` for counters on the machine's Redis under a key prefix of this
    test's own (other tests share the server), deleted afterwards. Redis missing is a failure,
    never a skip."""
    import uuid

    import redis

    prefix = f"outcrop-test-{uuid.uuid4().hex[:12]}:"
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(f"Redis is required for these tests ({REDIS_URL}): {exc}", pytrace=False)
    yield {"redis_url": REDIS_URL, "redis_key_prefix": prefix}
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
