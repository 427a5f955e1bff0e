"""HTTP/2 is served only when enabled (`general_settings.http2` / `serve --http2`): otherwise
prior knowledge gets a 505, an h2c upgrade is served as HTTP/1.1 and TLS offers only http/1.1.
When enabled, rapid reset (streams opened and reset in a loop) closes the connection with
ENHANCE_YOUR_CALM and never becomes a flood of upstream calls. Raw h2 on loopback."""

from __future__ import annotations

import base64
import socket
import ssl
import time
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import pytest
import trustme

from outcrop.serving.options import H2_MAX_RESETS

from .conftest import MASTER_KEY
from .rawhttp import CHAT_BODY, address, connect, read_response, request_head, still_serves

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class H2Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sock = connect(url)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.terminated: h2.events.ConnectionTerminated | None = None

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def headers(
        self, method: str, path: str, extra: list[tuple[str, str]] = ()
    ) -> list[tuple[str, str]]:
        host, port = address(self.url)
        return [
            (":method", method),
            (":path", path),
            (":scheme", "http"),
            (":authority", f"{host}:{port}"),
            *extra,
        ]

    def request(
        self, method: str, path: str, body: bytes | None = None, extra: list[tuple[str, str]] = ()
    ) -> tuple[int, bytes]:
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, self.headers(method, path, extra), end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        status, data = 0, b""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for event in self.receive():
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == sid:
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == sid:
                    data += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                    self.flush()
                    return status, data
            self.flush()
        raise AssertionError("no complete h2 response")

    def receive(self) -> list[Any]:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        events = self.conn.receive_data(data)
        for event in events:
            if isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = event
        return events

    def close(self) -> None:
        self.sock.close()


# -- HTTP/2 off (the default) --------------------------------------------------------------------


def test_prior_knowledge_is_refused_when_http2_is_off(bounded_gateway):
    with connect(bounded_gateway.url) as sock:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())  # the preface, then a SETTINGS frame
        r = read_response(sock)
        assert r.status == 505 and r.headers.get("connection") == "close"
        assert sock.recv(65536) == b""  # and closed
    still_serves(bounded_gateway)


def test_bare_preface_is_refused_when_http2_is_off(bounded_gateway):
    with connect(bounded_gateway.url) as sock:
        sock.sendall(PREFACE)
        assert read_response(sock).status == 505
    still_serves(bounded_gateway)


@pytest.mark.parametrize("path", ["/health/liveliness", "/v1/models"])
def test_h2c_upgrade_is_served_as_http11_when_http2_is_off(bounded_gateway, path):
    settings = base64.urlsafe_b64encode(b"").decode()
    with connect(bounded_gateway.url) as sock:
        sock.sendall(
            request_head(
                "GET",
                path,
                bounded_gateway.url,
                {
                    "connection": "Upgrade, HTTP2-Settings",
                    "upgrade": "h2c",
                    "http2-settings": settings,
                    "authorization": f"Bearer {MASTER_KEY}",
                },
            )
        )
        r = read_response(sock)
        assert r.status == 200 and r.raw.startswith(b"HTTP/1.1 200")
        # the connection is still HTTP/1.1: a second request on it is served
        sock.sendall(
            request_head(
                "GET", path, bounded_gateway.url, {"authorization": f"Bearer {MASTER_KEY}"}
            )
        )
        assert read_response(sock).status == 200
    still_serves(bounded_gateway)


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("h2tls")
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(ca_path), str(cert_path), str(key_path)


@pytest.mark.parametrize(("http2", "expected"), [(False, "http/1.1"), (True, "h2")])
def test_tls_offers_h2_only_when_enabled(gateway_factory, make_config, tls_pair, http2, expected):
    ca, cert, key = tls_pair
    gw = gateway_factory(make_config(http2=http2), certfile=cert, keyfile=key)
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    raw = socket.create_connection(address(gw.url), timeout=10)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.selected_alpn_protocol() == expected


# -- HTTP/2 on -----------------------------------------------------------------------------------


