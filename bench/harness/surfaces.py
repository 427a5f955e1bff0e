"""The surfaces measured: what a client sends to the gateway, and the same call made direct.

The *direct* request is what the gateway itself sends upstream for that surface (same path on
the same nginx, same canned answer), so "gateway minus direct" is what Outcrop adds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from urllib.parse import quote

from . import canned

MASTER_KEY = "sk-bench-0123456789abcdef"
PROMPT = "Summarize our Q3 sales data in two sentences."


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class Surface:
    key: str
    title: str
    plugin: str  # entry-point name that must be installed
    stream: bool
    model_name: str  # the deployment's model_name in the gateway (and LiteLLM) config
    model: str  # litellm_params.model
    canned: canned.Canned
    gateway_path_template: str  # "{model}" is replaced by the model name
    direct_path: str
    direct_body: bytes
    native: bool  # pass-through: the client sends the native Bedrock body
    anthropic: bool = False  # the client speaks Anthropic's Messages API (/v1/messages)
    chunk_texts: tuple[str, ...] = canned.CHUNKS  # the content chunks the gateway relays

    def gateway_request(self, model_name: str | None = None, api_key: str | None = None) -> Request:
        """The client's request; ``api_key`` is the credential (the master key by default, a
        virtual key in the features-on mode)."""
        name = model_name or self.model_name
        key = api_key or MASTER_KEY
        headers = (("Content-Type", "application/json"), ("Authorization", f"Bearer {key}"))
        if self.anthropic:
            return Request(
                "POST",
                "/v1/messages",
                (("Content-Type", "application/json"), ("x-api-key", key)),
                _json({**_MESSAGES_BODY, "model": name, "stream": self.stream}),
            )
        if self.native:
            return Request(
                "POST", self.gateway_path_template.format(model=name), headers, self.direct_body
            )
        body = {
            "model": name,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": self.stream,
        }
        return Request("POST", "/v1/chat/completions", headers, _json(body))

    def direct_request(self) -> Request:
        return Request(
            "POST", self.direct_path, (("Content-Type", "application/json"),), self.direct_body
        )

    @property
    def gateway_markers(self) -> tuple[bytes, ...]:
        """Content chunks as the gateway sends them: plain text in OpenAI JSON or native frames."""
        texts = self.chunk_texts if self.stream else self.chunk_texts[:1]
        return tuple(t.encode() for t in texts)

    @property
    def direct_markers(self) -> tuple[bytes, ...]:
        return self.canned.markers if self.stream else self.canned.markers[:1]


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _runtime_path(kind: str) -> str:
    arn = canned.RUNTIME_ARN.format(kind=kind)
    return f"/runtimes/{quote(arn, safe='-._~')}/invocations"


_AGENT_PATH = (
    f"/agents/{canned.AGENT_ID}/agentAliases/{canned.ALIAS_ID}/sessions/bench-session/text"
)
_CONVERSE_BODY = _json(
    {
        "messages": [{"role": "user", "content": [{"text": PROMPT}]}],
        "inferenceConfig": {"maxTokens": 256, "temperature": 0.2},
    }
)
_MODEL_PATH = f"/model/{quote(canned.MODEL_ID, safe='-._~')}"
_LONG_MODEL_PATH = f"/model/{quote(canned.LONG_MODEL_ID, safe='-._~')}"
#: What the Converse chat plugin sends for the chat request (the gateway's own upstream call).
_CHAT_CONVERSE_BODY = _json({"messages": [{"role": "user", "content": [{"text": PROMPT}]}]})


#: The Anthropic Messages request, and the InvokeModel body the gateway sends for it.
_MESSAGES_BODY = {"max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}]}
_INVOKE_BODY = _json(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "messages": _MESSAGES_BODY["messages"],
        "max_tokens": 256,
    }
)


def all_surfaces() -> list[Surface]:
    agent = f"bedrock/agent/{canned.AGENT_ID}/{canned.ALIAS_ID}"
    invoke = canned.invoke_agent()
    return [
        Surface(
            "agent",
            "Agent chat",
            "bedrock_agent",
            False,
            "bench-agent",
            agent,
            invoke,
            "",
            _AGENT_PATH,
            _json({"inputText": PROMPT, "enableTrace": True}),
            False,
        ),
        Surface(
            "agent_stream",
            "Agent chat, stream",
            "bedrock_agent",
            True,
            "bench-agent",
            agent,
            invoke,
            "",
            _AGENT_PATH,
            _json(
                {
                    "inputText": PROMPT,
                    "enableTrace": True,
                    "streamingConfigurations": {"streamFinalResponse": True},
                }
            ),
            False,
        ),
        Surface(
            "agentcore",
            "AgentCore chat",
            "bedrock_agentcore",
            False,
            "bench-agentcore-json",
            "bedrock/agentcore/" + canned.RUNTIME_ARN.format(kind="json"),
            canned.runtime_json(),
            "",
            _runtime_path("json"),
            _json({"prompt": PROMPT}),
            False,
        ),
        Surface(
            "agentcore_stream",
            "AgentCore chat, stream",
            "bedrock_agentcore",
            True,
            "bench-agentcore-sse",
            "bedrock/agentcore/" + canned.RUNTIME_ARN.format(kind="sse"),
            canned.runtime_sse(),
            "",
            _runtime_path("sse"),
            _json({"prompt": PROMPT}),
            False,
        ),
        Surface(
            "converse",
            "Pass-through converse",
            "bedrock_passthrough",
            False,
            "bench-converse",
            f"bedrock/{canned.MODEL_ID}",
            canned.converse(),
            "/bedrock/model/{model}/converse",
            _MODEL_PATH + "/converse",
            _CONVERSE_BODY,
            True,
        ),
        Surface(
            "converse_stream",
            "Pass-through converse-stream",
            "bedrock_passthrough",
            True,
            "bench-converse",
            f"bedrock/{canned.MODEL_ID}",
            canned.converse_stream(),
            "/bedrock/model/{model}/converse-stream",
            _MODEL_PATH + "/converse-stream",
            _CONVERSE_BODY,
            True,
        ),
        Surface(
            "converse_chat",
            "Converse chat",
            "bedrock_converse",
            False,
            "bench-converse",
            f"bedrock/{canned.MODEL_ID}",
            canned.converse(),
            "",
            _MODEL_PATH + "/converse",
            _CHAT_CONVERSE_BODY,
            False,
        ),
        Surface(
            "converse_chat_stream",
            "Converse chat, stream",
            "bedrock_converse",
            True,
            "bench-converse",
            f"bedrock/{canned.MODEL_ID}",
            canned.converse_stream(),
            "",
            _MODEL_PATH + "/converse-stream",
            _CHAT_CONVERSE_BODY,
            False,
        ),
        Surface(
            "messages",
            "Anthropic messages",
            "anthropic_messages",
            False,
            "bench-converse",
            f"bedrock/{canned.MODEL_ID}",
            canned.claude_invoke(),
            "/v1/messages",
            _MODEL_PATH + "/invoke",
            _INVOKE_BODY,
            False,
            anthropic=True,
        ),
        Surface(
            "messages_stream",
            "Anthropic messages, stream",
            "anthropic_messages",
            True,
            "bench-converse",
            f"bedrock/{canned.MODEL_ID}",
            canned.claude_invoke_stream(),
            "/v1/messages",
            _MODEL_PATH + "/invoke-with-response-stream",
            _INVOKE_BODY,
            False,
            anthropic=True,
        ),
    ]


def long_streams(surfaces: list[Surface]) -> list[Surface]:
    """The given stream surfaces answering a ``LONG_EVENTS``-event ConverseStream (only the
    ConverseStream ones: pass-through converse-stream and converse chat stream)."""
    first_last = (canned.LONG_CHUNKS[0], canned.LONG_CHUNKS[-1])
    return [
        replace(
            s,
            key=s.key + "_long",
            title=f"{s.title}, {canned.LONG_EVENTS} events",
            model_name="bench-long",
            model=f"bedrock/{canned.LONG_MODEL_ID}",
            canned=canned.converse_stream_long(),
            direct_path=s.direct_path.replace(_MODEL_PATH, _LONG_MODEL_PATH),
            chunk_texts=first_last,
        )
        for s in surfaces
        if s.canned.name == "converse_stream"
    ]
