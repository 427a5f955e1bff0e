"""Workers end with their supervisor.

A supervisor that is killed outright (SIGKILL, the OOM killer, a crash) cannot tell its workers
to stop; without this they would keep serving the port as orphans, and a restarted gateway
could not bind it. Each worker of ``serve --workers N`` (hypercorn's and granian's) therefore:

* on Linux, asks the kernel for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so
  it drains and exits exactly as on a supervisor's SIGTERM (uvicorn's workers too: they do it
  when they import ``outcrop.server``);
* everywhere, also looks at its parent once in a while (``parent_alive``: the supervisor's pid,
  exported before the workers start, is no longer its parent's) and drains when it is gone
  (hypercorn's and granian's workers, whose loop is Outcrop's, on a loop timer; uvicorn's, whose
  loop is not, from a thread, ``watch_parent``, where the death signal cannot be asked for).

A supervisor that died before its worker got this far is seen at once (``end_with_parent``
checks the parent after asking, since a death signal asked for too late never comes).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

from ..logs import get_logger

#: The supervisor's pid, exported to the worker processes it starts.
SUPERVISOR_ENV = "OUTCROP_SUPERVISOR_PID"
#: Seconds between two looks at the parent (the portable fallback of the death signal).
PARENT_POLL_S = 1.0
_PR_SET_PDEATHSIG = 1

log = get_logger("outcrop.serving")


def export_supervisor() -> None:
    """In the supervisor, before starting workers: name this process as their parent.

    Linux sends the death signal when the *thread* that created a worker ends, not the
    process: the workers must be started by a thread that outlives them. Every supervisor here
    starts (and restarts) them from the main thread, the one that also handles signals; any
    other thread is refused rather than leaving workers to be stopped when it ends."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("workers are started from the main thread (their death signal)")
    os.environ[SUPERVISOR_ENV] = str(os.getpid())


def supervisor_pid() -> int:
    """In a worker: the pid of the supervisor that started it."""
    return int(os.environ.get(SUPERVISOR_ENV) or os.getppid())


def parent_alive(supervisor: int) -> bool:
    """Whether the supervisor is still this process's parent (an orphan is re-parented)."""
    return os.getppid() == supervisor


def end_with_parent(supervisor: int) -> bool:
    """Have this process receive SIGTERM when its parent dies (Linux), and now when the
    supervisor died already; install the worker's SIGTERM handling first. Nothing in the
    supervisor itself. Whether the kernel will send that signal: ``False`` where it cannot
    be asked for (no ``prctl``), and then only a poll (``parent_alive``) sees the death."""
    if supervisor == os.getpid():
        return True
    armed = _ask_death_signal()
    if not parent_alive(supervisor):
        os.kill(os.getpid(), signal.SIGTERM)
    return armed


def _ask_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):  # no libc, or no prctl in it
        return False


def watch_parent(supervisor: int) -> threading.Thread:
    """Poll the parent every ``PARENT_POLL_S`` from a daemon thread and SIGTERM this process
    once the supervisor is gone: the fallback of the death signal for a worker whose event
    loop is its server's (uvicorn's). The signal goes to the process, so the server's own
    handler drains the worker as on a supervisor's SIGTERM."""

    def poll() -> None:
        while parent_alive(supervisor):
            time.sleep(PARENT_POLL_S)
        log.warning("supervisor_gone", supervisor_pid=supervisor, action="draining")
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=poll, name="outcrop-parent-watch", daemon=True)
    thread.start()
    return thread
