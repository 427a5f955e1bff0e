"""Outcrop: a fast, pluggable gateway for Amazon Bedrock.

The public API for plugin authors is what this module exports, ``outcrop.hookspecs`` (the
hooks) and ``outcrop.testing`` (fixtures and the Bedrock simulator, for tests). A plugin reaches
the gateway only through ``GatewayAPI``; ``tests/core/test_public_api.py`` checks that every
plugin in the repository touches nothing else.

Names are imported on first use (PEP 562), so ``import outcrop`` and the pytest plugin stay
cheap; ``tests/core/test_lazy_exports.py`` keeps ``_EXPORTS``, the typing imports and ``__all__``
equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Eager: the submodule has the name of what it exports, and an import of the submodule
# anywhere would otherwise leave the module where the marker should be. pluggy is light.
from .hookimpl import hookimpl
from .lazy import lazy_exports

if TYPE_CHECKING:
    from .access import model_allowed
    from .api import acompletion, aembedding, completion, embedding
    from .aws import FrozenCredentials
    from .balance import weighted_choice
    from .bodies import ClientDisconnected, read_body
    from .config import (
        Config,
        Deployment,
        DeploymentParams,
        GeneralSettings,
        load_config,
        parse_config,
    )
    from .errors import (
        ConfigError,
        OutcropError,
        UpstreamError,
        aws_status,
        clip,
        error_from_aws,
        split_validation_error,
    )
    from .eventstream import EventStreamDecoder, EventStreamMessage, encode_exception
    from .gateway import Gateway
    from .gateway_api import GatewayAPI
    from .headers import (
        ATTEMPTS_HEADER,
        COST_HEADER,
        DROPPED_PARAMS_HEADER,
        OVERHEAD_HEADER,
        REQUEST_ID_HEADER,
        SESSION_HEADER,
    )
    from .lifecycle import CallLifecycle
    from .limits import Counters, Limit, Verdict
    from .operations import (
        DATA_PLANE_SERVICES,
        Operation,
        OperationMatch,
        match_operation,
        operation_table,
    )
    from .params import http_url_problem, parse_params
    from .regions import arn_region, check_region, is_region
    from .routing import request_tags
    from .sigv4_verify import (
        SigV4Error,
        SigV4Identity,
        SigV4Precheck,
        check_sigv4_headers,
        verify_sigv4,
    )
    from .types import (
        Admission,
        Attempt,
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

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "model_allowed": ".access",
    "acompletion": ".api",
    "aembedding": ".api",
    "completion": ".api",
    "embedding": ".api",
    "weighted_choice": ".balance",
    "ClientDisconnected": ".bodies",
    "read_body": ".bodies",
    "Config": ".config",
    "Deployment": ".config",
    "DeploymentParams": ".config",
    "load_config": ".config",
    "parse_config": ".config",
    "GeneralSettings": ".config",
    "ConfigError": ".errors",
    "OutcropError": ".errors",
    "UpstreamError": ".errors",
    "aws_status": ".errors",
    "clip": ".errors",
    "error_from_aws": ".errors",
    "split_validation_error": ".errors",
    "EventStreamMessage": ".eventstream",
    "EventStreamDecoder": ".eventstream",
    "encode_exception": ".eventstream",
    "Gateway": ".gateway",
    "FrozenCredentials": ".aws",
    "ATTEMPTS_HEADER": ".headers",
    "COST_HEADER": ".headers",
    "DROPPED_PARAMS_HEADER": ".headers",
    "OVERHEAD_HEADER": ".headers",
    "REQUEST_ID_HEADER": ".headers",
    "SESSION_HEADER": ".headers",
    "CallLifecycle": ".lifecycle",
    "DATA_PLANE_SERVICES": ".operations",
    "Operation": ".operations",
    "OperationMatch": ".operations",
    "match_operation": ".operations",
    "operation_table": ".operations",
    "http_url_problem": ".params",
    "parse_params": ".params",
    "arn_region": ".regions",
    "request_tags": ".routing",
    "check_region": ".regions",
    "is_region": ".regions",
    "SigV4Error": ".sigv4_verify",
    "SigV4Identity": ".sigv4_verify",
    "SigV4Precheck": ".sigv4_verify",
    "check_sigv4_headers": ".sigv4_verify",
    "verify_sigv4": ".sigv4_verify",
    "Admission": ".types",
    "Attempt": ".types",
    "CallEvent": ".types",
    "Counters": ".limits",
    "Limit": ".limits",
    "Verdict": ".limits",
    "ChatCall": ".types",
    "ChatDelta": ".types",
    "ConfigSection": ".types",
    "EmbeddingCall": ".types",
    "EmbeddingResult": ".types",
    "ModelPrefix": ".types",
    "ModelPrice": ".types",
    "ModelRoute": ".types",
    "Principal": ".types",
    "UpstreamRequest": ".upstream",
    "UpstreamResponse": ".upstream",
    "ChatCompletion": ".wire",
    "ChatCompletionChunk": ".wire",
    "ChatRequest": ".wire",
    "FunctionCall": ".wire",
    "JSONTooDeep": ".wire",
    "Message": ".wire",
    "PromptTokensDetails": ".wire",
    "ToolCallDelta": ".wire",
    "Usage": ".wire",
    "decode_json": ".wire",
    "GatewayAPI": ".gateway_api",
}

__all__ = [
    "ATTEMPTS_HEADER",
    "COST_HEADER",
    "DATA_PLANE_SERVICES",
    "DROPPED_PARAMS_HEADER",
    "OVERHEAD_HEADER",
    "REQUEST_ID_HEADER",
    "SESSION_HEADER",
    "Admission",
    "Attempt",
    "CallEvent",
    "CallLifecycle",
    "ChatCall",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatDelta",
    "ChatRequest",
    "ClientDisconnected",
    "Config",
    "ConfigError",
    "ConfigSection",
    "Counters",
    "Deployment",
    "DeploymentParams",
    "EmbeddingCall",
    "EmbeddingResult",
    "EventStreamDecoder",
    "EventStreamMessage",
    "FrozenCredentials",
    "FunctionCall",
    "Gateway",
    "GatewayAPI",
    "GeneralSettings",
    "JSONTooDeep",
    "Limit",
    "Message",
    "ModelPrefix",
    "ModelPrice",
    "ModelRoute",
    "Operation",
    "OperationMatch",
    "OutcropError",
    "Principal",
    "PromptTokensDetails",
    "SigV4Error",
    "SigV4Identity",
    "SigV4Precheck",
    "ToolCallDelta",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "Usage",
    "Verdict",
    "__version__",
    "acompletion",
    "aembedding",
    "arn_region",
    "aws_status",
    "check_region",
    "check_sigv4_headers",
    "clip",
    "completion",
    "decode_json",
    "embedding",
    "encode_exception",
    "error_from_aws",
    "hookimpl",
    "http_url_problem",
    "is_region",
    "load_config",
    "match_operation",
    "model_allowed",
    "operation_table",
    "parse_config",
    "parse_params",
    "read_body",
    "request_tags",
    "split_validation_error",
    "verify_sigv4",
    "weighted_choice",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
