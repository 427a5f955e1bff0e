"""A streamed text chunk made from its prefix is byte for byte the encoder's JSON of it."""

from __future__ import annotations

import pytest

from outcrop.chat import _TextFrames
from outcrop.wire import ChatCompletionChunk, ChunkChoice, ChunkDelta, encoder

TEXTS = ["Hello", "", 'quote " backslash \\ slash /', "é中😀", "\x00nul", "\n\t\r", "\u2028"]


@pytest.mark.parametrize("model", ["anthropic.claude-3-5-haiku", 'odd"model\\\x00', "é"])
def test_text_frames_equal_the_encoded_chunk(model):
    frames = _TextFrames("chatcmpl-abc", 1_700_000_000)
    for text in TEXTS:
        chunk = ChatCompletionChunk(
            id="chatcmpl-abc",
            created=1_700_000_000,
            model=model,
            choices=[ChunkChoice(0, ChunkDelta(content=text), None)],
        )
        assert frames(model, text) == encoder.encode(chunk)


def test_text_frames_follow_a_model_change():
    frames = _TextFrames("chatcmpl-abc", 1)
    assert b'"model":"a"' in frames("a", "x")
    assert b'"model":"b"' in frames("b", "x")
    assert b'"model":"a"' in frames("a", "x")


async def test_frames_of_one_read_share_sends_the_first_at_once_at_most_16_together():
    from outcrop import chat

    class Upstream:  # what _send_stream reads of an UpstreamResponse
        events_ready = 0
        before_wait = None

    class Life:  # what _send_stream uses of a CallLifecycle
        disconnected = False

        def __init__(self) -> None:
            self.sent: list[dict] = []

        async def send(self, message: dict) -> None:
            self.sent.append(message)

    upstream, life = Upstream(), Life()

    async def frames():
        for i in range(40):  # 40 events decoded from one read
            upstream.events_ready = 39 - i
            yield b"%d" % i
        upstream.events_ready = 0

    await chat._send_stream(life, frames(), {}, upstream)
    bodies = [m["body"] for m in life.sent if m["type"] == "http.response.body"]
    assert life.sent[0]["type"] == "http.response.start" and bodies[-1] == b""
    assert bodies[0] == b"data: 0\n\n"  # the first token never waits for the others
    assert all(body.count(b"data: ") <= chat._MOST_HELD for body in bodies)
    assert b"".join(bodies) == b"".join(b"data: %d\n\n" % i for i in range(40)) + chat._DONE
    assert upstream.before_wait is None  # unhooked when the stream ends
