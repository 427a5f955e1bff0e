"""Outcrop plugin: OpenAI chat completions and embeddings on Bedrock foundation models.

``bedrock/{modelId}`` and ``bedrock/converse/{modelId}`` deployments are served on
``/v1/chat/completions`` through Converse / ConverseStream, and embedding models on
``/v1/embeddings`` through InvokeModel. The hooks live in ``outcrop_bedrock_converse.plugin``
(the ``outcrop`` entry point).
"""

__version__ = "0.1.0"

#: The ``ModelRoute.provider`` name this plugin answers for.
PROVIDER = "bedrock_converse"
#: The pip name, shown by ``outcrop plugins`` and in "install X" hints.
DISTRIBUTION = "outcrop-bedrock-converse"
#: The model-string prefixes this plugin claims (the second is LiteLLM's explicit form).
PREFIX = "bedrock/"
CONVERSE_PREFIX = "bedrock/converse/"
#: AWS endpoint prefix and SigV4 signing name of the Bedrock runtime.
SERVICE = "bedrock-runtime"
SIGNING_NAME = "bedrock"

__all__ = [
    "CONVERSE_PREFIX",
    "DISTRIBUTION",
    "PREFIX",
    "PROVIDER",
    "SERVICE",
    "SIGNING_NAME",
    "__version__",
]
