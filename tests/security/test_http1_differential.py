"""The default server's HTTP/1.1 (outcrop.serving.http1) against h11, the parser hypercorn used
before it, on generated request streams: valid and malformed, pipelined, chunked with extensions
and trailers, odd Content-Length and Transfer-Encoding, upgrades, bare line ends, each split into
reads at generated places.

The property: the server either refuses (a 4xx/5xx, then the close), having served a prefix of
what h11 saw, or serves exactly the requests h11 sees (method, target, headers, body: count and
boundaries). A body framed differently from h11 where both accept is request smuggling behind a
proxy that frames as h11 does. It never raises out of the connection's task and never hangs (the
harness bounds each stream). Where the server takes what h11 refused, that is one of the
documented leniencies (docs/server.md: empty lines before a request line).

Deterministic (``derandomize=True``), as test_fuzz.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .h1harness import Outcome, h11_parse, serve

DIFF = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- strategies -------------------------------------------------------------------------------

methods = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"get"])
targets = st.sampled_from(
    [b"/", b"/a?b=c", b"/%41", b"*", b"http://h/x", b"/a b", b"/\xc3\xa9", b"/a#f", b"/?"]
)
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0"])
eols = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"])

lengths = st.sampled_from(
    [
        b"3", b"0", b"03", b"+3", b" 3", b"3 ", b"3,3", b"3, 3", b"-1", b"0x3", b"3a",
        b"99999999999999999999", b"18446744073709551616", b"", b"1e1",
    ]
)  # fmt: skip
codings = st.sampled_from(
    [
        b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"chunked, identity",
        b"identity, chunked", b"xchunked", b"chunkedx", b"gzip, chunked", b"identity",
        b"chunked,", b",chunked", b"\tchunked",
    ]
)  # fmt: skip
odd_headers = st.sampled_from(
    [
        (b"X-A", b"1"), (b"X-A ", b"1"), (b"X\x00A", b"1"), (b"X-A", b"a\x00b"),
        (b"X-A", b"a\rb"), (b"X-A", b"\xff\xfe"), (b"X-A", b" padded \t"), (b"X-A", b""),
        (b"Connection", b"upgrade"), (b"Upgrade", b"websocket"), (b"Upgrade", b"h2c"),
        (b"Connection", b"close"), (b"Connection", b"keep-alive"), (b"Expect", b"100-continue"),
        (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Host", b"other"), (b"X A", b"1"),
        (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3"),
    ]
)  # fmt: skip


@st.composite
def chunked_body(draw: st.DrawFn, eol: bytes) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(min_size=1, max_size=20))
        size = draw(st.sampled_from(["%x", "%X", "0%x", "%x "])) % len(data)
        ext = draw(st.sampled_from([b"", b";a=b", b";a", b" ;a=b", b';a="b c"']))
        out += size.encode() + ext + eol + data + draw(st.sampled_from([eol, b"\r\n", b"x"]))
    out += draw(st.sampled_from([b"0", b"00", b"0;x=y"])) + eol
    if draw(st.booleans()):
        out += draw(st.sampled_from([b"X-T: 1", b"Content-Length: 9", b"bad trailer"])) + eol
    return out + eol


@st.composite
def request(draw: st.DrawFn) -> bytes:
    eol = draw(eols) if draw(st.integers(0, 9)) == 0 else b"\r\n"
    line = draw(methods) + b" " + draw(targets) + b" " + draw(versions)
    headers: list[tuple[bytes, bytes]] = []
    if draw(st.integers(0, 9)):
        headers.append((b"Host", b"h"))
    headers += draw(st.lists(odd_headers, max_size=3))
    framing = draw(st.sampled_from(["none", "length", "chunked", "both", "te", "lengths"]))
    body = draw(st.binary(max_size=12))
    if framing == "length":
        headers.append((b"Content-Length", draw(lengths)))
    elif framing == "lengths":
        headers += [(b"Content-Length", draw(lengths)), (b"Content-Length", draw(lengths))]
    elif framing == "chunked":
        headers.append((b"Transfer-Encoding", b"chunked"))
        body = draw(chunked_body(eol))
    elif framing == "te":
        headers.append((b"Transfer-Encoding", draw(codings)))
        if draw(st.booleans()):
            body = draw(chunked_body(eol))
    elif framing == "both":
        headers += [(b"Content-Length", draw(lengths)), (b"Transfer-Encoding", draw(codings))]
        body = draw(chunked_body(eol))
    headers = draw(st.permutations(headers))
    head = (
        line
        + eol
        + b"".join(n + b":" + draw(st.sampled_from([b" ", b""])) + v + eol for n, v in headers)
    )
    return head + eol + body


@st.composite
def stream(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    data = b"".join(draw(st.lists(request(), min_size=1, max_size=3)))
    if draw(st.integers(0, 19)) == 0:
        data = b"\r\n" + data
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=4))))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return data, [c for c in chunks if c]


def _check(data: bytes, chunks: list[bytes]) -> tuple[Outcome, object]:
    ours = serve(chunks)
    # empty lines before a request line are skipped (docs/server.md), where h11 refused them
    theirs = h11_parse(data.lstrip(b"\r\n"))
    assert not ours.errors, (data, chunks, ours.errors)
    if ours.refused is not None:
        assert ours.closed, (data, chunks)
        assert ours.seen == theirs.seen[: len(ours.seen)], (data, chunks, ours.seen, theirs.seen)
    elif theirs.error is None:
        assert ours.seen == theirs.seen, (data, chunks, ours.seen, theirs.seen)
    else:
        assert ours.seen == theirs.seen, (data, chunks, ours.seen, theirs.seen, theirs.error)
    return ours, theirs


@DIFF
@given(stream())
def test_frames_as_h11_or_refuses(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    _check(data, chunks)


def test_every_split_of_a_pipelined_upgrade_with_a_body() -> None:
    """The synthetic head behind which a ``Connection: upgrade`` request's body is parsed, at
    every split of the stream into two reads: the body and the request after it as h11 frames
    them."""
    for framing, body in (
        (b"Content-Length: 5", b"a\r\n\r\n"),
        (b"Transfer-Encoding: chunked", b"2;x=y\r\nab\r\n0\r\nT: 1\r\n\r\n"),
    ):
        data = (
            b"POST /u HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
            + framing
            + b"\r\n\r\n"
            + body
            + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        expected = h11_parse(data).seen
        assert [seen[1] for seen in expected] == [b"/u", b"/next"]
        for cut in range(1, len(data)):
            ours = serve([data[:cut], data[cut:]])
            assert not ours.errors and ours.refused is None, cut
            assert ours.seen == expected, cut


def test_an_unread_body_never_hangs_the_connection() -> None:
    """A route that answers, after a pause, without reading a body that filled its receive
    queue: the connection finishes (the queue's waiting put and the ``http.disconnect`` do not
    wait for good; tests/core/test_http1.py has the same on a socket)."""

    async def late(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    head = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n"
    ours = serve([head] + [b"x" * 65536] * 40, late)  # TimeoutError before the fix
    assert not ours.errors
    assert ours.closed and ours.written.startswith(b"HTTP/1.1 401 \r\n")
