"""A deployment's settings (``litellm_params``): the one decoder and its checks.

``parse_params`` is used for every source of deployment settings: ``model_list`` entries, plugin
config sections that take the same ``aws_*``/``api_base``/timeout keys, and the Python API's
keyword arguments. Every problem is reported at its field path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from .config_keys import IGNORED_PARAMS, did_you_mean
from .errors import ConfigError
from .regions import is_region, region_problem

#: Longest timeout accepted anywhere (a day): longer is a typo, and huge values break timers.
MAX_TIMEOUT_S = 86_400.0
Timeout = Annotated[float, msgspec.Meta(gt=0, le=MAX_TIMEOUT_S)]
Weight = Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
PricePerToken = Annotated[float, msgspec.Meta(ge=0, le=1)]

_HTTP_URL = re.compile(r"https?://[^/\s?#]+(/\S*)?\Z")
#: LiteLLM's name for the endpoint override.
_ALIASES = {"aws_bedrock_runtime_endpoint": "api_base", "max_retries": "num_retries"}


class DeploymentParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A deployment's settings (``litellm_params``/``params``). Plugin-specific keys (such as
    ``qualifier``) land in ``extra`` and reach the plugin as provider parameters."""

    model: str
    aws_region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_profile_name: str | None = None
    aws_role_name: str | None = None
    aws_session_name: str | None = None
    aws_external_id: str | None = None
    aws_web_identity_token: str | None = None
    aws_sts_endpoint: str | None = None
    api_base: str | None = None
    timeout: Timeout | None = None
    connect_timeout: Timeout | None = None
    weight: Weight = 1.0
    #: Further attempts for calls this deployment serves first (over ``router_settings``).
    num_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    #: Requests and tokens per minute this deployment takes: caps (at one the call goes to
    #: another deployment of its model_name; docs/scale-out.md), usage-based-routing weighs them.
    rpm: Annotated[int, msgspec.Meta(gt=0)] | None = None
    tpm: Annotated[int, msgspec.Meta(gt=0)] | None = None
    #: Priority within its model_name: the lowest ``order`` available serves (LiteLLM's).
    order: Annotated[int, msgspec.Meta(ge=0)] | None = None
    drop_params: bool | None = None
    #: Tag routing (``router_settings.enable_tag_filtering``): the request tags it serves;
    #: ``default`` also serves requests without tags, or whose tags no deployment has.
    tags: list[str] = msgspec.field(default_factory=list)
    #: Tag routing by header (LiteLLM's ``tag_regex``): regular expressions searched in the
    #: request's ``User-Agent: <value>`` line; a match serves the request as a tag would.
    tag_regex: list[str] = msgspec.field(default_factory=list)
    input_cost_per_token: PricePerToken | None = None
    output_cost_per_token: PricePerToken | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:  # never show secrets in logs or tracebacks
        shown = ("model", "aws_region_name", "aws_profile_name", "aws_role_name", "api_base")
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in shown if getattr(self, k))
        return f"DeploymentParams({inner})"

    def credential_key(self) -> tuple[Any, ...]:
        """Deployments with equal keys share one credential source."""
        return (
            self.aws_access_key_id,
            self.aws_secret_access_key,
            self.aws_session_token,
            self.aws_profile_name,
            self.aws_role_name,
            self.aws_session_name,
            self.aws_external_id,
            self.aws_web_identity_token,
            self.aws_sts_endpoint,
        )


#: The deployment settings, by name (``extra`` is not one: it holds what is left).
PARAM_FIELDS = frozenset(DeploymentParams.__struct_fields__) - {"extra"}


def http_url_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as an http(s) base URL, or ``None`` when it is one."""
    if isinstance(value, str) and _HTTP_URL.match(value):
        return None
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return f"expected an http(s) URL, got {shown}"


def parse_params(
    raw: Mapping[str, Any], path: str = "", *, provider_params: bool = True
) -> DeploymentParams:
    """Decode and check deployment settings; raise ``ConfigError`` naming every problem.

    Errors read ``{path}.{key}: problem``. ``aws_bedrock_runtime_endpoint`` is read as
    ``api_base``; the LiteLLM keys in ``IGNORED_PARAMS`` are skipped. Other keys become provider
    parameters in ``extra`` (for the plugin serving the model), except ``aws_*`` lookalikes of a
    setting, which are errors; with ``provider_params=False`` every other key is an error.
    """
    where = f"{path}." if path else ""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            [f"{path or '(top level)'}: expected a mapping, got {type(raw).__name__}"]
        )
    errors: list[str] = []
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        key = _ALIASES.get(key, key)
        if key in PARAM_FIELDS:
            known[key] = value
        elif key in IGNORED_PARAMS:
            continue
        elif not provider_params or (isinstance(key, str) and key.startswith("aws_")):
            errors.append(f"{where}{key}: unknown key{did_you_mean(str(key), PARAM_FIELDS)}")
        else:
            extra[key] = value
    if "model" not in known:
        errors.append(
            f"{where}model: required (a model string such as bedrock/agent/AGENT_ID/ALIAS_ID)"
        )
        raise ConfigError(errors)
    try:
        params = msgspec.convert(known, DeploymentParams, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError([*errors, *ConfigError.from_validation(exc, path).errors]) from None
    params.extra = extra
    if params.aws_region_name is not None and not is_region(params.aws_region_name):
        errors.append(region_problem(params.aws_region_name, f"{where}aws_region_name"))
    if bool(params.aws_access_key_id) != bool(params.aws_secret_access_key):
        given, missing = (
            ("aws_access_key_id", "aws_secret_access_key")
            if params.aws_access_key_id
            else ("aws_secret_access_key", "aws_access_key_id")
        )
        errors.append(f"{where}{missing}: required together with {given}")
    for i, pattern in enumerate(params.tag_regex):
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(f"{where}tag_regex[{i}]: not a regular expression ({exc})")
    for name in ("api_base", "aws_sts_endpoint"):
        value = getattr(params, name)
        if value is not None and (problem := http_url_problem(value)):
            errors.append(f"{where}{name}: {problem}")
    if errors:
        raise ConfigError(errors)
    return params
