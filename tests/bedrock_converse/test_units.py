"""Model strings, finish reasons and usage, without a server."""

from __future__ import annotations

import pytest

from outcrop import OutcropError, PromptTokensDetails, Usage
from outcrop_bedrock_converse.models import parse_model
from outcrop_bedrock_converse.request import Sent
from outcrop_bedrock_converse.response import finish_reason, thinking_block, usage_from

from .common import CLAUDE, PROFILE_ARN


@pytest.mark.parametrize(
    ("model", "model_id", "region", "base", "embedding"),
    [
        (f"bedrock/{CLAUDE}", CLAUDE, None, "anthropic.claude-3-5-sonnet-20240620-v1:0", None),
        (
            f"bedrock/converse/{CLAUDE}",
            CLAUDE,
            None,
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            None,
        ),
        (
            "bedrock/global.amazon.nova-2-lite-v1:0",
            "global.amazon.nova-2-lite-v1:0",
            None,
            "amazon.nova-2-lite-v1:0",
            None,
        ),
        (f"bedrock/{PROFILE_ARN}", PROFILE_ARN, "eu-west-1", "a1b2c3d4e5f6", None),
        (
            "bedrock/amazon.titan-embed-text-v2:0",
            "amazon.titan-embed-text-v2:0",
            None,
            "amazon.titan-embed-text-v2:0",
            "titan-v2",
        ),
        (
            "bedrock/eu.cohere.embed-v4:0",
            "eu.cohere.embed-v4:0",
            None,
            "cohere.embed-v4:0",
            "cohere-v4",
        ),
    ],
)
def test_model_strings(model, model_id, region, base, embedding):
    parsed = parse_model(model)
    assert parsed is not None
    assert (parsed.model_id, parsed.region, parsed.base, parsed.embedding) == (
        model_id,
        region,
        base,
        embedding,
    )


def test_labels_escape_like_botocore():
    assert parse_model(f"bedrock/{PROFILE_ARN}").label == (
        "arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Aapplication-inference-profile%2Fa1b2c3d4e5f6"
    )
    assert parse_model(f"bedrock/{CLAUDE}").label == CLAUDE.replace(":", "%3A")


def test_other_strings_are_not_claimed():
    assert parse_model("openai/gpt-4o") is None


@pytest.mark.parametrize("model", ["bedrock/agents/A/B", "bedrock/llama/some/thing"])
def test_a_slash_outside_an_arn_is_not_a_model_id(model):
    with pytest.raises(OutcropError) as caught:
        parse_model(model)
    assert "only an ARN has '/'" in caught.value.message


@pytest.mark.parametrize(
    "model", ["bedrock/", "bedrock/converse/", "bedrock/has space", "bedrock/é"]
)
def test_malformed_strings_are_400(model):
    with pytest.raises(OutcropError) as caught:
        parse_model(model)
    assert caught.value.status == 400 and caught.value.param == "model"


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
    ],
)
def test_finish_reasons(stop, expected):
    assert finish_reason(stop, Sent(CLAUDE, None), False) == expected


def test_the_forced_json_tool_finishes_with_stop():
    assert finish_reason("tool_use", Sent(CLAUDE, "json_tool_call"), True) == "stop"


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens():
    usage = usage_from(
        {
            "inputTokens": 5,
            "outputTokens": 7,
            "totalTokens": 112,
            "cacheReadInputTokens": 80,
            "cacheWriteInputTokens": 20,
        }
    )
    assert usage == Usage(105, 7, 112, PromptTokensDetails(80, 20))
    assert usage_from(None) is None
    assert usage_from({"inputTokens": -1, "outputTokens": True}) == Usage(
        0, 0, 0, PromptTokensDetails(0, 0)
    )


def test_thinking_blocks():
    assert thinking_block({"reasoningText": {"text": "t", "signature": "s"}}) == {
        "type": "thinking",
        "thinking": "t",
        "signature": "s",
    }
    assert thinking_block({"redactedContent": "ZGF0YQ=="}) == {
        "type": "redacted_thinking",
        "data": "ZGF0YQ==",
    }


def test_usage_sums_keep_cache_details():
    total = (
        Usage(10, 1, 11, PromptTokensDetails(4, 2))
        + Usage(5, 1, 6)
        + Usage(3, 0, 3, PromptTokensDetails(1, 0))
    )
    assert total == Usage(18, 2, 20, PromptTokensDetails(5, 2))


def test_cache_prices_follow_the_table_unless_the_deployment_sets_the_input_price():
    from outcrop import DeploymentParams, ModelPrice
    from outcrop.pricing import PriceTable

    table = PriceTable()
    table.register(CLAUDE, ModelPrice(3e-6, 15e-6, 0.3e-6, 3.75e-6))
    usage = Usage(1300, 10, 1310, PromptTokensDetails(1000, 200))
    assert table.cost(usage, CLAUDE) == pytest.approx(
        100 * 3e-6 + 1000 * 0.3e-6 + 200 * 3.75e-6 + 10 * 15e-6
    )
    override = DeploymentParams(model="x", input_cost_per_token=1e-6)
    assert table.cost(usage, CLAUDE, override) == pytest.approx(1300 * 1e-6 + 10 * 15e-6)
