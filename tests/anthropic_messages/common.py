"""Constants shared by the anthropic_messages tests."""

from __future__ import annotations

MASTER_KEY = "sk-anthropic-master"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
