"""The transport settings a server process needs, and hypercorn's config built from them.

A plain frozen dataclass: ``serve --workers N`` pickles it to every worker process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Client resets one HTTP/2 connection may make per ``H2_RESET_WINDOW`` seconds before it is
#: closed with ENHANCE_YOUR_CALM (the "rapid reset" attack opens and resets streams in a loop).
H2_MAX_RESETS = 100
H2_RESET_WINDOW = 10.0
#: At most one "connection limit reached" line per this many seconds (with the count).
LIMIT_LOG_INTERVAL = 10.0
#: File descriptors kept for everything but client connections (upstream pool, logs, config).
_FD_RESERVE = 64
_MAX_DEFAULT_CONNECTIONS = 10_000


def default_max_connections() -> int:
    """Half of what the file-descriptor limit leaves after a reserve: each client connection may
    hold one upstream connection too. 480 with the usual soft limit of 1024."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 1000
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return _MAX_DEFAULT_CONNECTIONS
    return max(16, min(_MAX_DEFAULT_CONNECTIONS, (soft - _FD_RESERVE) // 2))


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """See ``general_settings`` in docs/configuration.md for each field."""

    header_timeout: float = 10.0
    keep_alive_timeout: float = 75.0
    graceful_timeout: float = 30.0
    max_connections: int = 0  # 0: default_max_connections()
    http2: bool = False

    @classmethod
    def from_settings(cls, general: Any, *, http2: bool = False) -> ServerOptions:
        """From ``GeneralSettings``; ``http2=True`` (``serve --http2``) turns HTTP/2 on."""
        return cls(
            header_timeout=general.header_timeout,
            keep_alive_timeout=general.keep_alive_timeout,
            graceful_timeout=general.graceful_timeout,
            max_connections=general.max_connections or 0,
            http2=bool(general.http2 or http2),
        )

    @property
    def connection_cap(self) -> int:
        return self.max_connections or default_max_connections()


@dataclass(frozen=True, slots=True)
class Listen:
    """Where and how one ``serve`` listens: what each server's runner takes (``outcrop.cli``)."""

    host: str
    port: int
    certfile: str | None = None
    keyfile: str | None = None
    workers: int = 1
    options: ServerOptions = ServerOptions()
    log_level: str = "INFO"

    @property
    def bind(self) -> str:
        """hypercorn's bind: ``host:port``, or ``[v6]:port``."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def hypercorn_config(
    options: ServerOptions, bind: str, *, certfile: str | None = None, keyfile: str | None = None
) -> Any:
    """hypercorn's ``Config`` for ``bind`` (``host:port``, ``[v6]:port`` or ``fd://N``)."""
    from .connection import HypercornConfig

    config = HypercornConfig()
    config.bind = [bind]
    config.certfile, config.keyfile = certfile, keyfile
    config.graceful_timeout = options.graceful_timeout
    config.keep_alive_timeout = options.keep_alive_timeout
    # TLS: offer h2 in ALPN only when HTTP/2 is on (cleartext h2c is refused in connection.py).
    config.alpn_protocols = ["h2", "http/1.1"] if options.http2 else ["http/1.1"]
    config.accesslog = None  # Outcrop writes its own access log (one structured line per call)
    config.errorlog = "-"
    return config
