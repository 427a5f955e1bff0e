"""``serve --server granian``: granian (a Rust HTTP/1.1 server with an ASGI interface) with
Outcrop's shutdown, in one worker process or several.

granian's Rust side provides the transport limits: ``header_timeout`` is hyper's header read
timeout (it also ends idle keep-alive connections, see docs/server.md), ``max_connections`` is
granian's per-worker ``backpressure`` (connections past it wait in the listen queue, unaccepted;
``_QueueWatch`` logs it), a client's EOF closes its connection at once, and HTTP/2 is never
served.

On SIGTERM/SIGINT, whether it reaches the supervisor alone or the whole process group, every
worker stops accepting and lets in-flight requests and streams finish (granian waits for its
connections); Outcrop adds what hypercorn's worker does: the ``shutting_down``, ``drained`` and
``graceful_timeout_reached`` lines, and the cut after ``graceful_timeout``, which cancels the calls
still running so each is answered 503 ``shutting_down`` and logged once. Each call carries the
``outcrop.client_left`` extension, as under hypercorn (``_TellsLeft``). A supervisor killed
outright (SIGKILL) takes its workers with it (``outcrop.serving.parent``): they drain as on
SIGTERM instead of keeping the port as orphans.

The worker function follows granian's own ASGI worker (``granian.server.mp``); the supported
granian range is pinned in core/pyproject.toml.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import struct
import sys
import time
from pathlib import Path
from typing import Any

from granian._futures import _future_watcher_wrapper, _new_cbscheduler
from granian._granian import ASGIWorker as _ASGIWorker
from granian._granian import WorkerSignal
from granian.asgi import LifespanProtocol
from granian.asgi import _callback_wrapper as _asgi_callback
from granian.constants import HTTPModes, Interfaces, Loops, SSLProtocols, TaskImpl
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.common import WORKERS_METHODS
from granian.server.mp import MPServer, WorkerProcess

from ..lifecycle import CLIENT_LEFT, ClientLeft
from ..logs import get_logger
from .options import LIMIT_LOG_INTERVAL, Listen, ServerOptions
from .parent import PARENT_POLL_S, end_with_parent, export_supervisor, parent_alive, supervisor_pid

log = get_logger("outcrop.server")

# granian's Python side is untyped and its stub of the Rust worker lags its signature.
ASGIWorker: Any = _ASGIWorker
new_scheduler: Any = _new_cbscheduler
watched: Any = _future_watcher_wrapper
asgi_callback: Any = _asgi_callback

#: Carry ``graceful_timeout``, the port and ``max_connections`` to the worker processes.
GRACEFUL_ENV = "OUTCROP_GRACEFUL_TIMEOUT"
PORT_ENV = "OUTCROP_GRANIAN_PORT"
CAP_ENV = "OUTCROP_GRANIAN_MAX_CONNECTIONS"
#: Seconds between two looks at the listen queue (``_QueueWatch``).
_QUEUE_POLL = 1.0
#: How long past ``graceful_timeout`` the supervisor waits before killing a worker.
_KILL_MARGIN = 10
#: Messages other than ``http.disconnect`` a call's disconnect watch waits past (``_TellsLeft``).
_REARMS = 4


def run_granian(listen: Listen) -> int:
    """Serve ``outcrop.server:app`` on granian until SIGTERM/SIGINT; returns the exit code."""
    options = listen.options
    os.environ[GRACEFUL_ENV] = str(options.graceful_timeout)
    os.environ[PORT_ENV] = str(listen.port)
    os.environ[CAP_ENV] = str(options.connection_cap)
    os.environ.setdefault("OUTCROP_LOG_LEVEL", listen.log_level)
    export_supervisor()
    server = _Supervisor(
        "outcrop.server:app",
        address=listen.host,
        port=listen.port,
        interface=Interfaces.ASGI,
        workers=listen.workers,
        http=HTTPModes.http1,
        websockets=False,
        backpressure=options.connection_cap,
        http1_settings=HTTP1Settings(header_read_timeout=int(options.header_timeout * 1000)),
        log_level=LogLevels.warning,  # Outcrop logs the stages itself
        ssl_cert=Path(listen.certfile) if listen.certfile else None,
        ssl_key=Path(listen.keyfile) if listen.keyfile else None,
        ssl_protocol_min=SSLProtocols.tls12,  # as hypercorn: TLS 1.2 clients are served
        workers_kill_timeout=int(options.graceful_timeout) + _KILL_MARGIN,
        loop=_loop(),
    )
    server.options = options
    try:
        server.serve(spawn_target=_worker)
    except SystemExit as exit_:  # granian exits non-zero when a worker died on its own
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def _loop() -> Loops:
    """uvloop when installed, as hypercorn and uvicorn run: granian's ``auto`` would take rloop
    (experimental) whenever that happens to be installed."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return Loops.asyncio
    return Loops.uvloop


