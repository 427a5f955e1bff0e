"""Price lookup: model id -> USD per token, and the cost of one call."""

from __future__ import annotations

import re

from .config import DeploymentParams
from .types import ModelPrice
from .wire import Usage

_GEO_PREFIX = re.compile(r"^(us|eu|apac|us-gov|ca|jp|au|global)\.")


def normalize_model_id(model: str) -> str:
    """``bedrock/us.anthropic.x`` or an inference-profile ARN -> ``anthropic.x``."""
    model = model.removeprefix("bedrock/").removeprefix("converse/").removeprefix("invoke/")
    if model.startswith("arn:"):
        model = model.rsplit("/", 1)[-1]
    return _GEO_PREFIX.sub("", model)


class PriceTable:
    def __init__(self) -> None:
        self._prices: dict[str, ModelPrice] = {}

    def register(self, model_id: str, price: ModelPrice) -> None:
        self._prices[normalize_model_id(model_id)] = price

    def lookup(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        return self._prices.get(normalize_model_id(model))

    def cost(
        self, usage: Usage | None, model: str | None, params: DeploymentParams | None = None
    ) -> float | None:
        """USD for ``usage`` on ``model``; deployment overrides win; ``None`` when unknown."""
        if usage is None:
            return None
        price = self.lookup(model)
        inp = params.input_cost_per_token if params else None
        out = params.output_cost_per_token if params else None
        if inp is None and price is not None:
            inp = price.input_cost_per_token
        if out is None and price is not None:
            out = price.output_cost_per_token
        if inp is None or out is None:
            return None
        details = usage.prompt_tokens_details
        if details is None:
            return round(usage.prompt_tokens * inp + usage.completion_tokens * out, 10)
        read, written = details.cached_tokens, details.cache_creation_tokens
        # the table's cache prices go with its input price, not with a deployment's override
        table = price if price is not None and inp == price.input_cost_per_token else None
        read_price = table.cache_read_input_token_cost if table else None
        write_price = table.cache_creation_input_token_cost if table else None
        plain = usage.prompt_tokens - read - written
        return round(
            plain * inp
            + read * (inp if read_price is None else read_price)
            + written * (inp if write_price is None else write_price)
            + usage.completion_tokens * out,
            10,
        )
