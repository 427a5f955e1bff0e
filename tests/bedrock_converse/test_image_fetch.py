"""Opt-in fetching of http(s) image URLs (``image_url_hosts``): only listed hosts, only public
addresses unless the operator lists the address itself, no redirects, bounded size and time."""

from __future__ import annotations

import base64
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

import outcrop
from outcrop import OutcropError
from outcrop_bedrock_converse import fetch
from outcrop_bedrock_converse.fetch import HostRules

from .common import ALIAS, MASTER_KEY, PNG_B64, PROFILE_ARN

PNG = base64.b64decode(PNG_B64)
JPEG = b"\xff\xd8\xff\xe0" + bytes(32)


class ImageServer:
    """A loopback web server: ``routes[path] = (status, headers, body)``; records each hit."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                status, headers, body = server.routes.get(self.path, (404, {}, b"missing"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.routes["/cat.png"] = (200, {"Content-Type": "image/png"}, PNG)
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def _ask(client: openai.OpenAI, url: str, **kwargs):
    return client.chat.completions.create(
        model=ALIAS,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
        **kwargs,
    )


def test_a_listed_host_is_fetched_and_sent_as_image_bytes(make_gateway, bedrock_simulator, images):
    client = _client(make_gateway(image_url_hosts=["127.0.0.1"]))
    _ask(client, images.url("/cat.png"))
    content = bedrock_simulator.last().json()["messages"][0]["content"]
    assert content[1] == {"image": {"format": "png", "source": {"bytes": PNG_B64}}}
    assert images.hits == ["/cat.png"]


def test_the_same_url_twice_is_fetched_once_and_streams_work(
    make_gateway, bedrock_simulator, images
):
    client = _client(make_gateway(image_url_hosts=["127.0.0.1"]))
    part = {"type": "image_url", "image_url": {"url": images.url("/cat.png")}}
    stream = client.chat.completions.create(
        model=ALIAS, messages=[{"role": "user", "content": [part, part]}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    content = bedrock_simulator.last().json()["messages"][0]["content"]
    assert [b["image"]["format"] for b in content] == ["png", "png"]
    assert images.hits == ["/cat.png"]


def test_without_the_setting_nothing_is_fetched(make_gateway, bedrock_simulator, images):
    client = _client(make_gateway())
    with pytest.raises(openai.BadRequestError, match="image URLs are not fetched for this model"):
        _ask(client, images.url("/cat.png"))
    # a caller cannot turn fetching on from the request body
    with pytest.raises(openai.BadRequestError):
        _ask(client, images.url("/cat.png"), extra_body={"image_url_hosts": ["127.0.0.1"]})
    assert images.hits == []
    assert bedrock_simulator.requests == []


@pytest.mark.parametrize(
    ("hosts", "host", "message"),
    [
        # not on the list
        (["images.example.com"], "127.0.0.1", "'127.0.0.1' is not one of them"),
        # a listed name that resolves to an internal address (DNS rebinding, /etc/hosts)
        (["localhost"], "localhost", "resolves only to internal addresses"),
        # a wildcard covers subdomains, not an address
        (["*.example.com"], "127.0.0.1", "is not one of them"),
    ],
)
def test_unlisted_hosts_and_internal_addresses_are_refused(
    make_gateway, bedrock_simulator, images, hosts, host, message
):
    client = _client(make_gateway(image_url_hosts=hosts))
    with pytest.raises(openai.BadRequestError, match=re.escape(message)) as caught:
        _ask(client, images.url("/cat.png", host=host))
    assert caught.value.body["param"] == "messages[0].content[1]"
    assert images.hits == []
    assert bedrock_simulator.requests == []


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ((302, {"Location": "/cat.png"}, b""), "answered HTTP 302"),  # redirects not followed
        ((404, {}, b"no"), "answered HTTP 404"),
        ((200, {"Content-Type": "text/html"}, b"<html>"), "image type 'text/html'"),
        ((200, {"Content-Type": "image/png"}, JPEG), "not a PNG image (it looks like JPEG)"),
        ((200, {"Content-Type": "image/png"}, b""), "answered no data"),
        (
            (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n" + bytes(3_750_001)),
            "larger than Bedrock's limit",
        ),
    ],
)
def test_bad_answers_are_400(make_gateway, bedrock_simulator, images, route, message):
    images.routes["/bad"] = route
    client = _client(make_gateway(image_url_hosts=["127.0.0.1"]))
    with pytest.raises(openai.BadRequestError, match=re.escape(message)):
        _ask(client, images.url("/bad"))
    assert images.hits == ["/bad"]
    assert bedrock_simulator.requests == []


def test_a_host_that_never_answers_times_out(make_gateway, bedrock_simulator, monkeypatch):
    monkeypatch.setattr(fetch, "TIMEOUT_S", 0.5)
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)  # accepts connections, never answers
    try:
        client = _client(make_gateway(image_url_hosts=["127.0.0.1"]))
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}/cat.png"
        with pytest.raises(openai.BadRequestError, match="could not be fetched"):
            _ask(client, url)
    finally:
        blackhole.close()
    assert bedrock_simulator.requests == []


def test_a_bad_host_list_stops_the_gateway(simulator_params):
    model = {"model_name": "m", "litellm_params": simulator_params(f"bedrock/{PROFILE_ARN}")}
    for bad in ("127.0.0.1", [], ["http://x.test/"], ["*"], ["a b"]):
        model["litellm_params"]["image_url_hosts"] = bad
        with pytest.raises((OutcropError, outcrop.ConfigError), match="image_url_hosts"):
            outcrop.Gateway(outcrop.parse_config({"model_list": [model]}))


def test_host_rules():
    rules = HostRules.parse(["Images.Example.com", "*.cdn.example.net", "10.0.0.7", "[::1]"])
    assert rules.allows_host("images.example.com.")
    assert rules.allows_host("a.b.cdn.example.net")
    assert not rules.allows_host("cdn.example.net")
    assert not rules.allows_host("evilcdn.example.net")
    assert rules.allows_address("93.184.216.34")
    assert rules.allows_address("10.0.0.7")  # listed by itself
    assert rules.allows_address("::1")
    for internal in ("10.0.0.8", "127.0.0.1", "169.254.169.254", "192.168.1.1", "::ffff:127.0.0.1"):
        assert not rules.allows_address(internal), internal
