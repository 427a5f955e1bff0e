"""Helpers for tests that run `outcrop` in a subprocess."""

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Poll /health/readiness until 200; fail if the process died or time ran out."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(base + "/health/readiness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        assert time.time() < deadline, "server did not become ready"
        time.sleep(0.1)
