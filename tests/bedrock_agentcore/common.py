"""Constants shared by the bedrock_agentcore tests."""

from __future__ import annotations

from outcrop import Config

PREFIX = "bedrock/agentcore/"
ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent_runtime-AbCdEf1234"
ARN_EAST = "arn:aws:bedrock-agentcore:us-east-1:987654321098:runtime/production_runtime-XyZ0987654"
ARN_EU = "arn:aws:bedrock-agentcore:eu-central-1:123456789012:runtime/eu_agent-Qw3rTy7890"
MODEL = PREFIX + ARN
MODEL_EAST = PREFIX + ARN_EAST
MODEL_EU = PREFIX + ARN_EU
KEY = "sk-agentcore-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
SESSION_HEADER = "x-amzn-bedrock-agentcore-runtime-session-id"
USER = [{"role": "user", "content": "Summarize the main benefits of cloud computing"}]
#: ``outcrop.completion`` caches one gateway per (event loop, config). The synchronous API's loop
#: is shared by the whole test session, so these tests use their own (empty) config object rather
#: than the default key, which other suites' gateways (with test-only plugins) may own.
API_CONFIG = Config()
