"""Outcrop plugin: the native Amazon Bedrock APIs under ``/bedrock/*``.

Requests are routed by raw path and method to bedrock-runtime, bedrock-agent-runtime or
bedrock-agentcore, re-signed with the gateway's credentials and relayed byte for byte; a
``/model/{name}/...`` path may name a configured ``model_name`` (aliases, load balancing).
"""

__version__ = "0.1.0"

#: The provider name this plugin puts on its ``ModelRoute`` and ``CallEvent``.
PROVIDER = "bedrock_passthrough"
#: The config section (top level of the YAML file).
SECTION = "bedrock_passthrough"
#: The URL prefix every pass-through route lives under.
PREFIX = "/bedrock"
