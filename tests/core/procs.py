"""Helpers for tests that run `outcrop` in a subprocess."""

import socket
import subprocess
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Poll /health/readiness until 200; fail if the process died or time ran out."""
    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(base + "/health/readiness", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(
                f"process exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
            )
        assert time.time() < deadline, "server did not become ready"
        time.sleep(0.1)


class StderrLines:
    """Collects a process's stderr lines in a thread, so a test can wait for a line to appear."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Block until ``text`` appeared on ``count`` lines; fail once stderr closed or time ran out."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: self.count(text) >= count or not self._thread.is_alive(), timeout
            )
            assert done and self.count(text) >= count, (
                f"{self.count(text)} of {count} {text!r} lines:\n{''.join(self.lines)}"
            )

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)
