"""Outcrop plugin: the native Amazon Bedrock APIs under ``/bedrock/*``.

Requests are routed by raw path and method to bedrock-runtime, bedrock-agent-runtime or
bedrock-agentcore, re-signed with the gateway's credentials and relayed byte for byte; a
``/model/{name}/...`` path may name a configured ``model_name`` (aliases, load balancing).
The hooks live in ``outcrop_bedrock_passthrough.plugin`` (the ``outcrop`` entry point).
"""

__version__ = "0.1.0"

#: The provider name this plugin puts on its ``ModelRoute`` and ``CallEvent``.
PROVIDER = "bedrock_passthrough"
#: The pip name, shown by ``outcrop plugins`` and in "install X" hints.
DISTRIBUTION = "outcrop-bedrock-passthrough"
#: The model-string prefix this plugin claims (``bedrock/{modelId}``, native deployments).
PREFIX = "bedrock/"
#: The URL prefix every pass-through route lives under.
PATH_PREFIX = "/bedrock"
#: The config section (top level of the YAML file).
SECTION = "bedrock_passthrough"

__all__ = ["DISTRIBUTION", "PATH_PREFIX", "PREFIX", "PROVIDER", "SECTION", "__version__"]