class _Supervisor(MPServer):
    """granian's process supervisor, logging the stages as ``serving.workers`` does."""

    options: ServerOptions

    def startup(self, spawn_target: Any, target_loader: Any) -> None:
        super().startup(spawn_target, target_loader)  # type: ignore[no-untyped-call]
        log.info(
            "listening",
            server="granian",
            workers=self.workers,
            pids=[w.inner.pid for w in self.wrks],
            max_connections=self.options.connection_cap,
            loop=str(self.loop),
            http2=False,
            header_timeout=self.options.header_timeout,
            # hyper's header read timer also runs while a keep-alive connection idles
            keep_alive_timeout=min(self.options.keep_alive_timeout, self.options.header_timeout),
        )

    def shutdown(self, exit_code: int = 0) -> None:
        crashed = bool(self.interrupt_children)
        log.info(
            "stopping_workers",
            signal="worker exit" if crashed else "SIGTERM/SIGINT",
            workers=len(self.wrks),
            graceful_timeout=self.options.graceful_timeout,
        )
        try:
            super().shutdown(exit_code)  # type: ignore[no-untyped-call]
        finally:
            log.info("workers_stopped", exit_code=1 if crashed else exit_code)


@WorkerProcess.wrap_target  # type: ignore[untyped-decorator]
def _worker(
    worker_id: int,
    callback: Any,
    sock: Any,
    ipc: Any,
    loop: asyncio.AbstractEventLoop,
    runtime_mode: Any,
    runtime_threads: int,
    runtime_blocking_threads: int | None,
    blocking_threads: int,
    blocking_threads_idle_timeout: int,
    backpressure: int,
    task_impl: TaskImpl,
    http_mode: HTTPModes,
    http1_settings: HTTP1Settings | None,
    http2_settings: Any,
    websockets: bool,
    static_path: Any,
    log_access_fmt: str | None,
    ssl_ctx: Any,
    scope_opts: dict[str, Any],
    metrics: Any,
) -> None:
    """One granian worker process: granian's ASGI worker with Outcrop's drain."""
    graceful_timeout = float(os.environ.get(GRACEFUL_ENV, "30"))
    calls = _InFlight(callback)
    lifespan = LifespanProtocol(callback)  # type: ignore[no-untyped-call]
    wrapped = watched(asgi_callback(calls, scope_opts, lifespan.state, log_access_fmt))
    stop = WorkerSignal()  # set: the Rust side stops accepting and drains its connections
    drained = asyncio.Event()
    stop.add_cb(lambda: loop.call_soon_threadsafe(drained.set))
    drain = _Drain()

    def cut() -> None:
        if calls.tasks:
            drain.cut = True
            log.warning(
                "graceful_timeout_reached",
                cut_calls=len(calls.tasks),
                graceful_timeout=graceful_timeout,
            )
            for task in calls.tasks:
                task.cancel()  # the call answers 503 shutting_down and is logged once

    def on_signal() -> None:
        if drain.timer is not None:  # SIGTERM to the group, then the supervisor's: one drain
            return
        log.info(
            "shutting_down", calls_in_flight=len(calls.tasks), graceful_timeout=graceful_timeout
        )
        drain.timer = loop.call_later(graceful_timeout, cut)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    supervisor = supervisor_pid()
    end_with_parent(supervisor)

    def look_at_parent() -> None:  # the portable fallback of the death signal
        if parent_alive(supervisor):
            loop.call_later(PARENT_POLL_S, look_at_parent)
        else:
            on_signal()

    loop.call_later(PARENT_POLL_S, look_at_parent)

    loop.run_until_complete(lifespan.startup())  # type: ignore[no-untyped-call]
    if lifespan.interrupt:
        log.error("startup_failed", exc_info=lifespan.exc)
        sys.exit(1)
    worker = ASGIWorker(
        worker_id,
        sock,
        ipc,
        runtime_threads,
        runtime_blocking_threads,
        blocking_threads,
        blocking_threads_idle_timeout,
        backpressure,
        http_mode,
        http1_settings,
        http2_settings,
        websockets,
        static_path,
        *ssl_ctx,
        metrics,
    )
    serve = getattr(worker, WORKERS_METHODS[runtime_mode][(sock[0] or sock[1]).is_uds()])
    serve(new_scheduler(loop, wrapped, impl_asyncio=task_impl == TaskImpl.asyncio), loop, stop)
    watch = _QueueWatch.start(loop)
    loop.run_until_complete(drained.wait())  # granian released it: every connection is done
    if watch is not None:
        watch.stop()
    if drain.timer is not None:
        drain.timer.cancel()
    if not drain.cut:
        log.info("drained")
    loop.run_until_complete(lifespan.shutdown())  # type: ignore[no-untyped-call]


