"""Constants and helpers shared by the outcrop-otel tests."""

from __future__ import annotations

from typing import Any

import openai

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

MASTER_KEY = "sk-otel-master"
SDK_KEY_ID = "OUTCROPOTELKEY0001"
SDK_SECRET = "outcrop-otel-secret-00000000000001"
NOVA = "amazon.nova-lite-v1:0"
RUNTIME = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent_runtime-AbCdEf1234"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
USER = [{"role": "user", "content": "what is the capital of France?"}]
SERVER, CLIENT = 2, 3  # SpanKind in the protobuf (SPAN_KIND_SERVER, SPAN_KIND_CLIENT)
ERROR = 2  # STATUS_CODE_ERROR


def gateway_config(url: str, **extra: Any) -> dict[str, Any]:
    creds = {
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": url,
    }
    return {
        "model_list": [
            {
                "model_name": "nova",
                "litellm_params": {
                    "model": f"bedrock/converse/{NOVA}",
                    "input_cost_per_token": 0.001,
                    "output_cost_per_token": 0.002,
                    **creds,
                },
            },
            {
                "model_name": "agent",
                "litellm_params": {"model": f"bedrock/agentcore/{RUNTIME}", **creds},
            },
        ],
        "litellm_settings": {"callbacks": ["otel"]},
        "general_settings": {"master_key": MASTER_KEY},
        "bedrock_passthrough": {
            **creds,
            "keys": [{"access_key_id": SDK_KEY_ID, "secret_access_key": SDK_SECRET}],
        },
        **extra,
    }


def openai_client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def trace_headers() -> dict[str, str]:
    return {
        "traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01",
        "tracestate": "vendor=abc",
        "baggage": "user=alice",
    }
