"""OpenAI parameters and Bedrock-only fields -> the Converse request members.

``inferenceConfig`` (temperature, top_p, max tokens, stop), ``toolConfig`` (tools,
tool_choice, and the forced tool behind ``response_format``), the reasoning config in
``additionalModelRequestFields``, and the Bedrock-only members taken from the request body or
the deployment (``litellm_params``). Anything the model cannot honour is a 400 unless
``drop_params`` is set; then it is dropped and named in ``x-outcrop-dropped-params``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from outcrop import ChatCall, ChatRequest, OutcropError, clip

from .models import ModelId

#: The OpenAI parameters this plugin honours (besides the ones every provider accepts).
SUPPORTED = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "n",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
    }
)
#: Converse members accepted as they are, from the request body or the deployment.
PASSTHROUGH = (
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "performanceConfig",
    "requestMetadata",
)
#: Other provider parameters this plugin understands (Anthropic's spellings).
EXTRA = ("thinking", "top_k")
#: The name of the forced tool behind ``response_format`` when the schema has none.
JSON_TOOL = "json_tool_call"
#: Thinking budget per ``reasoning_effort`` for Anthropic models (tokens).
THINKING_BUDGET = {"low": 1024, "medium": 2048, "high": 4096}
#: Room for the answer on top of the thinking budget when the caller set no max tokens.
ANSWER_TOKENS = 4096
_METADATA = re.compile(r"[a-zA-Z0-9\s:_@$#=/+,.-]{0,256}\Z")
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}\Z")


@dataclass(slots=True)
class Plan:
    """The Converse members built from the parameters, and what the response side needs."""

    members: dict[str, Any] = field(default_factory=dict)
    #: The forced tool whose input is the answer (``response_format``), else ``None``.
    json_tool: str | None = None
    dropped: list[str] = field(default_factory=list)


def _bad(message: str, param: str) -> OutcropError:
    return OutcropError(message, 400, param=param, code="invalid_parameter")


def _unsupported(plan: Plan, call: ChatCall, param: str, why: str) -> None:
    if not call.drop_params:
        raise OutcropError(
            f"{param}: {why}. Remove it, or set `drop_params: true` to drop it.",
            400,
            param=param,
            code="unsupported_params",
        )
    plan.dropped.append(param)


def _inference(req: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = (
        req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    )
    if max_tokens is not None:
        if max_tokens < 1:
            raise _bad("max_tokens: must be at least 1", "max_tokens")
        config["maxTokens"] = max_tokens
    for name, key in (("temperature", "temperature"), ("top_p", "topP")):
        value = getattr(req, name)
        if value is not None:
            if not 0 <= value <= 1:
                raise _bad(f"{name}: Bedrock accepts 0 to 1, got {value}", name)
            config[key] = value
    if req.stop is not None:
        stops = [req.stop] if isinstance(req.stop, str) else list(req.stop)
        if any(not s for s in stops):
            raise _bad("stop: stop sequences must not be empty", "stop")
        if stops:
            config["stopSequences"] = stops
    return config


def _tool(tool: dict[str, Any], i: int) -> list[dict[str, Any]]:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if (
        not isinstance(tool, dict)
        or tool.get("type", "function") != "function"
        or not isinstance(fn, dict)
    ):
        raise _bad(f"tools[{i}]: only function tools are supported", f"tools[{i}]")
    name = fn.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise _bad(
            f"tools[{i}].function.name: Bedrock needs 1-64 letters, digits, _ or -", f"tools[{i}]"
        )
    spec: dict[str, Any] = {
        "name": name,
        "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}},
    }
    if fn.get("description"):
        spec["description"] = fn["description"]
    blocks: list[dict[str, Any]] = [{"toolSpec": spec}]
    if isinstance(tool.get("cache_control"), dict):
        blocks.append({"cachePoint": {"type": "default"}})
    return blocks


def _tool_choice(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") == "function" and isinstance(name, str) and name:
            return {"tool": {"name": name}}
    raise _bad(
        f"tool_choice: expected 'auto', 'required', 'none' or a named function, got "
        f"{clip(choice)!r}",
        "tool_choice",
    )


def _response_tool(fmt: dict[str, Any]) -> dict[str, Any] | None:
    kind = fmt.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {
            "name": JSON_TOOL,
            "description": "Respond with a JSON object.",
            "inputSchema": {"json": {"type": "object"}},
        }
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise _bad(
                "response_format.json_schema.schema: required (a JSON schema object)",
                "response_format",
            )
        name = spec.get("name") if isinstance(spec.get("name"), str) else JSON_TOOL
        if not _TOOL_NAME.match(name):
            name = JSON_TOOL
        return {
            "name": name,
            "description": spec.get("description")
            or "Respond with a JSON object that follows this schema.",
            "inputSchema": {"json": schema},
        }
    raise _bad(
        f"response_format.type: {clip(kind)!r} is not supported (text, json_object, "
        "json_schema are)",
        "response_format",
    )


def _tools(req: ChatRequest, plan: Plan) -> None:
    tools = [block for i, t in enumerate(req.tools or ()) for block in _tool(t, i)]
    forced = _response_tool(req.response_format) if req.response_format else None
    if req.tool_choice == "none":
        tools = []
    if forced is not None:
        plan.json_tool = forced["name"]
        tools.append({"toolSpec": forced})
    if not tools:
        return
    # The answer is the forced tool's input, unless the caller's own tools may answer first.
    only_forced = forced is not None and len(tools) == 1
    choice = {"tool": {"name": forced["name"]}} if only_forced else _tool_choice(req.tool_choice)  # type: ignore[index]
    plan.members["toolConfig"] = {"tools": tools, "toolChoice": choice}


def _reasoning(
    call: ChatCall, model: ModelId, plan: Plan, fields: dict[str, Any], config: dict[str, Any]
) -> None:
    effort = call.request.reasoning_effort
    thinking = call.provider_params.get("thinking")
    if thinking is not None and not isinstance(thinking, dict):
        raise _bad(
            'thinking: expected an object like {"type": "enabled", "budget_tokens": 2048}',
            "thinking",
        )
    if effort is not None and effort not in ("none", "minimal", "low", "medium", "high"):
        raise _bad(
            f"reasoning_effort: {clip(effort)!r} is not one of none, minimal, low, medium, high",
            "reasoning_effort",
        )
    if model.vendor == "anthropic":
        if thinking is None and effort in THINKING_BUDGET:
            thinking = {"type": "enabled", "budget_tokens": THINKING_BUDGET[effort]}
        if thinking is None or thinking.get("type") != "enabled":
            return
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise _bad("thinking.budget_tokens: Anthropic models need at least 1024", "thinking")
        fields["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if "maxTokens" not in config:
            config["maxTokens"] = budget + ANSWER_TOKENS
        elif config["maxTokens"] <= budget:
            raise _bad(
                f"max_tokens ({config['maxTokens']}) must be larger than the thinking "
                f"budget ({budget})",
                "max_tokens",
            )
        return
    if thinking is not None:
        _unsupported(plan, call, "thinking", f"{model.model_id} is not an Anthropic model")
    if effort is None or effort == "none":
        return
    if model.base.startswith("amazon.nova-2"):
        level = "low" if effort == "minimal" else effort
        fields["reasoningConfig"] = {"type": "enabled", "maxReasoningEffort": level}
    elif model.vendor == "openai":
        fields["reasoning_effort"] = effort
    else:
        _unsupported(
            plan, call, "reasoning_effort", f"no reasoning setting is known for {model.model_id}"
        )


def _metadata(call: ChatCall, members: dict[str, Any]) -> None:
    user = call.request.user
    if user is None:
        return
    if not user or not _METADATA.match(user):
        raise _bad(
            "user: Bedrock request metadata allows up to 256 letters, digits, spaces and "
            ":_@$#=/+,.- only",
            "user",
        )
    members["requestMetadata"] = {"user": user, **(members.get("requestMetadata") or {})}


def plan_request(call: ChatCall, model: ModelId) -> Plan:
    """Everything besides ``messages``/``system`` that goes into the Converse body."""
    req = call.request
    plan = Plan()
    if req.n is not None and req.n != 1:
        raise OutcropError(
            "n: Bedrock Converse returns one choice per call; only n=1 is supported",
            400,
            param="n",
            code="unsupported_params",
        )
    if req.parallel_tool_calls is False:
        _unsupported(
            plan, call, "parallel_tool_calls", "Converse cannot forbid parallel tool calls"
        )
    provider = call.provider_params
    for key in provider:
        # deployment keys this plugin does not know are left to other plugins (rpm, tags...)
        if key not in PASSTHROUGH and key not in EXTRA and key not in call.params.extra:
            _unsupported(plan, call, key, "not an OpenAI or Bedrock Converse parameter")
    check_members(provider)
    for key in PASSTHROUGH:
        if provider.get(key) is not None:
            plan.members[key] = provider[key]
    config = _inference(req)
    fields = dict(plan.members.get("additionalModelRequestFields") or {})
    if provider.get("top_k") is not None:
        fields["top_k"] = provider["top_k"]
    _reasoning(call, model, plan, fields, config)
    if fields:
        plan.members["additionalModelRequestFields"] = fields
    if config:
        plan.members["inferenceConfig"] = config
    _tools(req, plan)
    _metadata(call, plan.members)
    for name in plan.dropped:
        call.drop(name)  # the core names them in x-outcrop-dropped-params and the access log
    return plan


def check_members(values: dict[str, Any]) -> None:
    """Type-check the Bedrock-only members (deployment config at start-up, bodies per call)."""
    for key in PASSTHROUGH:
        value = values.get(key)
        if value is None:
            continue
        if key == "additionalModelResponseFieldPaths":
            ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
            expected = "a list of JSON pointer strings"
        else:
            ok, expected = isinstance(value, dict), "an object"
        if not ok:
            raise _bad(f"{key}: expected {expected}", key)
