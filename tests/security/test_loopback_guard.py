"""The suite-wide loopback guard (tests/conftest.py) refuses every way out of the machine.

192.0.2.1 is TEST-NET-1 (RFC 5737): never routed. The hook raises before the system call, so
not even a SYN is sent; each test takes the refusal out of the guard's log so it passes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import httpx
import loopback_guard
import pytest
from loopback_guard import NonLoopbackConnection

OUTSIDE = ("192.0.2.1", 443)


def _refused() -> list[str]:
    return loopback_guard.take()


def test_connect_to_a_non_loopback_address_is_refused_before_it_happens():
    with socket.socket() as s, pytest.raises(NonLoopbackConnection, match=r"192\.0\.2\.1"):
        s.connect(OUTSIDE)
    with socket.socket() as s, pytest.raises(NonLoopbackConnection):
        s.connect_ex(OUTSIDE)
    with socket.socket(socket.AF_INET6) as s, pytest.raises(NonLoopbackConnection):
        s.connect(("2001:db8::1", 443, 0, 0))
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s,
        pytest.raises(NonLoopbackConnection),
    ):
        s.sendto(b"x", ("192.0.2.1", 53))
    refused = _refused()
    assert len(refused) == 4 and all("socket." in line for line in refused)


def test_name_lookups_outside_the_machine_are_refused():
    for lookup in (
        lambda: socket.getaddrinfo("example.com", 443),
        lambda: socket.gethostbyname("attacker.test"),
        lambda: socket.gethostbyaddr("192.0.2.1"),
    ):
        with pytest.raises(NonLoopbackConnection, match="name lookup"):
            lookup()
    assert len(_refused()) == 3


def test_asyncio_and_http_clients_are_refused_too():
    async def dial() -> None:
        await asyncio.open_connection(*OUTSIDE)

    with pytest.raises(NonLoopbackConnection):
        asyncio.run(dial())
    # an HTTP client may wrap or swallow the error: the log still names the attempt
    with pytest.raises(Exception):  # noqa: B017 - whichever way httpx reports it
        httpx.get("http://192.0.2.1:8080/", timeout=2)
    refused = _refused()
    assert len(refused) == 2 and all("192.0.2.1" in line for line in refused)


def test_loopback_stays_open():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, server.getsockname()[1]), timeout=5):
                pass
        assert socket.getaddrinfo("localhost", 80)
    assert _refused() == []


def test_subprocesses_are_guarded_and_their_attempts_fail_the_test():
    code = "import socket; socket.create_connection(('192.0.2.1', 443), timeout=1)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "NonLoopbackConnection" in done.stderr
    refused = _refused()
    assert len(refused) == 1 and "192.0.2.1" in refused[0]
    assert not refused[0].startswith(f"pid {os.getpid()}:")  # logged by the child
