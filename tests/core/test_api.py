"""The Python API runs the same pipeline in-process: sync, async, streaming, cost."""

import pytest

import outcrop
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY
from outcrop.testing.replies import ConverseReply, HttpError

from .converse_plugin import ConversePlugin


@pytest.fixture
def kwargs(outcrop_plugin, bedrock_simulator):
    outcrop_plugin(ConversePlugin(), "testprov")
    return {
        "api_base": bedrock_simulator.url,
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "aws_region_name": "us-east-2",
        "input_cost_per_token": 0.01,
        "output_cost_per_token": 0.02,
    }


def test_completion_sync(kwargs, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("sync answer", usage=(3, 5)))
    r = outcrop.completion(
        model="testprov/amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": "hi"}],
        **kwargs,
    )
    assert r.choices[0].message.content == "sync answer"
    assert r["choices"][0]["finish_reason"] == "stop"
    assert r.usage.total_tokens == 8
    assert r._hidden_params["response_cost"] == pytest.approx(3 * 0.01 + 5 * 0.02)
    assert r.testprov_op == "converse"
    assert bedrock_simulator.last().region == "us-east-2"


def test_completion_sync_stream(kwargs, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("a b c", chunks=["a ", "b ", "c"], usage=(1, 3)))
    stream = outcrop.completion(
        model="testprov/amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        **kwargs,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "a b c"


async def test_acompletion_and_stream_usage(kwargs, bedrock_simulator):
    bedrock_simulator.reply(ConverseReply("async", usage=(2, 2)))
    r = await outcrop.acompletion(
        model="testprov/amazon.nova-lite-v1:0",
        messages=[{"role": "user", "content": "hi"}],
        **kwargs,
    )
    assert r.choices[0].message.content == "async"
    bedrock_simulator.reply(ConverseReply("x y", chunks=["x ", "y"], usage=(2, 2)))
    chunks = [
        c
        async for c in await outcrop.acompletion(
            model="testprov/amazon.nova-lite-v1:0",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
            **kwargs,
        )
    ]
    assert chunks[-1].usage.total_tokens == 4


def test_errors_raise_outcrop_error(kwargs, bedrock_simulator):
    bedrock_simulator.reply(HttpError(403, "AccessDeniedException", "no access"))
    with pytest.raises(outcrop.OutcropError) as info:
        outcrop.completion(
            model="testprov/m", messages=[{"role": "user", "content": "hi"}], **kwargs
        )
    assert info.value.status == 403 and "no access" in info.value.message
    with pytest.raises(outcrop.OutcropError, match="no installed plugin claims"):
        outcrop.completion(model="unknown/model", messages=[{"role": "user", "content": "hi"}])
