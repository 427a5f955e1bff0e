"""The upstream connections of one worker: opened (DNS cached, TLS verified), kept alive per
origin, handed out one request at a time, at most ``limit`` open at once.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque

from .upstream_http1 import Connection

#: Seconds an idle keep-alive connection is kept before it is closed rather than reused
#: (aiohttp's default: well under the idle timeouts of AWS's endpoints, so a server rarely
#: closes a connection just as a request is written on it).
KEEPALIVE_S = 15.0
#: Seconds a DNS answer is reused (aiohttp's ``ttl_dns_cache=300``).
DNS_TTL_S = 300.0
#: The most host names whose answers are kept (a full cache starts over).
DNS_CACHED = 256

Origin = tuple[str, str, int]  # (scheme, host, port)


class Pool:
    """Keep-alive connections per origin (newest idle first), ``limit`` open in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._idle: dict[Origin, list[Connection]] = {}
        #: Every open connection (idle or in use), and how many are being opened.
        self._all: set[Connection] = set()
        self._opening = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._dns: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}
        self._tls: ssl.SSLContext | None = None
        self._closing = False

    async def acquire(self, origin: Origin, connect_timeout: float | None) -> Connection:
        """An idle connection to ``origin``, else a new one (waiting while ``limit`` are open).

        ``connect_timeout`` bounds the wait for a place in the limit and the connecting (DNS,
        TCP, TLS) together, as aiohttp's ``connect`` timeout does. Connection failures raise
        ``OSError`` (DNS included) or ``TimeoutError``."""
        loop = asyncio.get_running_loop()
        deadline = None if connect_timeout is None else loop.time() + connect_timeout
        while True:
            idle = self._idle.get(origin)
            if idle:
                now = loop.time()
                while idle:
                    conn = idle.pop()
                    if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                        return conn
                    conn.close()  # idle too long: the server may be about to close it
                del self._idle[origin]
            if self._opening + len(self._all) < self.limit:
                break
            # At the limit: an idle connection of another origin makes room (its
            # connection_lost wakes a waiter), else wait for one to close or come back idle.
            self._close_an_idle()
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._opening += 1
        try:
            async with asyncio.timeout_at(deadline):
                conn = await self._connect(loop, origin)
        except BaseException:
            self._opening -= 1
            self._wake_one()  # its place in the limit is free again
            raise
        self._opening -= 1
        if not conn.closed:
            self._all.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
        """Give back ``conn`` after its response: kept for the next request when reusable."""
        conn.stop_timer()
        if not conn.reusable or self._closing:
            conn.close()
            return
        conn.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake_one()

    async def close(self) -> None:
        """Close every connection, idle or in use (a response still being read breaks)."""
        self._closing = True
        for conn in list(self._all):
            conn.close()
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports run connection_lost

    def _lost(self, conn: Connection) -> None:
        """A connection closed (either side): its place in the limit is free again."""
        self._all.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
            if not idle:
                del self._idle[conn.key]
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_an_idle(self) -> None:
        """Close the oldest idle connection of any origin, if there is one."""
        for origin, idle in self._idle.items():
            conn = idle.pop(0)
            if not idle:
                del self._idle[origin]
            conn.close()
            return

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                # The system's trust store, hostname checked: never verification off.
                self._tls = ssl.create_default_context()
            tls = self._tls
        error: OSError | None = None
        for family, address in await self._resolve(loop, host, port):
            conn = Connection(origin, loop, self._lost)
            try:
                await loop.create_connection(
                    lambda conn=conn: conn,
                    address,
                    port,
                    family=family,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                )
            except OSError as exc:  # ssl.SSLError is one too
                error = exc
                continue
            return conn
        raise error or OSError(f"no address for {host}")

    async def _resolve(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int
    ) -> list[tuple[int, str]]:
        now = loop.time()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[tuple[int, str]] = []
        for family, _, _, _, sockaddr in infos:
            entry = (int(family), str(sockaddr[0]))
            if entry not in addresses:
                addresses.append(entry)
        if len(self._dns) >= DNS_CACHED:
            self._dns.clear()
        self._dns[(host, port)] = (now + DNS_TTL_S, addresses)
        return addresses
