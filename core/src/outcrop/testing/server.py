"""Serve any ASGI app under hypercorn in a background thread, for tests and demos.

The listening socket is bound here, before hypercorn starts, so the real port is known at once
(``port=0`` picks a free one) and clients may connect even before the loop is running.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from dataclasses import replace
from types import TracebackType
from typing import Any

from hypercorn.config import Config

from ..serving.options import ServerOptions, hypercorn_config
from ..serving.worker import serve

_log = logging.getLogger("outcrop.testing.server")
#: The longest a server may take to bind and run its lifespan startup.
STARTUP_TIMEOUT = 120.0


class _QuickTLSCloseLoop(asyncio.SelectorEventLoop):
    """An event loop whose TLS servers give up on a silent peer's close_notify quickly.

    asyncio waits up to 30 s for it by default, and an idle pooled client never answers, so a
    server with keep-alive TLS connections open would take that long to stop.
    """

    def __init__(self, ssl_shutdown_timeout: float) -> None:
        super().__init__()
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self.set_exception_handler(self._quiet_tls_timeout)

    @staticmethod
    def _quiet_tls_timeout(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, TimeoutError) and "SSL shutdown" in str(error):
            return  # the expected outcome of the short timeout above
        loop.default_exception_handler(context)

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_shutdown_timeout", self._ssl_shutdown_timeout)
        return await super().create_server(*args, **kwargs)


class ServerThread:
    """Run ``app`` on ``host:port`` (HTTPS when ``certfile``/``keyfile`` are given).

    Use as a context manager or call ``start()``/``stop()``. ``url`` is set once started.
    ``stop()`` waits at most ``graceful_timeout`` seconds for responses still in flight.
    The server is the one ``outcrop serve`` runs, with the transport limits of ``options``
    (default: an Outcrop app's ``general_settings``, else the defaults).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
        *,
        graceful_timeout: float = 0.5,
        options: ServerOptions | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        self.graceful_timeout = graceful_timeout
        if options is None:
            gateway = getattr(getattr(app, "state", None), "gateway", None)
            options = (
                ServerOptions.from_settings(gateway.config.general_settings)
                if gateway is not None
                else ServerOptions()
            )
        self.options = replace(options, graceful_timeout=graceful_timeout)
        self.url = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _config(self, fd: int) -> Config:
        config: Config = hypercorn_config(
            self.options, f"fd://{fd}", certfile=self.certfile, keyfile=self.keyfile
        )
        config.errorlog = _log
        if self.certfile:
            config.create_ssl_context()  # fail in start(), not silently in the thread
        return config

    def start(self) -> ServerThread:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._ready.clear()
        self._error = None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
            self.port = sock.getsockname()[1]
            config = self._config(sock.fileno())
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"{'https' if self.certfile else 'http'}://{host}:{self.port}"
        # hypercorn wraps the descriptor in its own socket object and closes it on shutdown.
        sock.detach()
        self._thread = threading.Thread(
            target=self._run, args=(config,), name=f"outcrop-server-{self.port}", daemon=True
        )
        self._thread.start()
        # Until the lifespan startup is over (plugins' outcrop_startup included) and the server
        # said it listens: on a loaded machine that can take well over ten seconds, and a test
        # must not start before it (nor end before the server's start-up log lines, which
        # would then be written outside the test's captured output).
        if not self._ready.wait(STARTUP_TIMEOUT):
            self.stop()
            raise RuntimeError(f"server did not finish starting in {STARTUP_TIMEOUT} s")
        if self._error is not None:
            self._thread.join(1)
            raise RuntimeError(f"server failed to start: {self._error!r}") from self._error
        return self

    def _run(self, config: Config) -> None:
        loop = _QuickTLSCloseLoop(ssl_shutdown_timeout=max(self.graceful_timeout / 2, 0.1))
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(config))
        except BaseException as exc:
            self._error = exc
            _log.exception("server stopped with an error")
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, config: Config) -> None:
        self._stopping = asyncio.Event()
        await serve(
            self._app,
            config,
            self.options,
            shutdown_trigger=self._stopping.wait,
            handle_signals=False,
            on_listening=self._ready.set,
        )

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app, noting a failed lifespan startup (``start()`` raises it)."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_and_note(message: dict[str, Any]) -> None:
            if message["type"] == "lifespan.startup.failed":
                self._error = RuntimeError(message.get("message") or "lifespan startup failed")
            await send(message)
            if message["type"] == "lifespan.startup.failed":
                self._ready.set()

        await self.app(scope, receive, send_and_note)

    def stop(self) -> None:
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:
                pass  # the loop ended on its own already
        thread.join(self.graceful_timeout + 5)
        if thread.is_alive():
            _log.warning("server thread %s did not stop in time", thread.name)
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
