"""Read text, usage and stop reasons out of the JSON shapes agents commonly return.

An AgentCore runtime answers whatever its container writes, so there is no schema: these are
the shapes of the AgentCore SDK samples (``{"result": ...}``, a Strands message), Bedrock
Converse, the OpenAI chat completion and plain ``text``/``content``/``response`` fields.
"""

from __future__ import annotations

from typing import Any

from outcrop import Usage

#: Keys that hold the answer, most specific first.
TEXT_KEYS = (
    "result",
    "response",
    "output",
    "output_text",
    "answer",
    "completion",
    "generated_text",
    "text",
    "content",
    "message",
    "data",
)
_MAX_DEPTH = 8

#: Bedrock/Strands stop reasons -> OpenAI finish reasons. ``tool_use`` is absent on purpose:
#: the agent runs its own tools and keeps going, so it is not the end of the answer.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "stop": "stop",
    "max_tokens": "length",
    "length": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "content_filter": "content_filter",
}


def extract_text(value: Any, depth: int = 0) -> str | None:
    """The answer text inside ``value``, or ``None`` when there is none."""
    if isinstance(value, str):
        return value
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, list):
        texts = [t for item in value if (t := extract_text(item, depth + 1)) is not None]
        return "".join(texts) if texts else None
    if not isinstance(value, dict):
        return None
    choices = value.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        text = extract_text(
            first.get("message") or first.get("delta") or first.get("text"), depth + 1
        )
        if text is not None:
            return text
    for key in TEXT_KEYS:
        if key in value:
            text = extract_text(value[key], depth + 1)
            if text is not None:
                return text
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage_from(value: Any) -> Usage | None:
    """Usage in Bedrock (``inputTokens``), OpenAI (``prompt_tokens``) or Anthropic naming."""
    if not isinstance(value, dict):
        return None
    for prompt_key, completion_key in (
        ("inputTokens", "outputTokens"),
        ("prompt_tokens", "completion_tokens"),
        ("input_tokens", "output_tokens"),
    ):
        prompt, completion = _int(value.get(prompt_key)), _int(value.get(completion_key))
        if prompt is not None and completion is not None:
            return Usage(prompt, completion, prompt + completion)
    return None


def finish_from(value: dict[str, Any]) -> str | None:
    reason = value.get("stopReason") or value.get("stop_reason") or value.get("finish_reason")
    return FINISH_REASONS.get(reason) if isinstance(reason, str) else None
