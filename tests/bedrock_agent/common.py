"""Constants shared by the bedrock_agent tests."""

from __future__ import annotations

MASTER_KEY = "sk-agent-test"
AGENT = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
AGENT_2 = "bedrock/agent/AGENT456/ALIAS789"
SOURCE_ARN = "arn:aws:bedrock:us-west-2:123456789012:agent/L1RT58GYRW"
