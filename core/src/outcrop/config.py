"""Configuration: a YAML file in LiteLLM's proxy format, decoded into msgspec Structs.

Every error names the field path (``model_list[1].litellm_params.model: ...``). Values of the
form ``os.environ/NAME`` are replaced by the environment variable at load time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
import yaml

from .errors import ConfigError
from .regions import is_region, region_problem

#: LiteLLM keys accepted and ignored because they have no meaning here (informational).
_IGNORED_PARAMS = frozenset({"custom_llm_provider", "rpm", "tpm", "max_parallel_requests"})


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
    timeout: float | None = None
    connect_timeout: float | None = None
    weight: float = 1.0
    drop_params: bool | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
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


class Deployment(msgspec.Struct, kw_only=True):
    """One entry of ``model_list``: a public ``model_name`` served by ``params.model``."""

    model_name: str
    params: DeploymentParams
    index: int
    model_info: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.model_info.get("id") or f"{self.model_name}#{self.index}")


class GeneralSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    master_key: str | None = None
    drop_params: bool = False
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    request_timeout: float | None = None
    max_request_bytes: int = 32 * 1024 * 1024
    #: The most of one upstream answer the gateway holds in memory: a non-streamed answer
    #: being collected, one JSON document, one SSE/NDJSON line. Past it: 502.
    max_response_bytes: Annotated[int, msgspec.Meta(gt=0)] = 64 * 1024 * 1024
    default_region: str | None = None
    # Read by plugins (outcrop-keys): where keys and spend live, the key that encrypts issued
    # SigV4 secrets, and whether spend rows may keep prompts and answers.
    database_url: str | None = None
    salt_key: str | None = None
    store_prompts_in_spend_logs: bool = False
    # Transport limits (docs/server.md, "Connections and timeouts").
    #: Seconds a whole request body may take to arrive (slower: 408).
    body_timeout: float = 30.0
    #: Seconds a request's line and headers may take, from their first byte (or from the
    #: connection opening); a connection that has not sent them by then is closed.
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection stays open waiting for its next request.
    keep_alive_timeout: float = 75.0
    #: Seconds in-flight requests and streams get to finish on SIGTERM/SIGINT.
    graceful_timeout: float = 30.0
    #: Open connections per worker; past it new connections are closed at once (and logged).
    #: ``None``: derived from the process's file-descriptor limit.
    max_connections: int | None = None
    #: Serve HTTP/2 (ALPN ``h2`` over TLS, cleartext ``h2c`` upgrade and prior knowledge).
    http2: bool = False
    #: Serve model strings that are not a configured ``model_name``. ``None``: only when there
    #: is no ``model_list`` (a gateway configured with names serves those names only).
    allow_raw_models: bool | None = None

    def __repr__(self) -> str:
        return f"GeneralSettings(master_key={'***' if self.master_key else None})"


class Config(msgspec.Struct, kw_only=True):
    model_list: list[Deployment] = msgspec.field(default_factory=list)
    general_settings: GeneralSettings = msgspec.field(default_factory=GeneralSettings)
    #: Top-level sections the core does not know, kept for plugins (``bedrock_passthrough: ...``).
    sections: dict[str, Any] = msgspec.field(default_factory=dict)
    source: str | None = None


_ENV_REF = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
_KNOWN_TOP = {"model_list", "general_settings", "litellm_settings", "environment_variables",
              "router_settings"}


def _resolve_env(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, str):
        m = _ENV_REF.match(value.strip())
        if not m:
            return value
        name = m.group(1)
        if name not in os.environ:
            errors.append(f"{path}: environment variable {name} is not set (referenced as {value!r})")
            return None
        return os.environ[name]
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{path}.{k}" if path else str(k), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


def _msgspec_error(exc: msgspec.ValidationError, prefix: str) -> str:
    """``Expected `str`, got `int` - at `$.model`` -> ``prefix.model: expected `str`, got `int```."""
    text = str(exc)
    where = ""
    m = re.search(r" - at `\$(.*)`$", text)
    if m:
        where = m.group(1)
        text = text[: m.start()]
    path = f"{prefix}{where}".lstrip(".") or prefix
    return f"{path}: {text[0].lower()}{text[1:]}" if text else path


_PARAM_FIELDS = frozenset(DeploymentParams.__struct_fields__) - {"extra"}


def _decode_params(raw: Any, path: str, errors: list[str]) -> DeploymentParams | None:
    if not isinstance(raw, dict):
        errors.append(f"{path}: expected a mapping with at least `model`, got {type(raw).__name__}")
        return None
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "aws_bedrock_runtime_endpoint":  # LiteLLM's name for the endpoint override
            key = "api_base"
        if key in _IGNORED_PARAMS:
            continue
        (known if key in _PARAM_FIELDS else extra)[key] = value
    if "model" not in known:
        errors.append(f"{path}.model: required (a model string such as bedrock/agent/AGENT_ID/ALIAS_ID)")
        return None
    try:
        params = msgspec.convert(known, DeploymentParams, str_keys=True)
    except msgspec.ValidationError as exc:
        errors.append(_msgspec_error(exc, path))
        return None
    params.extra = extra
    if params.aws_region_name is not None and not is_region(params.aws_region_name):
        errors.append(region_problem(params.aws_region_name, f"{path}.aws_region_name"))
    if params.weight <= 0:
        errors.append(f"{path}.weight: must be > 0, got {params.weight}")
    if bool(params.aws_access_key_id) != bool(params.aws_secret_access_key):
        errors.append(
            f"{path}: aws_access_key_id and aws_secret_access_key must be given together"
        )
    if params.api_base and not re.match(r"^https?://[^/]+", params.api_base):
        errors.append(f"{path}.api_base: expected an http(s) URL, got {params.api_base!r}")
    return params


def parse_config(data: Any, *, source: str | None = None) -> Config:
    """Validate a config mapping (already loaded from YAML). Raises ``ConfigError``."""
    errors: list[str] = []
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping, got {type(data).__name__}"])
    # environment_variables are applied first so os.environ/ references can use them.
    env_vars = data.get("environment_variables") or {}
    if isinstance(env_vars, dict):
        for k, v in env_vars.items():
            os.environ.setdefault(str(k), str(v))
    data = _resolve_env(data, "", errors)

    deployments: list[Deployment] = []
    model_list = data.get("model_list") or []
    if not isinstance(model_list, list):
        errors.append(f"model_list: expected a list, got {type(model_list).__name__}")
        model_list = []
    for i, entry in enumerate(model_list):
        path = f"model_list[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{path}: expected a mapping with model_name and litellm_params")
            continue
        name = entry.get("model_name")
        if not isinstance(name, str) or not name:
            errors.append(f"{path}.model_name: required, a non-empty string")
        key = "litellm_params" if "litellm_params" in entry else "params"
        if key not in entry:
            errors.append(f"{path}.litellm_params: required (also accepted as `params`)")
            continue
        params = _decode_params(entry[key], f"{path}.{key}", errors)
        unknown = set(entry) - {"model_name", "litellm_params", "params", "model_info"}
        for u in sorted(unknown):
            errors.append(f"{path}.{u}: unknown key (expected model_name, litellm_params, model_info)")
        info = entry.get("model_info") or {}
        if not isinstance(info, dict):
            errors.append(f"{path}.model_info: expected a mapping")
            info = {}
        if params is not None and isinstance(name, str) and name:
            deployments.append(Deployment(model_name=name, params=params, index=i, model_info=info))

    settings_raw = dict(data.get("litellm_settings") or {})
    settings_raw.update(data.get("general_settings") or {})
    try:
        general = msgspec.convert(settings_raw, GeneralSettings, str_keys=True)
    except msgspec.ValidationError as exc:
        errors.append(_msgspec_error(exc, "general_settings"))
        general = GeneralSettings()
    if general.default_region is not None and not is_region(general.default_region):
        errors.append(region_problem(general.default_region, "general_settings.default_region"))

    errors += _transport_errors(general)
    if not general.master_key:  # the documented environment-only set-up has no config file
        general.master_key = (os.environ.get("OUTCROP_MASTER_KEY")
                              or os.environ.get("LITELLM_MASTER_KEY") or None)

    sections = {k: v for k, v in data.items() if k not in _KNOWN_TOP}
    if errors:
        raise ConfigError(errors)
    return Config(model_list=deployments, general_settings=general, sections=sections, source=source)


def _transport_errors(general: GeneralSettings) -> list[str]:
    errors = [
        f"general_settings.{name}: must be a number of seconds > 0, got {value!r}"
        for name in ("body_timeout", "header_timeout", "keep_alive_timeout", "graceful_timeout")
        if not 0 < (value := getattr(general, name)) < float("inf")
    ]
    if general.max_connections is not None and general.max_connections < 1:
        errors.append(f"general_settings.max_connections: must be >= 1, got {general.max_connections}")
    return errors


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML config file. Raises ``ConfigError``."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read config file: {exc.strerror}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
    return parse_config(data, source=str(p))
