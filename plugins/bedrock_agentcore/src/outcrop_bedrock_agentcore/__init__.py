"""Outcrop plugin for Amazon Bedrock AgentCore runtimes (``bedrock/agentcore/{AGENT_RUNTIME_ARN}``).

The hooks live in ``outcrop_bedrock_agentcore.plugin`` (the ``outcrop`` entry point).
"""

__version__ = "0.1.0"

#: The ``ModelRoute.provider`` name this plugin answers for.
PROVIDER = "bedrock_agentcore"
#: The pip name, shown by ``outcrop plugins`` and in "install X" hints.
DISTRIBUTION = "outcrop-bedrock-agentcore"
#: The model-string prefix this plugin claims.
PREFIX = "bedrock/agentcore/"
#: AWS endpoint prefix and SigV4 signing name of InvokeAgentRuntime.
SERVICE = "bedrock-agentcore"
SIGNING_NAME = "bedrock-agentcore"

__all__ = ["DISTRIBUTION", "PREFIX", "PROVIDER", "SERVICE", "SIGNING_NAME", "__version__"]
