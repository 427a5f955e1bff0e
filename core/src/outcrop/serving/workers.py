"""``serve --workers N``: N worker processes sharing the listening sockets, and a supervisor.

SIGTERM to the supervisor alone (``kill PID``) or to the whole process group (what systemd
does, and Ctrl-C in a terminal) drains every worker like the single-process server: each stops
accepting and lets in-flight requests and streams finish for up to ``graceful_timeout`` seconds.
The supervisor waits for all of them (hypercorn's own supervisor terminated the others as soon
as the first had exited) and exits 0 when every worker did. A worker that dies on its own stops
the others and makes the exit code non-zero, so a process manager restarts the service. A
supervisor killed outright (SIGKILL) takes its workers with it (``outcrop.serving.parent``):
they drain and exit instead of keeping the port as orphans.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from typing import Any

from ..logs import configure_logging, get_logger
from .options import ServerOptions
from .parent import end_with_parent, export_supervisor, parent_alive, supervisor_pid

log = get_logger("outcrop.server")

#: How long past ``graceful_timeout`` the supervisor waits before killing a worker.
_KILL_MARGIN = 10.0


def run_workers(config: Any, options: ServerOptions, workers: int, log_level: str) -> int:
    """Run ``workers`` processes serving ``outcrop.server:app``; returns the exit code."""
    sockets = config.create_sockets()
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    stopping: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if not stopping:
            stopping.append(signal.Signals(signum).name)
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    export_supervisor()
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(config, options, sockets, stop, log_level),
            name=f"outcrop-worker-{i}",
            daemon=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    log.info("workers_started", workers=workers, pids=[p.pid for p in procs])

    code = 0
    alive = list(procs)
    deadline: float | None = None
    while alive:
        wait([p.sentinel for p in alive], timeout=0.5)
        if stopping and deadline is None:
            log.info(
                "stopping_workers",
                signal=stopping[0],
                workers=len(alive),
                graceful_timeout=options.graceful_timeout,
            )
            deadline = time.monotonic() + options.graceful_timeout + _KILL_MARGIN
        for proc in [p for p in alive if p.exitcode is not None]:
            alive.remove(proc)
            proc.join()
            if proc.exitcode != 0 or not stopping:
                log.error(
                    "worker_exited", pid=proc.pid, exit_code=proc.exitcode, expected=bool(stopping)
                )
                code = code or (proc.exitcode or 1)
            if not stopping:  # a worker died on its own: stop the rest, exit non-zero
                stopping.append("worker exit")
                stop.set()
        if deadline is not None and alive and time.monotonic() > deadline:
            log.error("workers_killed", pids=[p.pid for p in alive])
            for proc in alive:
                proc.kill()
            code = code or 1
            deadline = float("inf")  # killed: just collect them
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.close()
    log.info("workers_stopped", exit_code=code)
    return code


def _worker_main(
    config: Any, options: ServerOptions, sockets: Any, stop: Any, log_level: str
) -> None:
    """A worker process: the app from ``OUTCROP_CONFIG`` (``outcrop.server``), served until a
    signal reaches it, the supervisor sets ``stop``, or the supervisor dies."""
    early: list[int] = []  # a signal while the app loads still means a clean stop
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: early.append(signum))
    supervisor = supervisor_pid()
    end_with_parent(supervisor)  # a supervisor killed outright takes this worker with it
    os.environ.setdefault("OUTCROP_LOG_LEVEL", log_level)
    configure_logging(log_level)
    from ..server import app
    from .worker import serve

    async def stopped() -> None:
        while not stop.is_set() and not early and parent_alive(supervisor):
            await asyncio.sleep(0.1)

    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(app, config, options, sockets=sockets, shutdown_trigger=stopped))
