"""Usage summed over every trace step, the foundation model, cost, and what else the traces,
chunks and files events carry (reasoning, raw traces when asked, citations, files)."""

from __future__ import annotations

import base64

import pytest

from outcrop.testing import AgentReply, model_input_trace, usage_trace

STEPS = [
    ("preProcessing", 11, 3),
    ("orchestration", 100, 20),
    ("orchestration", 140, 30),
    ("postProcessing", 25, 7),
]
ROUTER = [
    model_input_trace("routingClassifier", "anthropic.claude-3-haiku-20240307-v1:0"),
    usage_trace("routingClassifier", 9, 1),
]
USER = [{"role": "user", "content": "Plan my week"}]
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
# Each step is priced at its own model: the router's 9/1 tokens at claude-3-haiku ($0.25/$1.25
# per million), the rest at claude-3-5-haiku ($0.8/$4 per million), from the core's price table.
COST = (285 - 9) * 0.8e-6 + (61 - 1) * 4e-6 + 9 * 0.25e-6 + 1 * 1.25e-6


def _reply(**kw) -> AgentReply:
    return AgentReply(
        ["Monday: ", "rest."], usage_steps=STEPS, traces=ROUTER, foundation_model=HAIKU, **kw
    )


def test_usage_is_summed_over_every_trace_step_and_priced(client, bedrock_simulator):
    bedrock_simulator.reply(_reply(), operation="InvokeAgent")
    raw = client.chat.completions.with_raw_response.create(model="bedrock-agent-1", messages=USER)
    response = raw.parse()
    prompt, completion = 11 + 100 + 140 + 25 + 9, 3 + 20 + 30 + 7 + 1
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (prompt, completion)
    assert response.usage.total_tokens == prompt + completion
    assert response.model == HAIKU  # the orchestration model, not the router's
    assert float(raw.headers["x-outcrop-response-cost"]) == pytest.approx(COST)
    assert response.choices[0].message.annotations is None  # traces only when asked


def test_deployment_prices_override_the_table(client, bedrock_simulator):
    bedrock_simulator.reply(_reply(), operation="InvokeAgent")
    raw = client.chat.completions.with_raw_response.create(model="priced-agent", messages=USER)
    assert float(raw.headers["x-outcrop-response-cost"]) == pytest.approx(285 * 0.001 + 61 * 0.002)