def test_cli_http2_flag_serves_h2_prior_knowledge(cli_server, make_config):
    server = cli_server(make_config(), "--http2")
    client = H2Client(server.url)
    try:
        assert client.request("GET", "/health/liveliness") == (200, b'"I\'m alive!"')
        status, body = client.request(
            "POST",
            "/v1/chat/completions",
            CHAT_BODY,
            [("authorization", f"Bearer {MASTER_KEY}"), ("content-type", "application/json")],
        )
        assert status == 200 and b"You said: hi" in body
    finally:
        client.close()
    assert server.stop()[0] == 0


def test_rapid_reset_closes_the_connection_and_calls_nobody(
    gateway_factory, make_config, bedrock_simulator
):
    gw = gateway_factory(make_config(http2=True))
    client = H2Client(gw.url)
    auth = [("authorization", f"Bearer {MASTER_KEY}"), ("content-type", "application/json")]
    sent = 0
    try:
        for _ in range(60):  # up to 600 streams, each opened with a whole request then reset
            for _ in range(10):
                sid = client.conn.get_next_available_stream_id()
                client.conn.send_headers(sid, client.headers("POST", "/v1/chat/completions", auth))
                client.conn.send_data(sid, CHAT_BODY, end_stream=True)
                client.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                sent += 1
            client.flush()
    except (ConnectionError, OSError, h2.exceptions.ProtocolError):
        pass  # the server closed the connection: what the test expects
    deadline = time.monotonic() + 15
    try:
        while client.terminated is None and time.monotonic() < deadline:
            client.receive()
    except (ConnectionError, OSError):
        pass
    finally:
        client.close()
    assert client.terminated is not None, f"no GOAWAY after {sent} reset streams"
    assert client.terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    time.sleep(0.5)  # anything the gateway had started would have reached the simulator by now
    assert len(bedrock_simulator.requests) <= H2_MAX_RESETS
    still_serves(gw)
    h2_again = H2Client(gw.url)  # a fresh h2 connection is served
    try:
        assert h2_again.request("GET", "/health/liveliness")[0] == 200
    finally:
        h2_again.close()


# -- granian (`--server granian`): HTTP/1.1 only --------------------------------------------------


@pytest.fixture
def granian_gateway(cli_server, make_config):
    return cli_server(make_config(), "--server", "granian")


def _until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_granian_refuses_prior_knowledge(granian_gateway, bedrock_simulator):
    client = H2Client(granian_gateway.url)  # the preface and SETTINGS, then a chat call
    try:
        auth = [("authorization", f"Bearer {MASTER_KEY}")]
        sid = client.conn.get_next_available_stream_id()
        client.conn.send_headers(sid, client.headers("POST", "/v1/chat/completions", auth))
        client.conn.send_data(sid, CHAT_BODY, end_stream=True)
        client.flush()
        answer = _until_closed(client.sock)  # at most an HTTP/1.1 error, never an h2 frame
    finally:
        client.close()
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:100]
    assert bedrock_simulator.requests == []
    still_serves(granian_gateway)


def test_granian_serves_an_h2c_upgrade_as_http11(granian_gateway):
    auth = {"authorization": f"Bearer {MASTER_KEY}"}
    upgrade = {"connection": "Upgrade, HTTP2-Settings", "upgrade": "h2c", "http2-settings": ""}
    with connect(granian_gateway.url) as sock:
        sock.sendall(request_head("GET", "/v1/models", granian_gateway.url, {**upgrade, **auth}))
        r = read_response(sock)
        assert r.status == 200 and r.raw.startswith(b"HTTP/1.1 200")
        sock.sendall(request_head("GET", "/v1/models", granian_gateway.url, auth))
        assert read_response(sock).status == 200  # still HTTP/1.1 on the same connection


def test_granian_tls_offers_only_http11(make_config, tls_pair, tmp_path):
    import subprocess
    import sys

    import yaml

    from tests.core.procs import free_port

    ca, cert, key = tls_pair
    path = tmp_path / "tls.yaml"
    path.write_text(yaml.safe_dump(make_config()))
    port = free_port()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "outcrop", "serve", "--server", "granian"),
            *("--config", str(path), "--host", "127.0.0.1", "--port", str(port)),
            *("--certfile", cert, "--keyfile", key),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2", "http/1.1"])
        deadline = time.monotonic() + 90
        while True:
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() in (None, "http/1.1")
            tls.sendall(request_head("GET", "/health/liveliness", f"https://127.0.0.1:{port}", {}))
            assert read_response(tls).status == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=60) == 0
