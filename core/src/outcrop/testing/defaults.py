"""What the simulator answers when no script matches: short echoes, so a plain demo works."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from outcrop.operations import Operation

from . import embeddings
from .recorded import RecordedRequest
from .replies import (
    AgentReply,
    ConverseReply,
    EventStreamReply,
    InvokeReply,
    RawReply,
    Reply,
    RuntimeReply,
    split_words,
)


def _body(request: RecordedRequest) -> Any:
    try:
        return request.json() or {}
    except ValueError:
        return {}


def _texts(node: Any) -> Iterator[str]:
    """Every string under ``text``/``prompt``/``inputText``/``content`` keys, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and key in ("text", "prompt", "inputText", "content"):
                yield value
            else:
                yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _words(text: str) -> int:
    return len(text.split())


def _last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return " ".join(_texts({"content": message.get("content")}))
    return ""


def invoke_agent(request: RecordedRequest) -> Reply:
    text = str(_body(request).get("inputText", ""))
    answer = f"You said: {text}"
    return AgentReply(
        chunks=split_words(answer, 3),
        usage_steps=[(_words(text) + 10, _words(answer))],
    )


def converse(request: RecordedRequest) -> Reply:
    body = _body(request)
    text = _last_user_text(body.get("messages"))
    answer = f"You said: {text}"
    return ConverseReply(answer, usage=(_words(text) + 10, _words(answer)))


def _native_prompt(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    if "messages" in body:
        return _last_user_text(body["messages"])
    return str(body.get("inputText") or body.get("prompt") or "")


def invoke_model(request: RecordedRequest) -> Reply:
    """Vectors for embedding models; else an Anthropic Messages answer (and its stream
    events) echoing the prompt."""
    embedding = embeddings.for_request(request)
    if embedding is not None:
        return embeddings.reply(*embedding)
    prompt = _native_prompt(_body(request))
    answer = f"You said: {prompt}"
    tokens_in, tokens_out = _words(prompt) + 10, _words(answer)
    message = {
        "id": f"msg_sim_{uuid.uuid4().hex[:16]}",
        "type": "message",
        "role": "assistant",
        "model": request.params.get("modelId", ""),
        "content": [{"type": "text", "text": answer}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": 1},
    }
    chunks: list[dict[str, Any] | bytes] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
            for t in split_words(answer)
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": tokens_out},
        },
        {"type": "message_stop"},
    ]
    return InvokeReply(message, chunks, input_tokens=tokens_in, output_tokens=tokens_out)


def _json_reply(obj: Any, status: int = 200) -> Reply:
    return RawReply(status, {"content-type": "application/json"}, [json.dumps(obj).encode()])


def count_tokens(request: RecordedRequest) -> Reply:
    source = _body(request).get("input", {})
    blob = source.get("invokeModel", {}).get("body") if isinstance(source, dict) else None
    if isinstance(blob, str):
        try:
            source = json.loads(base64.b64decode(blob))
        except ValueError:
            source = {"text": base64.b64decode(blob).decode("utf-8", "replace")}
    return _json_reply({"inputTokens": max(1, sum(_words(t) for t in _texts(source)))})


def apply_guardrail(request: RecordedRequest) -> Reply:
    return _json_reply(
        {
            "action": "NONE",
            "outputs": [],
            "assessments": [],
            "usage": {
                "topicPolicyUnits": 1,
                "contentPolicyUnits": 1,
                "wordPolicyUnits": 1,
                "sensitiveInformationPolicyUnits": 1,
                "sensitiveInformationPolicyFreeUnits": 0,
                "contextualGroundingPolicyUnits": 0,
            },
        }
    )


def retrieve(request: RecordedRequest) -> Reply:
    query = str(_body(request).get("retrievalQuery", {}).get("text", ""))
    return _json_reply(
        {
            "retrievalResults": [
                {
                    "content": {"type": "TEXT", "text": f"A passage about {query}"},
                    "location": {
                        "type": "S3",
                        "s3Location": {"uri": "s3://outcrop-simulator/doc-1.txt"},
                    },
                    "score": 0.9,
                    "metadata": {},
                }
            ],
        }
    )


def retrieve_and_generate(request: RecordedRequest) -> Reply:
    body = _body(request)
    question = str(body.get("input", {}).get("text", ""))
    return _json_reply(
        {
            "sessionId": body.get("sessionId") or str(uuid.uuid4()),
            "output": {"text": f"You asked: {question}"},
            "citations": [],
        }
    )


def invoke_agent_runtime(request: RecordedRequest) -> Reply:
    payload = _body(request)
    prompt = (
        str(payload.get("prompt") or payload.get("input") or "")
        if isinstance(payload, dict)
        else ""
    )
    if "text/event-stream" in request.headers.get("accept", ""):
        return RuntimeReply.strands(
            ["You said: ", prompt], usage=(_words(prompt) + 10, _words(prompt) + 2)
        )
    return RuntimeReply.json({"result": f"You said: {prompt}"})


DEFAULTS: dict[str, Callable[[RecordedRequest], Reply]] = {
    "InvokeAgent": invoke_agent,
    "InvokeInlineAgent": invoke_agent,
    "Converse": converse,
    "ConverseStream": converse,
    "InvokeModel": invoke_model,
    "InvokeModelWithResponseStream": invoke_model,
    "CountTokens": count_tokens,
    "ApplyGuardrail": apply_guardrail,
    "Retrieve": retrieve,
    "RetrieveAndGenerate": retrieve_and_generate,
    "InvokeAgentRuntime": invoke_agent_runtime,
}


def default_reply(request: RecordedRequest, operation: Operation) -> Reply:
    """The echo for the main operations; an empty success for every other one."""
    handler = DEFAULTS.get(operation.name)
    if handler is not None:
        return handler(request)
    if operation.event_stream:
        return EventStreamReply(status=operation.status)
    return _json_reply({}, operation.status)
