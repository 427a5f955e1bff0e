"""Outcrop: a fast, pluggable gateway for Amazon Bedrock.

The public API for plugin authors is what this module exports plus ``outcrop.hookspecs``.
"""

from .api import acompletion, aembedding, completion, embedding
from .balance import weighted_choice
from .bodies import ClientDisconnected, read_body
from .config import Config, Deployment, DeploymentParams, load_config, parse_config
from .errors import (
    ConfigError,
    OutcropError,
    UpstreamError,
    aws_status,
    clip,
    error_from_aws,
    split_validation_error,
)
from .eventstream import EventStreamMessage
from .gateway import Gateway
from .headers import COST_HEADER, OVERHEAD_HEADER, REQUEST_ID_HEADER, SESSION_HEADER
from .hookimpl import hookimpl
from .lifecycle import CallLifecycle
from .operations import (
    DATA_PLANE_SERVICES,
    Operation,
    OperationMatch,
    match_operation,
    operation_table,
)
from .params import http_url_problem, parse_params
from .regions import check_region, is_region
from .sigv4_verify import (
    SigV4Error,
    SigV4Identity,
    SigV4Precheck,
    check_sigv4_headers,
    verify_sigv4,
)
from .types import (
    Admission,
    CallEvent,
    ChatCall,
    ChatDelta,
    ConfigSection,
    EmbeddingCall,
    EmbeddingResult,
    ModelPrefix,
    ModelPrice,
    ModelRoute,
    Principal,
)
from .upstream import UpstreamRequest, UpstreamResponse
from .wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    FunctionCall,
    JSONTooDeep,
    Message,
    PromptTokensDetails,
    ToolCallDelta,
    Usage,
    decode_json,
)

__version__ = "0.1.0"

__all__ = [
    "DATA_PLANE_SERVICES",
    "Operation",
    "OperationMatch",
    "match_operation",
    "operation_table",
    "COST_HEADER",
    "OVERHEAD_HEADER",
    "REQUEST_ID_HEADER",
    "SESSION_HEADER",
    "SigV4Error",
    "SigV4Identity",
    "SigV4Precheck",
    "check_sigv4_headers",
    "verify_sigv4",
    "Admission",
    "ClientDisconnected",
    "read_body",
    "CallEvent",
    "CallLifecycle",
    "ChatCall",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatDelta",
    "ChatRequest",
    "Config",
    "ConfigError",
    "ConfigSection",
    "Deployment",
    "EmbeddingCall",
    "EmbeddingResult",
    "DeploymentParams",
    "EventStreamMessage",
    "FunctionCall",
    "Gateway",
    "JSONTooDeep",
    "Message",
    "ModelPrefix",
    "ModelPrice",
    "ModelRoute",
    "OutcropError",
    "Principal",
    "PromptTokensDetails",
    "ToolCallDelta",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "Usage",
    "__version__",
    "acompletion",
    "aembedding",
    "check_region",
    "clip",
    "completion",
    "aws_status",
    "embedding",
    "decode_json",
    "error_from_aws",
    "hookimpl",
    "http_url_problem",
    "is_region",
    "load_config",
    "parse_config",
    "weighted_choice",
    "parse_params",
    "split_validation_error",
]
