"""Outcrop plugin: Amazon Bedrock Agents (InvokeAgent) behind the OpenAI chat-completions API.

Model strings ``bedrock/agent/{AGENT_ID}/{ALIAS_ID}``; see docs/providers/bedrock_agent.md.
The hooks live in ``outcrop_bedrock_agent.plugin`` (the ``bedrock_agent`` entry point).
"""

__version__ = "0.1.0"

#: The ``ModelRoute.provider`` name this plugin answers for.
PROVIDER = "bedrock_agent"
#: The pip name, shown by ``outcrop plugins`` and in "install X" hints.
DISTRIBUTION = "outcrop-bedrock-agent"
#: The model-string prefix this plugin claims.
PREFIX = "bedrock/agent/"
#: AWS endpoint prefix and SigV4 signing name of InvokeAgent.
SERVICE = "bedrock-agent-runtime"
SIGNING_NAME = "bedrock"

__all__ = ["DISTRIBUTION", "PREFIX", "PROVIDER", "SERVICE", "SIGNING_NAME", "__version__"]
