"""Outcrop plugin: Anthropic's Messages API on Amazon Bedrock's Claude models.

``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` are served on the gateway's
``bedrock/{model id or inference profile}`` deployments through InvokeModel,
InvokeModelWithResponseStream and CountTokens. The hooks live in
``outcrop_anthropic_messages.plugin`` (the ``outcrop`` entry point).
"""

__version__ = "0.1.0"

#: The surface and provider name on this plugin's ``CallEvent``s and admissions.
SURFACE = "messages"
PROVIDER = "anthropic_messages"
#: The config section (top level of the YAML file).
SECTION = "anthropic_messages"
#: The ``anthropic_version`` Bedrock's Claude models expect in the body.
BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"

__all__ = ["BEDROCK_ANTHROPIC_VERSION", "PROVIDER", "SECTION", "SURFACE", "__version__"]
