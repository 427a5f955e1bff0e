"""The ``anthropic_messages`` config section, and the tables it starts from.

```yaml
anthropic_messages:
  model_aliases:                 # the model a client names -> a configured model_name
    claude-sonnet-4-5: team-claude
  default_aliases: true          # also Anthropic's model ids -> the Bedrock model they name
  betas: [interleaved-thinking-2025-05-14, ...]   # anthropic-beta values forwarded to Bedrock
  context_edits: [compact_20260112]              # context_management edits forwarded
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from outcrop import ConfigError

from . import SECTION

#: Anthropic's model ids (and their aliases) -> the Bedrock foundation model they name. A client
#: naming one of them reaches every configured deployment of that model, in any region or
#: inference profile (``us.``, ``eu.``, ``global.``...).
ANTHROPIC_MODELS: dict[str, str] = {
    "claude-opus-4-5": "anthropic.claude-opus-4-5-20251101-v1:0",
    "claude-opus-4-5-20251101": "anthropic.claude-opus-4-5-20251101-v1:0",
    "claude-opus-4-1": "anthropic.claude-opus-4-1-20250805-v1:0",
    "claude-opus-4-1-20250805": "anthropic.claude-opus-4-1-20250805-v1:0",
    "claude-opus-4-0": "anthropic.claude-opus-4-20250514-v1:0",
    "claude-opus-4-20250514": "anthropic.claude-opus-4-20250514-v1:0",
    "claude-sonnet-4-5": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "claude-sonnet-4-5-20250929": "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "claude-sonnet-4-0": "anthropic.claude-sonnet-4-20250514-v1:0",
    "claude-sonnet-4-20250514": "anthropic.claude-sonnet-4-20250514-v1:0",
    "claude-haiku-4-5": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "claude-haiku-4-5-20251001": "anthropic.claude-haiku-4-5-20251001-v1:0",
    "claude-3-7-sonnet-latest": "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "claude-3-7-sonnet-20250219": "anthropic.claude-3-7-sonnet-20250219-v1:0",
    "claude-3-5-sonnet-latest": "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "claude-3-5-sonnet-20241022": "anthropic.claude-3-5-sonnet-20241022-v2:0",
    "claude-3-5-sonnet-20240620": "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "claude-3-5-haiku-latest": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "claude-3-5-haiku-20241022": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "claude-3-opus-latest": "anthropic.claude-3-opus-20240229-v1:0",
    "claude-3-opus-20240229": "anthropic.claude-3-opus-20240229-v1:0",
    "claude-3-haiku-20240307": "anthropic.claude-3-haiku-20240307-v1:0",
}

#: The ``anthropic-beta`` values Bedrock's Claude models accept (AWS's Claude Messages API
#: page). Others (``claude-code-20250219``, ``oauth-2025-04-20``...) are Anthropic-only: Bedrock
#: refuses a request naming one, so they are dropped.
BEDROCK_BETAS: tuple[str, ...] = (
    "computer-use-2024-10-22",
    "computer-use-2025-01-24",
    "computer-use-2025-11-24",
    "token-efficient-tools-2025-02-19",
    "interleaved-thinking-2025-05-14",
    "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "tool-search-tool-2025-10-19",
    "tool-examples-2025-10-29",
    "fine-grained-tool-streaming-2025-05-14",
)


#: The ``context_management`` edits Bedrock accepts; others are dropped (see ``keep_edits``).
BEDROCK_EDITS: tuple[str, ...] = ("compact_20260112",)


class Settings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    model_aliases: dict[str, str] = msgspec.field(default_factory=dict)
    default_aliases: bool = True
    betas: tuple[str, ...] = BEDROCK_BETAS
    context_edits: tuple[str, ...] = BEDROCK_EDITS


def parse_settings(sections: Mapping[str, Any]) -> Settings:
    raw = sections.get(SECTION)
    if raw is None:
        return Settings()
    try:
        return msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError.from_validation(exc, SECTION) from None
