"""Token usage from Claude's answers: Anthropic's counts -> the core's ``Usage``.

Anthropic's ``input_tokens`` leave out the prompt-cache reads and writes; the core counts them
in ``prompt_tokens`` (OpenAI's convention) and reports them in ``prompt_tokens_details``, so
spend and logs see every token and the price table bills each at its own rate.
"""

from __future__ import annotations

import msgspec

from outcrop import PromptTokensDetails, Usage


class AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: AnthropicUsage | None = None


class Event(msgspec.Struct):
    """The parts of one Claude stream event (or whole answer) the gateway reads."""

    type: str = ""
    message: _Message | None = None
    usage: AnthropicUsage | None = None


decode_event = msgspec.json.Decoder(Event).decode


class Tally:
    """Usage of one call: ``message_start`` gives input and cache counts, each
    ``message_delta`` the output so far (a running total, as Anthropic sends it)."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "seen")

    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = 0
        self.seen = False

    def add(self, usage: AnthropicUsage) -> None:
        self.seen = True
        if usage.input_tokens is not None:
            self.input = usage.input_tokens
        if usage.output_tokens is not None:
            self.output = usage.output_tokens
        if usage.cache_read_input_tokens is not None:
            self.cache_read = usage.cache_read_input_tokens
        if usage.cache_creation_input_tokens is not None:
            self.cache_write = usage.cache_creation_input_tokens

    def usage(self) -> Usage | None:
        if not self.seen:
            return None
        prompt = self.input + self.cache_read + self.cache_write
        details = (
            PromptTokensDetails(self.cache_read, self.cache_write)
            if self.cache_read or self.cache_write
            else None
        )
        return Usage(prompt, self.output, prompt + self.output, details)