class _Drain:
    __slots__ = ("cut", "timer")

    def __init__(self) -> None:
        self.timer: asyncio.TimerHandle | None = None
        self.cut = False


class _InFlight:
    """The app, keeping the task of every HTTP call in flight so a drain can cut them; each
    call carries the ``outcrop.client_left`` extension (``_TellsLeft``)."""

    __slots__ = ("app", "tasks")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        if task is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        left = ClientLeft()
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        extensions[CLIENT_LEFT] = left
        self.tasks.add(task)
        try:
            await self.app(scope, _TellsLeft(receive, left), send)
        finally:
            self.tasks.discard(task)


class _TellsLeft:
    """granian's ``receive`` for one call, telling its ``ClientLeft`` when the client leaves.

    Once the body has been read (the message without ``more_body``), granian's next
    ``receive()`` is a future that completes with ``http.disconnect`` when the client leaves or
    the answer has been sent: a callback on it tells the call, so the call needs no task of its
    own waiting on ``receive()`` (``CallLifecycle.watch``), as under hypercorn.
    """

    __slots__ = ("left", "rearms", "receive", "watching")

    def __init__(self, receive: Any, left: ClientLeft) -> None:
        self.receive, self.left = receive, left
        self.watching = False
        self.rearms = _REARMS

    async def __call__(self) -> Any:
        message = await self.receive()
        if self.watching:  # a later read: granian's answer as it is
            return message
        if message["type"] == "http.disconnect":
            self.left.tell()
        elif not message.get("more_body", False):
            self.watching = True
            self.receive().add_done_callback(self._done)
        return message

    def _done(self, future: Any) -> None:
        try:
            left = future.result()["type"] == "http.disconnect"
        except Exception:  # the connection broke: the client is gone
            left = True
        if left:
            if not self.left.left:
                self.left.tell()
        elif self.rearms > 0:  # another (empty) request message: wait again, a bounded number
            self.rearms -= 1
            self.receive().add_done_callback(self._done)


class _QueueWatch:
    """The ``connection_limit_reached`` warning granian does not give.

    granian accepts a connection as soon as the worker has a free slot (``backpressure``), so
    connections still waiting in the shared listen queue at two looks in a row mean every
    worker holds ``max_connections``. Logged at most every ``LIMIT_LOG_INTERVAL`` seconds, with
    the number waiting.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, cap: int) -> None:
        self.loop, self.sock, self.cap = loop, sock, cap
        self.waiting_before = 0
        self.logged_at = -LIMIT_LOG_INTERVAL
        self.handle = loop.call_later(_QUEUE_POLL, self.look)

    @classmethod
    def start(cls, loop: asyncio.AbstractEventLoop) -> _QueueWatch | None:
        sock = _listening_socket(int(os.environ.get(PORT_ENV, "0")))
        if sock is None:
            log.warning("connection_limit_unwatched", reason="listening socket not found")
            return None
        return cls(loop, sock, int(os.environ.get(CAP_ENV, "0")))

    def look(self) -> None:
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
            waiting = struct.unpack_from("I", info, 24)[0]  # tcpi_unacked: the accept queue
        except OSError:
            return
        now = time.monotonic()
        if waiting and self.waiting_before and now - self.logged_at >= LIMIT_LOG_INTERVAL:
            self.logged_at = now
            log.warning(
                "connection_limit_reached",
                max_connections=self.cap,
                waiting=waiting,
                hint="raise general_settings.max_connections or the fd limit, or add workers",
            )
        self.waiting_before = waiting
        self.handle = self.loop.call_later(_QUEUE_POLL, self.look)

    def stop(self) -> None:
        self.handle.cancel()
        self.sock.close()


def _listening_socket(port: int) -> socket.socket | None:
    """A duplicate of this process's listening TCP socket on ``port`` (granian's, inherited
    from the supervisor)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
            if listening and sock.type == socket.SOCK_STREAM and sock.getsockname()[1] == port:
                return sock
        except (OSError, IndexError, TypeError):
            pass
        sock.close()
    return None
