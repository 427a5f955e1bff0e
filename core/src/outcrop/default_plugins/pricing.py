"""Built-in price table: Bedrock on-demand prices (USD per million tokens, us-east-1).

Ids are matched without a cross-region prefix (``us.``, ``eu.``...) and without ``bedrock/``.
Keep it sorted by provider; a deployment's ``input_cost_per_token`` overrides it, and a plugin
may register newer prices through ``outcrop_register_pricing``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookimpl import hookimpl
from ..types import ModelPrice

_PER_MILLION: dict[str, tuple[float, float]] = {
    "amazon.nova-micro-v1:0": (0.035, 0.14),
    "amazon.nova-lite-v1:0": (0.06, 0.24),
    "amazon.nova-pro-v1:0": (0.8, 3.2),
    "amazon.nova-premier-v1:0": (2.5, 12.5),
    "amazon.titan-text-lite-v1": (0.15, 0.2),
    "amazon.titan-text-express-v1": (0.2, 0.6),
    "amazon.titan-text-premier-v1:0": (0.5, 1.5),
    "anthropic.claude-3-haiku-20240307-v1:0": (0.25, 1.25),
    "anthropic.claude-3-sonnet-20240229-v1:0": (3.0, 15.0),
    "anthropic.claude-3-opus-20240229-v1:0": (15.0, 75.0),
    "anthropic.claude-3-5-haiku-20241022-v1:0": (0.8, 4.0),
    "anthropic.claude-3-5-sonnet-20240620-v1:0": (3.0, 15.0),
    "anthropic.claude-3-5-sonnet-20241022-v2:0": (3.0, 15.0),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": (3.0, 15.0),
    "anthropic.claude-sonnet-4-20250514-v1:0": (3.0, 15.0),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": (3.0, 15.0),
    "anthropic.claude-haiku-4-5-20251001-v1:0": (1.0, 5.0),
    "anthropic.claude-opus-4-20250514-v1:0": (15.0, 75.0),
    "anthropic.claude-opus-4-1-20250805-v1:0": (15.0, 75.0),
    "anthropic.claude-v2:1": (8.0, 24.0),
    "anthropic.claude-instant-v1": (0.8, 2.4),
    "cohere.command-r-v1:0": (0.5, 1.5),
    "cohere.command-r-plus-v1:0": (3.0, 15.0),
    "deepseek.r1-v1:0": (1.35, 5.4),
    "meta.llama3-8b-instruct-v1:0": (0.3, 0.6),
    "meta.llama3-70b-instruct-v1:0": (2.65, 3.5),
    "meta.llama3-1-8b-instruct-v1:0": (0.22, 0.22),
    "meta.llama3-1-70b-instruct-v1:0": (0.72, 0.72),
    "meta.llama3-1-405b-instruct-v1:0": (2.4, 2.4),
    "meta.llama3-3-70b-instruct-v1:0": (0.72, 0.72),
    "mistral.mistral-7b-instruct-v0:2": (0.15, 0.2),
    "mistral.mixtral-8x7b-instruct-v0:1": (0.45, 0.7),
    "mistral.mistral-large-2402-v1:0": (4.0, 12.0),
    "mistral.mistral-small-2402-v1:0": (1.0, 3.0),
}


#: Prompt-cache prices as multiples of the input price (reads, writes), per model family.
_CACHE: dict[str, tuple[float, float]] = {
    "anthropic.claude": (0.1, 1.25),
    "amazon.nova": (0.25, 0.0),
}


@hookimpl(tryfirst=True)  # tryfirst: registered first, so any plugin's table overrides it
def outcrop_register_pricing(register: Callable[[str, ModelPrice], None]) -> None:
    for model_id, (inp, out) in _PER_MILLION.items():
        read, write = _CACHE.get(model_id.split("-", 1)[0], (None, None))
        register(
            model_id,
            ModelPrice(
                inp / 1_000_000,
                out / 1_000_000,
                None if read is None else inp * read / 1_000_000,
                None if write is None else inp * write / 1_000_000,
            ),
        )
