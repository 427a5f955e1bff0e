"""Outcrop plugin: Amazon Bedrock Agents (InvokeAgent) behind the OpenAI chat-completions API.

Model strings ``bedrock/agent/{AGENT_ID}/{ALIAS_ID}``; see docs/providers/bedrock_agent.md.
The hooks live in ``outcrop_bedrock_agent.plugin`` (the ``bedrock_agent`` entry point).
"""

__version__ = "0.1.0"
