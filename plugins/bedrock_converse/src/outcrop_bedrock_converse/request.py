"""The Converse / ConverseStream HTTP request for one chat call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from outcrop import ChatCall, UpstreamRequest

from .messages import convert
from .models import ModelId
from .params import plan_request

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Sent:
    """What the response side needs to know about the request (kept in ``call.state``)."""

    model_id: str
    #: The forced tool whose input is the answer (``response_format``), else ``None``.
    json_tool: str | None


def converse_body(
    call: ChatCall, model: ModelId, fetched: dict[str, tuple[str, bytes]] | None = None
) -> tuple[dict[str, Any], Sent]:
    """The Converse JSON body (``modelId`` travels in the path), and what was asked."""
    system, messages = convert(call.request.messages, fetched)
    plan = plan_request(call, model)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    body.update(plan.members)
    return body, Sent(model.model_id, plan.json_tool)


def build_request(
    call: ChatCall, model: ModelId, fetched: dict[str, tuple[str, bytes]] | None = None
) -> tuple[UpstreamRequest, Sent]:
    """POST ``{endpoint}/model/{modelId}/converse`` (``/converse-stream`` when streaming)."""
    body, sent = converse_body(call, model, fetched)
    operation = "converse-stream" if call.stream else "converse"
    request = UpstreamRequest(
        "POST",
        f"{call.endpoint}/model/{model.label}/{operation}",
        {"Content-Type": "application/json", "Accept": "application/json"},
        _encode(body),
    )
    return request, sent
