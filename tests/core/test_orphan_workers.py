"""`serve --workers N`: a supervisor killed outright (SIGKILL: no handler runs) takes its workers
with it; none keeps serving the port as an orphan (hypercorn's supervisor, granian's and
uvicorn's)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
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
    _kill_the_supervisor(tmp_path, server, os.environ)


#: Put first on PYTHONPATH: every process it starts finds no libc through ctypes (so no
#: prctl), as on a platform without PR_SET_PDEATHSIG; then the suite's loopback guard.
_NO_PRCTL = """
import ctypes, os, sys

class _NoLibc(ctypes.CDLL):
    def __init__(self, name, *args, **kwargs):
        if name is None:
            raise OSError("simulated: no libc, no prctl")
        super().__init__(name, *args, **kwargs)

ctypes.CDLL = _NoLibc
if os.environ.get("OUTCROP_TEST_LOOPBACK_LOG"):
    sys.path.append(os.environ["OUTCROP_TEST_GUARD_DIR"])
    import loopback_guard
    loopback_guard.install(os.environ["OUTCROP_TEST_LOOPBACK_LOG"])
"""


def test_uvicorn_workers_poll_their_parent_where_prctl_is_missing(tmp_path):
    """uvicorn's workers run uvicorn's loop, not Outcrop's: where the death signal cannot be
    asked for, a thread polls the parent (``watch_parent``) and the worker drains on SIGTERM;
    the log says so (the only path that could have ended them)."""
    from tests.conftest import GUARD_DIR

    site = tmp_path / "no-prctl"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_NO_PRCTL)
    env = {**os.environ, "PYTHONPATH": str(site), "OUTCROP_TEST_GUARD_DIR": str(GUARD_DIR)}
    output = _kill_the_supervisor(tmp_path, "uvicorn", env)
    assert output.count("supervisor_gone") == 2, output


def _kill_the_supervisor(tmp_path, server: str, environ) -> str:
    """Serve with two workers, SIGKILL the supervisor, see every worker end and the port
    freed; the server's output."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-orphans\n  graceful_timeout: 5\n")
    command = [PY, "-m", "outcrop", "serve", "--config", str(cfg), "--host", "127.0.0.1"]
    command += ["--server", server, "--workers", "2"]
    env = {**environ, "DATABASE_URL": f"sqlite:///{tmp_path}/keys.db"}
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
    return served.output.text()  # the pipe closed: every worker's last line is in


#: A worker as `outcrop.serving.parent` makes one: SIGTERM handling first, then
#: ``end_with_parent``; on SIGTERM it writes "terminated" to the file named by argv[2].
_WORKER = """
import os, signal, sys, time
from outcrop.serving.parent import end_with_parent
supervisor = int(sys.argv[1])
def on_term(*_):
    with open(sys.argv[2], "w") as f:
        f.write("terminated")
    os._exit(0)
signal.signal(signal.SIGTERM, on_term)
deadline = time.monotonic() + 30
while os.getppid() == supervisor:  # until the supervisor is gone (the race's worst case)
    assert time.monotonic() < deadline
    time.sleep(0.01)
end_with_parent(supervisor)
time.sleep(30)
"""

#: A supervisor that starts the worker (from its main thread, or from a thread that then
#: ends) and exits, or keeps running, as argv says.
_SUPERVISOR = """
import os, subprocess, sys, threading, time
worker, marker, how = sys.argv[1], sys.argv[2], sys.argv[3]
if how == "exits":
    subprocess.Popen([sys.executable, "-c", worker, str(os.getpid()), marker])
else:  # from a thread that ends, once the worker asked, while this process lives on
    ready = worker.replace("while os.getppid() == supervisor", "while False").replace(
        "time.sleep(30)", "print('asked', flush=True); time.sleep(30)"
    )
    def start():
        argv = [sys.executable, "-c", ready, str(os.getpid()), marker]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"asked\\n"
    t = threading.Thread(target=start)
    t.start()
    t.join()
    time.sleep(30)
"""


def _wait_for(path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text() == "terminated":
            return True
        time.sleep(0.05)
    return False


def test_a_worker_whose_supervisor_died_before_it_asked_ends_at_once(tmp_path):
    """The death signal asked for after the parent died never comes: the parent-pid check
    right after the request ends the worker anyway."""
    marker = tmp_path / "worker"
    supervisor = subprocess.run([PY, "-c", _SUPERVISOR, _WORKER, str(marker), "exits"], timeout=60)
    assert supervisor.returncode == 0
    assert _wait_for(marker, 30), "the orphaned worker kept running"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_death_signal_follows_the_thread_that_started_the_worker(tmp_path):
    """Linux sends the parent-death signal when the THREAD that created the worker ends, not
    the process: a supervisor must start its workers from a thread that outlives them. Each
    of Outcrop's supervisors does (the main thread, which also handles the signals), and
    ``export_supervisor`` refuses any other thread."""
    marker = tmp_path / "worker"
    supervisor = subprocess.Popen([PY, "-c", _SUPERVISOR, _WORKER, str(marker), "thread"])
    try:
        assert _wait_for(marker, 30), "the kernel's rule changed: no signal on thread exit"
        assert supervisor.poll() is None  # the supervisor itself is still running
    finally:
        supervisor.kill()
        supervisor.wait()


def test_export_supervisor_refuses_a_thread_other_than_the_main_one(monkeypatch):
    from outcrop.serving import parent

    monkeypatch.delenv(parent.SUPERVISOR_ENV, raising=False)
    caught: list[BaseException] = []

    def run() -> None:
        try:
            parent.export_supervisor()
        except RuntimeError as exc:
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert caught and "main thread" in str(caught[0])
    assert parent.SUPERVISOR_ENV not in os.environ
