"""Helpers for tests that run `outcrop` in a subprocess.

A server a test starts binds ``--port 0`` and names the port the OS gave it in its
``Running on http://host:port`` line (``Served``). Picking a free port first and handing it over
races under pytest-xdist: between the probe socket's close and the server's bind, another
test's process may take the port, and the server exits before it is ready. Every failure while
waiting shows what the server wrote.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

import httpx

#: hypercorn's "Running on http://127.0.0.1:41234 (CTRL + C to quit)", uvicorn's
#: "Uvicorn running on http://127.0.0.1:41234": the port actually bound.
_RUNNING_ON = re.compile(r"[Rr]unning on (https?)://(\S+):(\d+)")
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}


def free_port() -> int:
    """A port free right now, for a server that cannot bind port 0 itself (another process may
    take it before the server binds it: prefer ``Served``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StderrLines:
    """Collects a process's output lines in a thread (stderr unless ``stream`` is given), so a
    test can wait for a line to appear and a failure can show everything written."""

    def __init__(self, proc: subprocess.Popen, stream: IO[str] | None = None) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        source = stream if stream is not None else proc.stderr
        assert source is not None
        self._thread = threading.Thread(target=self._read, args=(source,), daemon=True)
        self._thread.start()

    def _read(self, source: IO[str]) -> None:
        for line in source:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Block until ``text`` appeared on ``count`` lines; fail once the output closed or time
        ran out."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: self.count(text) >= count or not self._thread.is_alive(), timeout
            )
            assert done and self.count(text) >= count, (
                f"{self.count(text)} of {count} {text!r} lines:\n{''.join(self.lines)}"
            )

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def so_far(self) -> str:
        """What was written until now (the process may still be running)."""
        with self._changed:
            return "".join(self.lines)

    def text(self) -> str:
        """Everything written, once the process closed its output (or 30 s passed)."""
        self._thread.join(timeout=30)
        return self.so_far()

    def bound(self, timeout: float = 90) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of the server's first "Running on" line."""
        self.wait_for("unning on ", timeout=timeout)
        with self._changed:
            found = next(m for line in self.lines if (m := _RUNNING_ON.search(line)))
        host = found.group(2)
        return found.group(1), _ANY_ADDRESS.get(host, host), int(found.group(3))


class PortTaken(AssertionError):
    """The port answered, but another process listens on it (a port picked by ``free_port``
    was taken before the server bound it): start again on another port."""


def _listening_pids(port: int) -> set[int]:
    """The processes holding a TCP socket listening on ``port`` (this network namespace)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids: set[int] = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in fds):
                pids.add(int(pid))
        except OSError:  # gone, or not ours to read
            continue
    return pids


def _listener_is_ours(port: int, proc: subprocess.Popen) -> bool:
    """Whether ``proc`` or one of its descendants (its workers) listens on ``port``."""
    for pid in _listening_pids(port):
        try:
            if os.getsid(pid) == proc.pid:  # started in a session of its own
                return True
            while pid > 1:
                if pid == proc.pid:
                    return True
                with open(f"/proc/{pid}/stat") as f:  # "pid (comm) state ppid ..."
                    pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return False


def wait_ready(
    base: str, proc: subprocess.Popen, timeout: float = 90, output: StderrLines | None = None
) -> None:
    """Poll /health/readiness until 200; fail, with what the process wrote, if it died or time
    ran out. Pass ``output`` when a ``StderrLines`` is reading the process's output. Raises
    ``PortTaken`` when what answered is another process (a ``free_port`` race)."""

    def written() -> str:
        if output is not None:
            return output.text() if proc.poll() is not None else output.so_far()
        if proc.poll() is not None and proc.stderr is not None:
            return proc.stderr.read()
        return "(output not collected)"

    deadline = time.time() + timeout
    while True:
        try:
            if httpx.get(base + "/health/readiness", timeout=1).status_code == 200:
                port = int(base.rsplit(":", 1)[1].split("/")[0])
                if proc.poll() is None and not _listener_is_ours(port, proc):
                    raise PortTaken(f"another process answers on port {port}")
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{written()}")
        if time.time() >= deadline:
            raise AssertionError(f"server did not become ready in {timeout} s:\n{written()}")
        time.sleep(0.1)


class Served:
    """A server process (``outcrop serve``, ``outcrop``, a venv's ``outcrop``...) started on
    ``--port 0``; its stdout and stderr are read together into ``output``.

    ``Served(command, env=..., cwd=...)`` returns once the server answers readiness; with
    ``ready=False`` it returns at once and ``wait_ready()`` waits (start several, then wait).
    ``port=free_port()`` is only for a server that does not log the port it bound (uvicorn
    with outcrop's logging): it races as described above.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        ready: bool = True,
        timeout: float = 180,  # a loaded machine starts --workers N slowly
        port: int | None = None,
        **popen: Any,
    ) -> None:
        popen.setdefault("start_new_session", True)  # kill() reaches the workers too
        self.proc = subprocess.Popen(
            [*command, "--port", str(port or 0)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **popen,
        )
        self.output = StderrLines(self.proc, self.proc.stdout)
        self.timeout = timeout
        # a given port (a server that does not say which port it bound) is known at once
        self.port = port or 0
        self.url = f"http://127.0.0.1:{port}" if port else ""
        if ready:
            self.wait_ready()

    def wait_ready(self) -> str:
        """The server's base URL, once it answers readiness (killed, and its output shown,
        when it does not)."""
        try:
            if not self.url:
                try:
                    scheme, host, self.port = self.output.bound(self.timeout)
                except AssertionError as exc:
                    code = self.proc.poll()
                    raise AssertionError(f"no port bound (exit status {code}): {exc}") from None
                self.url = f"{scheme}://{host}:{self.port}"
            wait_ready(self.url, self.proc, self.timeout, self.output)
        except BaseException:
            self.kill()
            raise
        return self.url

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM (unless it already exited); the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        """SIGKILL to the server and every process it started (``--workers N``), still running
        or orphaned."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the whole group has exited
        self.proc.wait(timeout=30)

    def logs(self) -> str:
        """Everything the server wrote (complete once it exited)."""
        return self.output.text()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
