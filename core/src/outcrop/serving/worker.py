"""One server process: hypercorn's loop (lifespan, listening sockets, graceful shutdown) with
Outcrop's connections (connection.py), a per-worker connection cap, and log lines for each
stage of a shutdown.

On SIGTERM/SIGINT (or ``shutdown_trigger``) the worker stops accepting, closes idle keep-alive
connections, and gives in-flight requests and streams ``graceful_timeout`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Sockets
from hypercorn.utils import repr_socket_addr, wrap_app

from ..logs import get_logger
from .connection import Connection
from .options import LIMIT_LOG_INTERVAL, ServerOptions

log = get_logger("outcrop.server")


class ConnectionLimit:
    """Counts a worker's open connections; past ``cap`` new ones are refused (closed at once)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open = 0
        self.refused = 0
        self._logged_at = -LIMIT_LOG_INTERVAL

    def admit(self) -> bool:
        if self.open < self.cap:
            self.open += 1
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= LIMIT_LOG_INTERVAL:
            self._logged_at = now
            log.warning(
                "connection_limit_reached",
                max_connections=self.cap,
                open=self.open,
                refused=self.refused,
                hint="raise general_settings.max_connections or the fd limit, or add workers",
            )
            self.refused = 0
        return False

    def release(self) -> None:
        self.open -= 1


async def serve(
    app: Any,
    config: Any,
    options: ServerOptions,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    handle_signals: bool = True,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (``handle_signals``, main thread only) or until
    ``shutdown_trigger()`` returns, then drain. ``on_listening()`` runs once the lifespan
    started and every socket accepts (after the ``listening`` log line)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if handle_signals:  # first, so a signal during start-up still means a clean stop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    lifespan_state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, config, loop, lifespan_state)
    lifespan_task = loop.create_task(lifespan.handle_lifespan())
    await lifespan.wait_for_startup()
    if lifespan_task.done() and lifespan_task.exception() is not None:
        raise lifespan_task.exception()  # type: ignore[misc]

    sockets = sockets or config.create_sockets()
    ssl_context = config.create_ssl_context() if config.ssl_enabled else None
    context = WorkerContext(None)
    limit = ConnectionLimit(options.connection_cap)
    connections: set[asyncio.Task[Any]] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not limit.admit():
            writer.transport.abort()  # frees the descriptor now; nothing was read or promised
            return
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await Connection(
                wrapped, loop, config, context, lifespan_state, reader, writer, options
            )
        finally:
            connections.discard(task)
            limit.release()

    servers = []
    for secure, group in ((True, sockets.secure_sockets), (False, sockets.insecure_sockets)):
        for sock in group:
            servers.append(
                await asyncio.start_server(
                    on_connection,
                    sock=sock,
                    backlog=config.backlog,
                    ssl=ssl_context if secure else None,
                    ssl_handshake_timeout=config.ssl_handshake_timeout if secure else None,
                )
            )
            bind = repr_socket_addr(sock.family, sock.getsockname())
            await config.log.info(
                f"Running on {'https' if secure else 'http'}://{bind} (CTRL + C to quit)"
            )
    log.info(
        "listening",
        max_connections=limit.cap,
        http2=options.http2,
        header_timeout=options.header_timeout,
        keep_alive_timeout=options.keep_alive_timeout,
    )
    if on_listening is not None:
        on_listening()

    waiters: list[asyncio.Task[Any]] = [loop.create_task(stop.wait())]
    if shutdown_trigger is not None:
        waiters.append(loop.create_task(_call(shutdown_trigger)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await _drain(servers, connections, context, options.graceful_timeout)
        await lifespan.wait_for_shutdown()
        lifespan_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lifespan_task


async def _call(trigger: Callable[[], Awaitable[Any]]) -> None:
    await trigger()


async def _drain(
    servers: list[asyncio.Server],
    connections: set[asyncio.Task[Any]],
    context: WorkerContext,
    graceful_timeout: float,
) -> None:
    log.info("shutting_down", open_connections=len(connections), graceful_timeout=graceful_timeout)
    await context.terminated.set()  # idle keep-alive connections close, busy ones stop recycling
    for server in servers:
        server.close()
    pending: set[asyncio.Task[Any]] = set(connections)
    if pending:
        _, pending = await asyncio.wait(pending, timeout=graceful_timeout)
    if pending:
        log.warning(
            "graceful_timeout_reached",
            cut_connections=len(pending),
            graceful_timeout=graceful_timeout,
        )
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=1.0)
    else:
        log.info("drained")
