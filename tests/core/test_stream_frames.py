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
