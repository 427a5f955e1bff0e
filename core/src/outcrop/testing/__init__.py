"""Outcrop's testing kit: a Bedrock simulator, scripted replies and a threaded ASGI server.

Plugin authors use it to test against Bedrock's real wire format without an AWS account::

    from outcrop.testing import AgentReply, running_simulator

    with running_simulator() as sim:
        sim.app.reply(AgentReply(["Hello ", "world"]), operation="InvokeAgent")
        ...  # point a client or the gateway at sim.url with TEST_ACCESS_KEY/TEST_SECRET_KEY
"""

from outcrop.eventstream import encode_error, encode_event, encode_exception, encode_message

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

__all__ = [
    "TEST_ACCESS_KEY",
    "TEST_SECRET_KEY",
    "AgentReply",
    "BedrockSimulator",
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
