"""A PostgreSQL outage (the connection to a real server cut and restored through a local TCP
relay): cached keys keep working, spend rows wait in the buffer and are all written once the
database is back; a full buffer says so."""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from .conftest import BEDROCK_ID, PG_BASE, Admin, service_of, wait_for

MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]


class Relay:
    """127.0.0.1:<port> -> the PostgreSQL server; ``cut()`` drops every connection and refuses
    new ones until ``restore()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def relay() -> Any:
    r = Relay(("127.0.0.1", 5432))
    yield r
    r.close()


@pytest.fixture
def database_url(pg_url: str, relay: Relay) -> str:
    return pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")


def test_outage_keeps_serving_and_writes_every_row_later(
    gateway_factory, make_config, relay, bedrock_simulator
):
    assert PG_BASE.startswith("postgresql://") and "127.0.0.1:5432" in PG_BASE
    gw = gateway_factory(make_config())
    admin = Admin(gw.url)
    key = admin.generate(key_alias="through-outage")["key"]
    url = f"{gw.url}/bedrock/model/{BEDROCK_ID}/converse"
    service = service_of(gw)

    relay.cut()
    for _ in range(5):
        r = httpx.post(url, headers={"x-api-key": key}, json={"messages": MESSAGES})
        assert r.status_code == 200  # the cache answers; the database is not on the path
    assert wait_for(lambda: len(service.buffer) == 5)
    assert admin.get("/key/health")["buffered_rows"] == 5
    r = httpx.post(gw.url + "/key/generate", json={}, headers=admin.headers)
    assert r.status_code == 503 and "key store" in r.json()["error"]["message"]

    relay.restore()
    assert wait_for(lambda: not service.buffer, 20), "buffered rows were not written"
    rows = admin.get("/spend/logs", api_key=key)
    assert len(rows) == 5 and all(row["status"] == 200 for row in rows)
    assert admin.get("/key/info", key=key)["info"]["spend"] == pytest.approx(
        sum(r["spend"] for r in rows)
    )
    assert admin.get("/key/health")["dropped_rows"] == 0


def test_full_buffer_is_logged_and_counted(gateway_factory, make_config, relay, bedrock_simulator):
    gw = gateway_factory(make_config())
    service = service_of(gw)
    key = Admin(gw.url).generate()["key"]
    object.__setattr__(service.settings, "spend_buffer_rows", 2)  # a tiny buffer for the test
    relay.cut()
    with capture_logs() as logs:
        for _ in range(4):
            r = httpx.post(
                f"{gw.url}/bedrock/model/{BEDROCK_ID}/converse",
                headers={"x-api-key": key},
                json={"messages": MESSAGES},
            )
            assert r.status_code == 200
        assert wait_for(lambda: service.dropped == 2)
    full = [e for e in logs if e["event"] == "spend_buffer_full"]
    assert full and full[0]["log_level"] == "error" and full[0]["dropped_total"] == 1
    relay.restore()
    assert wait_for(lambda: not service.buffer, 20)
    assert service.stats()["dropped_rows"] == 2 and service.written == 2
