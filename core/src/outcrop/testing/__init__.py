"""Outcrop's testing kit: a Bedrock simulator, scripted replies and a threaded ASGI server.

Plugin authors use it to test against Bedrock's real wire format without an AWS account::

    from outcrop.testing import AgentReply, running_simulator

    with running_simulator() as sim:
        sim.app.reply(AgentReply(["Hello ", "world"]), operation="InvokeAgent")
        ...  # point a client or the gateway at sim.url with TEST_ACCESS_KEY/TEST_SECRET_KEY

Names are imported on first use, as in ``outcrop``: pytest loads this package's pytest plugin
in every session wherever outcrop is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from outcrop.eventstream import encode_error, encode_event, encode_exception, encode_message

    from .claude import ClaudeReply
    from .events import CallEvents
    from .recorded import RecordedRequest
    from .replies import (
        AgentReply,
        ConverseReply,
        EventStreamReply,
        HttpError,
        InvokeReply,
        RawReply,
        Rendered,
        Reply,
        ReplyLike,
        ReplyMismatch,
        RuntimeReply,
        ToolUse,
        model_input_trace,
        usage_trace,
    )
    from .server import ServerThread
    from .simulator import (
        TEST_ACCESS_KEY,
        TEST_SECRET_KEY,
        BedrockSimulator,
        RunningSimulator,
        Script,
        running_simulator,
    )

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "encode_error": "outcrop.eventstream",
    "encode_event": "outcrop.eventstream",
    "encode_exception": "outcrop.eventstream",
    "encode_message": "outcrop.eventstream",
    "ClaudeReply": ".claude",
    "CallEvents": ".events",
    "RecordedRequest": ".recorded",
    "AgentReply": ".replies",
    "ConverseReply": ".replies",
    "EventStreamReply": ".replies",
    "HttpError": ".replies",
    "InvokeReply": ".replies",
    "RawReply": ".replies",
    "Rendered": ".replies",
    "Reply": ".replies",
    "ReplyLike": ".replies",
    "ReplyMismatch": ".replies",
    "RuntimeReply": ".replies",
    "ToolUse": ".replies",
    "model_input_trace": ".replies",
    "usage_trace": ".replies",
    "ServerThread": ".server",
    "TEST_ACCESS_KEY": ".simulator",
    "TEST_SECRET_KEY": ".simulator",
    "BedrockSimulator": ".simulator",
    "RunningSimulator": ".simulator",
    "Script": ".simulator",
    "running_simulator": ".simulator",
}

__all__ = [
    "TEST_ACCESS_KEY",
    "TEST_SECRET_KEY",
    "AgentReply",
    "BedrockSimulator",
    "CallEvents",
    "ClaudeReply",
    "ConverseReply",
    "EventStreamReply",
    "HttpError",
    "InvokeReply",
    "RawReply",
    "RecordedRequest",
    "Rendered",
    "Reply",
    "ReplyLike",
    "ReplyMismatch",
    "RunningSimulator",
    "RuntimeReply",
    "Script",
    "ServerThread",
    "ToolUse",
    "encode_error",
    "encode_event",
    "encode_exception",
    "encode_message",
    "model_input_trace",
    "running_simulator",
    "usage_trace",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
