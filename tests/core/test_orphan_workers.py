"""`serve --workers N`: a supervisor killed outright (SIGKILL: no handler runs) takes its workers
with it; none keeps serving the port as an orphan (hypercorn's supervisor, granian's and
uvicorn's)."""

from __future__ import annotations

import os
import signal
import sys
import time

import httpx
import pytest

from .procs import Served, _listening_pids, free_port

PY = sys.executable


def _children(pid: int) -> dict[int, str]:
    """The live processes whose parent is ``pid``, with their command lines."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid or fields[0] == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return found


def _workers(supervisor: int) -> list[int]:
    return [p for p, c in _children(supervisor).items() if "resource_tracker" not in c]


def _alive(pid: int) -> bool:
    """Running (an exited process some init has not reaped yet is a zombie: not running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("server", ["hypercorn", "granian", "uvicorn"])
def test_workers_exit_when_the_supervisor_is_killed(tmp_path, server):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-orphans\n  graceful_timeout: 5\n")
    command = [PY, "-m", "outcrop", "serve", "--config", str(cfg), "--host", "127.0.0.1"]
    command += ["--server", server, "--workers", "2"]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/keys.db"}
    # granian and uvicorn do not say which port they bound: they get a free one
    port = free_port() if server != "hypercorn" else None
    with Served(command, env=env, port=port) as served:
        supervisor = served.proc.pid
        # both workers are up (hypercorn's supervisor also runs multiprocessing's resource
        # tracker, which is no worker)
        _wait(
            lambda: len(_workers(supervisor)) == 2,
            120,
            f"two workers never started: {_children(supervisor)}\n{served.output.so_far()}",
        )
        workers = _workers(supervisor)
        started = set(_children(supervisor))
        headers = {"Authorization": "Bearer sk-orphans"}
        assert httpx.get(f"{served.url}/v1/models", headers=headers).status_code == 200
        assert _listening_pids(served.port) & set(workers)

        os.kill(supervisor, signal.SIGKILL)
        served.proc.wait(timeout=30)
        _wait(
            lambda: not any(_alive(p) for p in started),
            60,
            f"still running after the supervisor died: {[p for p in started if _alive(p)]}",
        )
        _wait(lambda: not _listening_pids(served.port), 30, "the port is still held")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{served.url}/v1/models", headers=headers, timeout=5)
    assert len(workers) == 2
