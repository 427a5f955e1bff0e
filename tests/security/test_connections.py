"""Connections: a request head must arrive within `header_timeout` (slowloris and silent sockets
are closed), a client's EOF closes its connection at once (no CLOSE_WAIT pile-up), and past
`max_connections` new connections are refused with a log line (granian: left waiting in the
listen queue until a slot frees). Raw sockets, loopback only. Each on the default server and on
granian (`--server granian`); docs/server.md has the matrix."""

from __future__ import annotations

import selectors
import socket
import time

import httpx
import pytest
import structlog

from .conftest import AUTH, MASTER_KEY
from .rawhttp import connect, read_response, request_head, still_serves


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True once the server closed ``sock`` (EOF or reset), False if it stays open ``within`` s."""
    sock.settimeout(0.25)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionError:
            return True
    return False


#: The servers with a request-header timeout (uvicorn has none: docs/server.md).
SERVERS = ["hypercorn", "granian"]


@pytest.fixture(params=SERVERS)
def quick_gateway(request, module_cli_server):
    """The real `outcrop serve` with a header timeout of 1 s (the default is 10), one per server
    for the module: each test leaves it serving, as it checks."""
    server = module_cli_server("--server", request.param, header_timeout=1.0)
    server.name = request.param
    return server


def test_slowloris_connections_are_closed(quick_gateway):
    socks = [connect(quick_gateway.url) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
        trickle_until = time.monotonic() + 3  # keep trickling header lines past the timeout
        while time.monotonic() < trickle_until:
            for sock in socks:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass  # already closed by the server: what the test waits for
            time.sleep(0.3)
        assert all(_closed_by_server(sock, within=15) for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    still_serves(quick_gateway)


def test_silent_connections_are_closed(quick_gateway):
    socks = [connect(quick_gateway.url) for _ in range(20)]
    try:
        assert all(_closed_by_server(sock, within=15) for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    still_serves(quick_gateway)


def test_keep_alive_connection_may_idle_past_the_header_timeout(quick_gateway):
    """Between requests the keep-alive timeout (75 s) applies, not the header timeout; on
    granian (hyper) the header timer runs while a connection idles, so it ends idle ones."""
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    with connect(quick_gateway.url) as sock:
        sock.sendall(request_head("GET", "/v1/models", quick_gateway.url, auth))
        assert read_response(sock).status == 200
        if quick_gateway.name == "granian":
            assert _closed_by_server(sock, within=10)
        else:
            time.sleep(2.5)
            sock.sendall(request_head("GET", "/v1/models", quick_gateway.url, auth))
            assert read_response(sock).status == 200  # the same connection, past 1 s idle
    with httpx.Client(base_url=quick_gateway.url, headers=AUTH) as client:
        assert client.get("/v1/models").status_code == 200
        time.sleep(2.5)
        r = client.get("/v1/models")
        assert r.status_code == 200
        assert client.get("/v1/models").status_code == 200
    with connect(quick_gateway.url) as sock:  # a head split over packets is fine when in time
        head = request_head(
            "GET", "/v1/models", quick_gateway.url, {"authorization": f"Bearer {MASTER_KEY}"}
        )
        sock.sendall(head[:20])
        time.sleep(0.3)
        sock.sendall(head[20:])
        assert read_response(sock).status == 200


def test_keep_alive_timeout_closes_idle_connections_only(cli_server, make_config):
    """An idle keep-alive connection is closed once ``keep_alive_timeout`` passes with no
    request; every request re-arms the timer, so a connection in use is never cut (the default
    server: Outcrop's connection class owns this timer)."""
    gateway = cli_server(make_config(keep_alive_timeout=2.0))
    head = request_head("GET", "/health/liveliness", gateway.url, {})
    with connect(gateway.url) as idle, connect(gateway.url) as busy:
        idle.sendall(head)
        assert read_response(idle).status == 200
        for _ in range(6):  # 3 s of requests 0.5 s apart: longer than the timeout in total
            busy.sendall(head)
            assert read_response(busy).status == 200
            time.sleep(0.5)
        assert _closed_by_server(idle, within=5)
        busy.sendall(head)  # still open: its timer started again after its last answer
        assert read_response(busy).status == 200
        assert _closed_by_server(busy, within=5)
    still_serves(gateway)


@pytest.mark.parametrize("server_name", [*SERVERS, "uvicorn"])
def test_client_eof_closes_idle_connections_at_once(cli_server, make_config, server_name):
    """A client that half-closes (EOF) gets its connection closed now, not after the 75 s
    keep-alive: no sockets left in CLOSE_WAIT."""
    gateway = cli_server(make_config(), "--server", server_name)
    socks = [connect(gateway.url) for _ in range(30)]
    try:
        for sock in socks[:15]:  # one served request first, then EOF
            sock.sendall(request_head("GET", "/health/liveliness", gateway.url, {}))
            assert read_response(sock).status == 200
        for sock in socks:
            sock.shutdown(socket.SHUT_WR)
        assert all(_closed_by_server(sock, within=10) for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    still_serves(gateway)


def test_connection_cap_refuses_and_logs(gateway_factory, make_config):
    gw = gateway_factory(make_config(max_connections=8, header_timeout=60.0))
    held = [connect(gw.url) for _ in range(8)]
    try:
        for sock in held:  # each one is surely accepted: it is served once
            sock.sendall(request_head("GET", "/health/liveliness", gw.url, {}))
            assert read_response(sock).status == 200
        with structlog.testing.capture_logs() as logs:
            extra = [connect(gw.url) for _ in range(40)]
            try:
                assert all(_closed_by_server(sock, within=10) for sock in extra)
            finally:
                for sock in extra:
                    sock.close()
        warnings = [e for e in logs if e["event"] == "connection_limit_reached"]
        assert len(warnings) == 1  # rate-limited: one line, not one per refused connection
        assert warnings[0]["max_connections"] == 8 and warnings[0]["log_level"] == "warning"
        for sock in held:  # the held connections were untouched
            sock.sendall(request_head("GET", "/health/liveliness", gw.url, {}))
            assert read_response(sock).status == 200
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10  # released slots are taken again
    while True:
        try:
            still_serves(gw)
            break
        except (httpx.HTTPError, AssertionError):
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_cli_server_caps_connections_and_logs(cli_server, make_config):
    """The real `outcrop serve` process: 200 raw sockets against a cap of 50."""
    server = cli_server(make_config(max_connections=50, header_timeout=60.0))
    socks = [connect(server.url) for _ in range(200)]
    try:
        closed = _wait_closed(socks, at_least=150, within=20)
        assert 150 <= len(closed) <= 152  # the readiness probes' slots may lag being released
        held = [s for s in socks if s not in closed]
        for sock in held[:5]:  # the held ones are served
            sock.sendall(request_head("GET", "/health/liveliness", server.url, {}))
            assert read_response(sock).status == 200
    finally:
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            still_serves(server)
            break
        except (httpx.HTTPError, AssertionError):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    code, err = server.stop()
    assert code == 0
    assert '"event": "connection_limit_reached"' in err and '"max_connections": 50' in err
    assert '"event": "drained"' in err


def test_granian_caps_connections_per_worker_and_logs(cli_server, make_config):
    """granian's cap: past `max_connections` a connection is not accepted (it waits in the
    listen queue, holding no descriptor of the worker) until a held one closes; the worker
    logs that connections wait."""
    server = cli_server(make_config(max_connections=8, header_timeout=60.0), "--server", "granian")
    log = server.output
    held = [connect(server.url, timeout=30) for _ in range(8)]
    waiting = connect(server.url, timeout=30)
    try:
        for sock in held:  # each one is accepted (once the readiness probes' slots are free)
            sock.sendall(request_head("GET", "/health/liveliness", server.url, {}))
            assert read_response(sock).status == 200
        waiting.sendall(request_head("GET", "/health/liveliness", server.url, {}))
        log.wait_for('"event": "connection_limit_reached"', timeout=30)
        waiting.settimeout(0.5)
        with pytest.raises(TimeoutError):  # past the cap: not served while all 8 are held
            waiting.recv(1)
        held.pop().close()  # a slot frees: the waiting connection is accepted and served
        waiting.settimeout(30)
        assert read_response(waiting).status == 200
    finally:
        for sock in [*held, waiting]:
            sock.close()
    still_serves(server)
    server.proc.terminate()
    assert server.proc.wait(timeout=60) == 0
    line = next(ln for ln in log.text().splitlines() if "connection_limit_reached" in ln)
    assert '"max_connections": 8' in line and '"waiting": 1' in line
    assert log.count("connection_limit_reached") == 1  # at most one line per 10 s


def _wait_closed(socks: list[socket.socket], at_least: int, within: float) -> list[socket.socket]:
    """The sockets the server closed, waiting until ``at_least`` are (or ``within`` s pass)."""
    closed: list[socket.socket] = []
    open_ = list(socks)
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as sel:
        for sock in open_:
            sel.register(sock, selectors.EVENT_READ)
        while len(closed) < at_least and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                sock = key.fileobj
                try:
                    gone = sock.recv(1) == b""
                except ConnectionError:
                    gone = True
                if gone:
                    sel.unregister(sock)
                    closed.append(sock)
        time.sleep(0.3)  # then a moment for any more than the cap allows to show up
        for key, _ in sel.select(timeout=0):
            closed.append(key.fileobj)
    return closed