def test_streamed_usage_arrives_in_the_final_chunk(client, bedrock_simulator, events):
    bedrock_simulator.reply(_reply(), operation="InvokeAgent")
    chunks = list(
        client.chat.completions.create(
            model="bedrock-agent-1",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 285 + 61
    assert chunks[-1].model_extra["response_cost"] == pytest.approx(COST)  # streams carry cost here
    assert all(c.usage is None for c in chunks[:-1])
    assert {c.model for c in chunks} == {HAIKU}
    event = events.wait_for(lambda e: e.stream)
    assert event.usage.total_tokens == 346 and event.cost == pytest.approx(COST)


THINKING = {
    "orchestrationTrace": {
        "modelInvocationOutput": {
            "traceId": "t-9",
            "reasoningContent": {
                "reasoningText": {"text": "First, list the days.", "signature": "s"}
            },
        }
    }
}


def test_raw_traces_and_reasoning_when_asked(client, bedrock_simulator):
    bedrock_simulator.reply(
        _reply(rationale="The user wants a plan; no tool is needed."),
        operation="InvokeAgent",
        times=1,
    )
    response = client.chat.completions.create(
        model="bedrock-agent-1",
        messages=USER,
        extra_body={"enableTrace": True, "include_reasoning": True},
    )
    message = response.choices[0].message
    assert message.content == "Monday: rest."
    assert message.model_extra["reasoning_content"] == "The user wants a plan; no tool is needed."
    traces = [
        a.model_extra["trace"] for a in message.annotations if a.type == "bedrock_agent_trace"
    ]
    assert len(traces) == 2 * len(STEPS) + 1 + len(ROUTER)
    # The model's own reasoning text joins the rationale; neither is returned unless asked.
    bedrock_simulator.reply(
        AgentReply(["ok"], rationale="Plan it.", traces=[THINKING]), operation="InvokeAgent"
    )
    asked = (
        client.chat.completions.create(
            model="bedrock-agent-1", messages=USER, extra_body={"include_reasoning": True}
        )
        .choices[0]
        .message
    )
    assert asked.model_extra["reasoning_content"] == "Plan it.\nFirst, list the days."
    assert asked.annotations is None
    plain = (
        client.chat.completions.create(model="bedrock-agent-1", messages=USER).choices[0].message
    )
    assert plain.model_extra.get("reasoning_content") is None
    assert traces[0]["agentId"] == "L1RT58GYRW" and "preProcessingTrace" in traces[0]["trace"]
    assert traces[-1]["trace"]["routingClassifierTrace"]["modelInvocationOutput"]["metadata"][
        "usage"
    ] == {"inputTokens": 9, "outputTokens": 1}


def test_traces_from_the_deployment_config_and_streamed_reasoning(client, bedrock_simulator):
    bedrock_simulator.reply(_reply(rationale="thinking"), operation="InvokeAgent")
    chunks = list(
        client.chat.completions.create(
            model="configured-agent",
            messages=USER,
            stream=True,
            extra_body={"include_reasoning": True},
        )
    )
    reasoning = "".join(
        c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks if c.choices
    )
    assert reasoning == "thinking"
    traces = [
        a
        for c in chunks
        if c.choices
        for a in c.choices[0].delta.model_extra.get("annotations") or ()
    ]
    assert traces and all(a["type"] == "bedrock_agent_trace" for a in traces)


def test_enable_trace_false_still_counts_usage(client, bedrock_simulator):
    bedrock_simulator.reply(_reply(), operation="InvokeAgent")
    response = client.chat.completions.create(
        model="bedrock-agent-1", messages=USER, extra_body={"enableTrace": False}
    )
    assert bedrock_simulator.last("InvokeAgent").json()["enableTrace"] is True
    assert response.usage.total_tokens == 346 and response.choices[0].message.annotations is None


CITATIONS = [
    {
        "generatedResponsePart": {
            "textResponsePart": {"text": "Q3 sales grew 12%", "span": {"start": 0, "end": 16}}
        },
        "retrievedReferences": [
            {
                "content": {"text": "Sales grew by 12 percent in Q3."},
                "location": {"type": "S3", "s3Location": {"uri": "s3://reports/2024/q3.pdf"}},
                "metadata": {"x-amz-bedrock-kb-chunk-id": "c1"},
            },
            {
                "content": {"text": "Q3 recap"},
                "location": {"type": "WEB", "webLocation": {"url": "https://example.com/q3"}},
                "metadata": {"title": "Quarterly recap"},
            },
        ],
    }
]


def test_citations_become_url_citation_annotations(client, bedrock_simulator):
    bedrock_simulator.reply(
        AgentReply(["Q3 sales grew 12%"], citations=CITATIONS), operation="InvokeAgent"
    )
    message = (
        client.chat.completions.create(model="bedrock-agent-1", messages=USER).choices[0].message
    )
    first, second = message.annotations
    assert first.type == "url_citation"
    assert (
        first.url_citation.url == "s3://reports/2024/q3.pdf"
        and first.url_citation.title == "q3.pdf"
    )
    assert (first.url_citation.start_index, first.url_citation.end_index) == (0, 16)
    assert (
        first.model_extra["bedrock_citation"]["reference"]["content"]["text"]
        == "Sales grew by 12 percent in Q3."
    )
    assert (
        second.url_citation.url == "https://example.com/q3"
        and second.url_citation.title == "Quarterly recap"
    )
    # Streamed: they ride on the chunk that carries the cited text.
    bedrock_simulator.reply(
        AgentReply(["Q3 sales grew 12%"], citations=CITATIONS), operation="InvokeAgent"
    )
    chunks = list(
        client.chat.completions.create(model="bedrock-agent-1", messages=USER, stream=True)
    )
    cited = [c for c in chunks if c.choices and c.choices[0].delta.model_extra.get("annotations")]
    assert len(cited) == 1 and cited[0].choices[0].delta.content == "Q3 sales grew 12%"


def test_files_events_are_exposed_as_annotations(client, bedrock_simulator):
    chart = b"\x89PNG\r\n\x1a\nchart"
    bedrock_simulator.reply(
        AgentReply(
            ["Here is the chart."],
            files=[{"name": "chart.png", "type": "image/png", "bytes": chart}],
        ),
        operation="InvokeAgent",
    )
    message = (
        client.chat.completions.create(model="bedrock-agent-1", messages=USER).choices[0].message
    )
    (annotation,) = message.annotations
    assert annotation.type == "bedrock_agent_file"
    file = annotation.model_extra["file"]
    assert file["name"] == "chart.png" and file["type"] == "image/png"
    assert base64.b64decode(file["bytes"]) == chart


def test_guardrail_intervention_finishes_with_content_filter(client, bedrock_simulator):
    guard = {"guardrailTrace": {"action": "INTERVENED", "traceId": "g-1"}}
    bedrock_simulator.reply(
        AgentReply(["Sorry, I cannot help with that."], traces=[guard]), operation="InvokeAgent"
    )
    response = client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    assert response.choices[0].finish_reason == "content_filter"


def test_text_of_many_chunks_is_the_same_answer_whole_or_streamed(client, bedrock_simulator):
    """An answer in one piece joins the text of the chunks one upstream read brought (fewer
    deltas); the text, its citations and the usage are those of the stream, which keeps one
    content chunk per upstream chunk, the cited text on the chunk that carries it."""
    pieces = ["Q3 ", "sales ", "grew ", "12%"]

    def reply():
        bedrock_simulator.reply(
            AgentReply(pieces, citations=CITATIONS, usage_steps=[(10, 4)]),
            operation="InvokeAgent",
        )

    reply()
    whole = client.chat.completions.create(model="bedrock-agent-1", messages=USER)
    reply()
    chunks = list(
        client.chat.completions.create(model="bedrock-agent-1", messages=USER, stream=True)
    )
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == pieces
    assert whole.choices[0].message.content == "".join(pieces)
    assert [a.url_citation.url for a in whole.choices[0].message.annotations] == [
        "s3://reports/2024/q3.pdf",
        "https://example.com/q3",
    ]
    cited = [c for c in chunks if c.choices and c.choices[0].delta.model_extra.get("annotations")]
    assert len(cited) == 1 and cited[0].choices[0].delta.content == "12%"
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (10, 4)
