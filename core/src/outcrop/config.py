"""Configuration: a YAML file in LiteLLM's proxy format, decoded into msgspec Structs.

Every error names the field path (``model_list[1].litellm_params.model: ...``). Values of the
form ``os.environ/NAME`` are replaced by the environment variable at load time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from .config_keys import CORE_SECTIONS, IGNORED_PARAMS, unknown_key
from .errors import ConfigError, split_validation_error
from .params import DeploymentParams, Timeout, parse_params
from .regions import is_region, region_problem
from .yamlfile import read_yaml

__all__ = [
    "Config",
    "Deployment",
    "DeploymentParams",
    "GeneralSettings",
    "RouterSettings",
    "is_wildcard",
    "load_config",
    "parse_config",
]

#: Largest ``max_request_bytes`` accepted (1 GiB): bodies are held in memory.
MAX_REQUEST_BYTES = 1024 * 1024 * 1024


class Deployment(msgspec.Struct, kw_only=True):
    """One entry of ``model_list``: a public ``model_name`` served by ``params.model``."""

    model_name: str
    params: DeploymentParams
    index: int
    model_info: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.model_info.get("id") or f"{self.model_name}#{self.index}")


class GeneralSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The core's settings, read from ``general_settings`` and ``litellm_settings``."""

    master_key: str | None = None
    #: Serve without any client credential on a non-loopback address (off: loopback only).
    allow_unauthenticated: bool = False
    #: Drop what a target cannot honour (named in ``x-outcrop-dropped-params``) instead of a
    #: 400: on by default, so frameworks' defaults work; ``false`` makes each one a 400.
    drop_params: bool = True
    connect_timeout: Timeout = 10.0
    read_timeout: Timeout = 600.0
    request_timeout: Timeout | None = None
    max_request_bytes: Annotated[int, msgspec.Meta(ge=1, le=MAX_REQUEST_BYTES)] = 32 * 1024 * 1024
    #: The most of one upstream answer the gateway holds in memory: a non-streamed answer
    #: being collected, one JSON document, one SSE/NDJSON line. Past it: 502.
    max_response_bytes: Annotated[int, msgspec.Meta(gt=0)] = 64 * 1024 * 1024
    default_region: str | None = None
    # Read by plugins (outcrop-keys): where keys and spend live, the key that encrypts issued
    # SigV4 secrets, and whether spend rows may keep prompts and answers.
    database_url: str | None = None
    salt_key: str | None = None
    store_prompts_in_spend_logs: bool = False
    #: Whose calls get spend rows: ``virtual_keys`` (the keys the gateway issued) or ``all``
    #: (also the master key and the pass-through's configured key pairs).
    spend_logs_for: Literal["virtual_keys", "all"] = "virtual_keys"
    # Shared counters for rate limits and budgets (outcrop.limits, docs/scale-out.md).
    #: ``redis://`` URL; ``None``: ``REDIS_URL``, else counters in this process only.
    redis_url: str | None = None
    #: Prefix of every Redis key the gateway writes (several gateways may share one Redis).
    redis_key_prefix: str = "outcrop:"
    #: When Redis is unreachable: refuse calls that have limits (503), or serve them unchecked.
    limits_on_redis_failure: Literal["fail_closed", "fail_open"] = "fail_closed"
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
    # LiteLLM's callbacks (``litellm_settings``): names an installed plugin implements
    # (``prometheus``, ``otel``); the gateway refuses a name no plugin claims.
    callbacks: list[str] = msgspec.field(default_factory=list)
    success_callback: list[str] = msgspec.field(default_factory=list)
    failure_callback: list[str] = msgspec.field(default_factory=list)

    def __repr__(self) -> str:
        return f"GeneralSettings(master_key={'***' if self.master_key else None})"


#: The router's strategies (LiteLLM's names); ``simple-shuffle`` is weighted at random.
RoutingStrategy = Literal[
    "simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing"
]
#: LiteLLM's spelling of fallbacks: ``[{"model-a": ["model-b", "model-c"]}]``.
Fallbacks = list[dict[str, list[str]]]


Retries = Annotated[int, msgspec.Meta(ge=0, le=20)]
#: LiteLLM's error classes, as its ``retry_policy`` and ``allowed_fails_policy`` name them.
ERROR_CLASSES = (
    "BadRequestError",
    "AuthenticationError",
    "TimeoutError",
    "RateLimitError",
    "ContentPolicyViolationError",
    "InternalServerError",
)
#: The classes a retry may cure (throttling, AWS-side failures, timeouts); the others are
#: answers that would come again (a 400, a 401/403, a content filter's refusal).
RETRYABLE_CLASSES = ("TimeoutError", "RateLimitError", "InternalServerError")
_NEVER_RETRIED = {
    "BadRequestError": "a 400 would fail again: never retried",
    "AuthenticationError": "a 401/403 would fail again: never retried",
    "ContentPolicyViolationError": (
        "a content filter's refusal would come again: never retried (content_policy_fallbacks "
        "apply)"
    ),
}
_NEVER_COUNTED = "only retryable failures (429, 5xx, timeouts) count towards a cooldown"


class RetryPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """LiteLLM's ``retry_policy``: retries per error class, over ``num_retries``."""

    BadRequestErrorRetries: Retries | None = None
    AuthenticationErrorRetries: Retries | None = None
    TimeoutErrorRetries: Retries | None = None
    RateLimitErrorRetries: Retries | None = None
    ContentPolicyViolationErrorRetries: Retries | None = None
    InternalServerErrorRetries: Retries | None = None

    def limits(self) -> dict[str, int]:
        """Error class -> retries, for the classes set that a retry may cure."""
        return {c: n for c in RETRYABLE_CLASSES if (n := getattr(self, f"{c}Retries")) is not None}


class AllowedFailsPolicy(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """LiteLLM's ``allowed_fails_policy``: failures per error class before a cooldown."""

    BadRequestErrorAllowedFails: Annotated[int, msgspec.Meta(ge=0)] | None = None
    AuthenticationErrorAllowedFails: Annotated[int, msgspec.Meta(ge=0)] | None = None
    TimeoutErrorAllowedFails: Annotated[int, msgspec.Meta(ge=0)] | None = None
    RateLimitErrorAllowedFails: Annotated[int, msgspec.Meta(ge=0)] | None = None
    ContentPolicyViolationErrorAllowedFails: Annotated[int, msgspec.Meta(ge=0)] | None = None
    InternalServerErrorAllowedFails: Annotated[int, msgspec.Meta(ge=0)] | None = None

    def limits(self) -> dict[str, int]:
        """Error class -> allowed fails, for the classes set that count towards a cooldown."""
        return {
            c: n for c in RETRYABLE_CLASSES if (n := getattr(self, f"{c}AllowedFails")) is not None
        }


def policy_notes(where: str, policy: RetryPolicy | AllowedFailsPolicy) -> list[str]:
    """``path: why`` for each key of a policy that is set but cannot take effect."""
    retries = isinstance(policy, RetryPolicy)
    suffix = "Retries" if retries else "AllowedFails"
    return [
        f"{where}.{c}{suffix}: {_NEVER_RETRIED[c] if retries else _NEVER_COUNTED}"
        for c in ERROR_CLASSES
        if c not in RETRYABLE_CLASSES and getattr(policy, f"{c}{suffix}")
    ]


class AliasTarget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A ``model_group_alias`` entry's long form: ``{model: claude, hidden: true}``."""

    model: str
    #: Served but not listed by ``GET /v1/models``.
    hidden: bool = False


class RouterSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Retries, fallbacks, cooldowns and the routing strategy (docs/routing.md), read from
    ``router_settings`` over ``litellm_settings`` as LiteLLM does."""

    #: Further attempts after a retryable failure (429, 5xx, timeout, connection error); a
    #: deployment's ``num_retries`` overrides it for calls it serves first.
    num_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 0
    #: The least number of seconds before an attempt on the same deployment is repeated.
    retry_after: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 0.0
    #: Seconds a whole call (every attempt, every wait) may take before no attempt starts.
    timeout: Timeout | None = None
    fallbacks: Fallbacks = msgspec.field(default_factory=list)
    context_window_fallbacks: Fallbacks = msgspec.field(default_factory=list)
    content_policy_fallbacks: Fallbacks = msgspec.field(default_factory=list)
    #: model_names tried, in order, after any model_name's own deployments failed.
    default_fallbacks: list[str] = msgspec.field(default_factory=list)
    max_fallbacks: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5
    #: Retryable failures of one deployment tolerated within a minute before its cooldown.
    allowed_fails: Annotated[int, msgspec.Meta(ge=0)] = 3
    #: Seconds a deployment past ``allowed_fails`` is skipped (when its group has another).
    cooldown_time: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 5.0
    disable_cooldowns: bool = False
    routing_strategy: RoutingStrategy = "simple-shuffle"
    #: ``lowest_latency_buffer`` (latency-based-routing: pick at random among deployments
    #: within this fraction of the fastest).
    routing_strategy_args: dict[str, Any] = msgspec.field(default_factory=dict)
    #: Retries per error class (LiteLLM's names), over ``num_retries``; per model_name below.
    retry_policy: RetryPolicy | None = None
    model_group_retry_policy: dict[str, RetryPolicy] = msgspec.field(default_factory=dict)
    #: Failures per error class before a cooldown, over ``allowed_fails``.
    allowed_fails_policy: AllowedFailsPolicy | None = None
    #: Other names for a model_name: ``{alias: model_name}`` or ``{alias: {model, hidden}}``.
    model_group_alias: dict[str, str | AliasTarget] = msgspec.field(default_factory=dict)
    #: Tag routing: a request's ``tags`` pick among the deployments' ``litellm_params.tags``.
    enable_tag_filtering: bool = False
    #: A deployment serves a tagged request with any of its tags (``false``: with all of them).
    tag_filtering_match_any: bool = True

    def aliases(self) -> dict[str, AliasTarget]:
        """``model_group_alias`` in its long form."""
        return {
            alias: AliasTarget(model=t) if isinstance(t, str) else t
            for alias, t in self.model_group_alias.items()
        }


class Config(msgspec.Struct, kw_only=True):
    model_list: list[Deployment] = msgspec.field(default_factory=list)
    general_settings: GeneralSettings = msgspec.field(default_factory=GeneralSettings)
    router_settings: RouterSettings = msgspec.field(default_factory=RouterSettings)
    #: What the core does not read itself, for plugins: top-level sections by name
    #: (``bedrock_passthrough``) and settings keys by dotted path
    #: (``litellm_settings.service_callback``). The gateway refuses any a plugin does not claim.
    sections: dict[str, Any] = msgspec.field(default_factory=dict)
    #: ``path: why`` for each LiteLLM deployment key accepted and ignored.
    ignored: list[str] = msgspec.field(default_factory=list)
    #: Where the master key came from: a config path or an environment variable.
    master_key_source: str | None = None
    source: str | None = None


_ENV_REF = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
#: Environment variables that give the master key when the config file does not, in order.
MASTER_KEY_ENV = ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY")
_SETTINGS_FIELDS = frozenset(GeneralSettings.__struct_fields__)
#: The router's keys; ``router_settings`` wins over ``litellm_settings``.
ROUTER_FIELDS = frozenset(RouterSettings.__struct_fields__)


def _resolve_env(value: Any, path: str, errors: list[str]) -> Any:
    if isinstance(value, str):
        m = _ENV_REF.match(value.strip())
        if not m:
            return value
        name = m.group(1)
        if name not in os.environ:
            errors.append(
                f"{path}: environment variable {name} is not set (referenced as {value!r})"
            )
            return None
        return os.environ[name]
    if isinstance(value, dict):
        return {
            k: _resolve_env(v, f"{path}.{k}" if path else str(k), errors) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_env(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return value


def _model_list(raw: Any, errors: list[str], ignored: list[str]) -> list[Deployment]:
    deployments: list[Deployment] = []
    if not isinstance(raw, list):
        errors.append(f"model_list: expected a list, got {type(raw).__name__}")
        return deployments
    for i, entry in enumerate(raw):
        path = f"model_list[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{path}: expected a mapping with model_name and litellm_params")
            continue
        for key in entry:
            if key not in _ENTRY_KEYS:
                errors.append(unknown_key(path, str(key), _ENTRY_KEYS))
        name = entry.get("model_name")
        if not isinstance(name, str) or not name:
            errors.append(f"{path}.model_name: required, a non-empty string")
        key = "litellm_params" if "litellm_params" in entry else "params"
        if key not in entry:
            errors.append(f"{path}.litellm_params: required (also accepted as `params`)")
            continue
        try:
            params = parse_params(entry[key], f"{path}.{key}")
        except ConfigError as exc:
            errors.extend(exc.errors)
            continue
        if isinstance(entry[key], dict):
            ignored.extend(
                f"{path}.{key}.{k}: {IGNORED_PARAMS[k]}" for k in entry[key] if k in IGNORED_PARAMS
            )
        info = entry.get("model_info") or {}
        if not isinstance(info, dict):
            errors.append(f"{path}.model_info: expected a mapping")
            continue
        if isinstance(name, str):
            errors.extend(_wildcard_problems(path, name, params.model, info))
        groups = info.get("access_groups")
        if groups is not None and not (
            isinstance(groups, list) and all(isinstance(g, str) and g.strip() for g in groups)
        ):
            errors.append(f"{path}.model_info.access_groups: expected a list of group names")
        if isinstance(name, str) and name:
            deployments.append(Deployment(model_name=name, params=params, index=i, model_info=info))
    return deployments


_ENTRY_KEYS = ("model_name", "litellm_params", "params", "model_info")


def tag_filtering(group: list[Deployment], default: bool) -> bool:
    """Whether tag routing chooses among ``group`` (one model_name's deployments): LiteLLM's
    rule, the first ``model_info.enable_tag_filtering`` set on one of them, else ``default``
    (``router_settings.enable_tag_filtering``)."""
    for d in group:
        value = d.model_info.get("enable_tag_filtering")
        if value is not None:
            return bool(value)
    return default


def is_wildcard(model_name: str) -> bool:
    """Whether a ``model_name`` is a wildcard pattern (``*``, ``bedrock/*``: outcrop.wildcards)."""
    return "*" in model_name


def _wildcard_problems(path: str, name: str, model: str, info: dict[str, Any]) -> list[str]:
    """A wildcard ``model_name`` needs ``model_info.allowed_models``: without it any key holder
    could reach any model id with the deployment's credentials."""
    where = f"{path}.model_info.allowed_models"
    patterns = info.get("allowed_models")
    if not is_wildcard(name):
        if patterns is not None:
            return [f"{where}: only a wildcard model_name (with `*`) reads it; {name!r} is not one"]
        return []
    problems = []
    if patterns is None:
        problems.append(
            f"{where}: required for the wildcard model_name {name!r}: the patterns of the model "
            "strings callers may reach through it (litellm_params.model with its `*` filled in), "
            'e.g. ["bedrock/us.anthropic.claude-*", "bedrock/amazon.nova-*"]; ["*"] allows any '
            "model an installed plugin serves"
        )
    elif not (
        isinstance(patterns, list)
        and patterns
        and all(isinstance(p, str) and p.strip() for p in patterns)
    ):
        problems.append(f"{where}: expected a non-empty list of model-string patterns")
    if model.count("*") > name.count("*"):
        problems.append(
            f"{path}.litellm_params.model: {model!r} has more `*` than its model_name {name!r} "
            "fills in"
        )
    return problems


def _settings(
    data: dict[str, Any],
    sections: dict[str, Any],
    errors: list[str],
    origin: dict[str, str],
    router: dict[str, Any],
) -> dict[str, Any]:
    """The core's settings from ``litellm_settings`` then ``general_settings`` (which wins),
    the router's from ``litellm_settings`` then ``router_settings`` (into ``router``); every
    other key goes to ``sections`` under its dotted path. ``origin`` records the section each
    setting came from, for error paths."""
    merged: dict[str, Any] = {}
    for name in ("litellm_settings", "general_settings", "router_settings"):
        raw = data.get(name)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            errors.append(f"{name}: expected a mapping, got {type(raw).__name__}")
            continue
        for key, value in raw.items():
            if name != "general_settings" and key in ROUTER_FIELDS:
                router[key] = value
                origin[f"router.{key}"] = name
            elif name != "router_settings" and key in _SETTINGS_FIELDS:
                merged[key] = value
                origin[key] = name
            elif name == "router_settings" and key == "redis_url":
                if "redis_url" not in merged:  # LiteLLM's place for it; general_settings wins
                    merged[key], origin[key] = value, name
            elif key == "max_request_size_mb" and name == "general_settings":
                continue  # LiteLLM's spelling of max_request_bytes, read below
            else:
                sections[f"{name}.{key}"] = value
    general = data.get("general_settings")
    if isinstance(general, dict) and "max_request_size_mb" in general:
        megabytes = general["max_request_size_mb"]
        if "max_request_bytes" in merged:
            errors.append(
                "general_settings.max_request_size_mb: give it or max_request_bytes, not both"
            )
        elif (
            isinstance(megabytes, int | float)
            and not isinstance(megabytes, bool)
            and (0 < megabytes <= MAX_REQUEST_BYTES / 2**20)
        ):
            merged["max_request_bytes"] = int(megabytes * 2**20)
        else:
            errors.append(
                f"general_settings.max_request_size_mb: expected a number of megabytes "
                f"> 0 and <= {MAX_REQUEST_BYTES // 2**20}, got {megabytes!r}"
            )
    return merged


def _env_ref(value: Any) -> str | None:
    """``NAME`` for an ``os.environ/NAME`` reference, else ``None``."""
    m = _ENV_REF.match(value.strip()) if isinstance(value, str) else None
    return m.group(1) if m else None


def _master_key(
    data: dict[str, Any], unresolved: dict[str, Any], errors: list[str]
) -> tuple[str | None, str | None]:
    """The master key and where it came from. Present but empty (or an empty environment
    variable) is an error: it must never mean "no authentication"."""
    for name in ("general_settings", "litellm_settings"):
        section = data.get(name)
        if not isinstance(section, dict) or "master_key" not in section:
            continue
        path = f"{name}.master_key"
        value = section["master_key"]
        if isinstance(value, str) and value.strip():
            return value, path
        if value is not None and not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__}")
            return None, path
        raw = unresolved.get(name)
        ref = _env_ref(raw.get("master_key")) if isinstance(raw, dict) else None
        if ref and ref not in os.environ:
            return None, path  # reported already: the variable is not set
        via = f" (environment variable {ref} is empty)" if ref else ""
        errors.append(
            f"{path}: empty{via}; set a key, or remove the line to serve without "
            "client authentication (loopback only)"
        )
        return None, path
    for env in MASTER_KEY_ENV:
        value = os.environ.get(env)
        if value is None:
            continue
        if not value.strip():
            errors.append(f"{env}: set but empty; unset it or give it a key")
            return None, env
        return value, env
    return None, None


def parse_config(data: Any, *, source: str | None = None) -> Config:
    """Validate a config mapping (already loaded from YAML). Raises ``ConfigError``.

    The master key comes from ``general_settings.master_key`` (or ``litellm_settings``), else
    from ``OUTCROP_MASTER_KEY``, else ``LITELLM_MASTER_KEY``.
    """
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
    elif env_vars is not None:
        errors.append(f"environment_variables: expected a mapping, got {type(env_vars).__name__}")
    unresolved = data
    data = _resolve_env(data, "", errors)

    ignored: list[str] = []
    deployments = _model_list(data.get("model_list") or [], errors, ignored)
    sections = {str(k): v for k, v in data.items() if k not in CORE_SECTIONS}
    origin: dict[str, str] = {}
    router_raw: dict[str, Any] = {}
    settings_raw = _settings(data, sections, errors, origin, router_raw)
    router = _router_settings(router_raw, origin, deployments, errors, ignored)
    groups: dict[str, list[Deployment]] = {}
    for d in deployments:
        groups.setdefault(d.model_name, []).append(d)
    for group in groups.values():
        if tag_filtering(group, router.enable_tag_filtering):
            continue
        ignored.extend(
            f"model_list[{d.index}].litellm_params.{key}: tag routing is off "
            "(router_settings.enable_tag_filtering, or the model_name's "
            "model_info.enable_tag_filtering)"
            for d in group
            for key in ("tags", "tag_regex")
            if getattr(d.params, key)
        )
    master_key, master_key_source = _master_key(data, unresolved, errors)
    settings_raw.pop("master_key", None)
    try:
        general = msgspec.convert(settings_raw, GeneralSettings, str_keys=True)
    except msgspec.ValidationError as exc:
        key = split_validation_error(exc)[0].split(".")[0].split("[")[0]
        errors.extend(ConfigError.from_validation(exc, origin.get(key, "general_settings")).errors)
        general = GeneralSettings()
    general.master_key = master_key
    if general.default_region is not None and not is_region(general.default_region):
        errors.append(region_problem(general.default_region, "general_settings.default_region"))

    errors += _transport_errors(general)
    if errors:
        raise ConfigError(errors)
    return Config(
        model_list=deployments,
        general_settings=general,
        router_settings=router,
        sections=sections,
        ignored=ignored,
        master_key_source=master_key_source if master_key else None,
        source=source,
    )


def _router_settings(
    raw: dict[str, Any],
    origin: dict[str, str],
    deployments: list[Deployment],
    errors: list[str],
    ignored: list[str],
) -> RouterSettings:
    try:
        router = msgspec.convert(raw, RouterSettings, str_keys=True)
    except msgspec.ValidationError as exc:
        key = split_validation_error(exc)[0].split(".")[0].split("[")[0]
        where = origin.get(f"router.{key}", "router_settings")
        errors.extend(ConfigError.from_validation(exc, where).errors)
        return RouterSettings()
    names = {d.model_name for d in deployments if not is_wildcard(d.model_name)}
    for field in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        where = origin.get(f"router.{field}", "router_settings")
        for i, entry in enumerate(getattr(router, field)):
            for source, targets in entry.items():
                for name in (source, *targets):
                    if name not in names:
                        errors.append(
                            f"{where}.{field}[{i}]: {name!r} is not a model_name of model_list"
                        )
    where = origin.get("router.default_fallbacks", "router_settings")
    errors.extend(
        f"{where}.default_fallbacks: {name!r} is not a model_name of model_list"
        for name in router.default_fallbacks
        if name not in names
    )
    where = origin.get("router.model_group_alias", "router_settings")
    for alias, target in router.aliases().items():
        if alias in names:
            errors.append(
                f"{where}.model_group_alias.{alias}: already a model_name of model_list; an alias "
                "needs a name of its own"
            )
        elif target.model not in names:
            errors.append(
                f"{where}.model_group_alias.{alias}: {target.model!r} is not a model_name of "
                "model_list"
            )
    names |= set(router.model_group_alias)
    for field in ("retry_policy", "allowed_fails_policy"):
        policy = getattr(router, field)
        if policy is not None:
            ignored.extend(policy_notes(f"{origin.get(f'router.{field}')}.{field}", policy))
    where = origin.get("router.model_group_retry_policy", "router_settings")
    for name, policy in router.model_group_retry_policy.items():
        if name not in names:
            errors.append(
                f"{where}.model_group_retry_policy: {name!r} is not a model_name of model_list"
            )
        ignored.extend(policy_notes(f"{where}.model_group_retry_policy.{name}", policy))
    return router


def _transport_errors(general: GeneralSettings) -> list[str]:
    errors = [
        f"general_settings.{name}: must be a number of seconds > 0, got {value!r}"
        for name in ("body_timeout", "header_timeout", "keep_alive_timeout", "graceful_timeout")
        if not 0 < (value := getattr(general, name)) < float("inf")
    ]
    if general.max_connections is not None and general.max_connections < 1:
        errors.append(
            f"general_settings.max_connections: must be >= 1, got {general.max_connections}"
        )
    return errors


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML config file (with the files it ``include``s). Raises
    ``ConfigError``."""
    return parse_config(read_with_includes(Path(path)), source=str(Path(path)))


#: How deep ``include`` may nest (a file including itself is refused before this).
MAX_INCLUDE_DEPTH = 8


def read_with_includes(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """A config file with LiteLLM's ``include: [other.yaml, ...]`` merged in: paths are
    relative to the including file; lists (``model_list``) are concatenated, mappings merged
    key by key, and the including file wins on any other key it sets itself."""
    data = read_yaml(path)
    if not isinstance(data, dict) or "include" not in data:
        return data
    includes = data.pop("include")
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError([f"{path}: include: expected a list of file paths"])
    here = (*seen, path.resolve())
    if len(here) > MAX_INCLUDE_DEPTH:
        raise ConfigError([f"{path}: include: nested more than {MAX_INCLUDE_DEPTH} files deep"])
    for name in includes:
        child = (path.parent / name).resolve()
        if child in here:
            raise ConfigError([f"{path}: include: {name!r} includes itself"])
        if not child.is_file():
            raise ConfigError([f"{path}: include: {name!r}: no such file ({child})"])
        _merge_into(data, read_with_includes(child, here), f"{path}: include {name!r}")
    return data


def _merge_into(data: dict[str, Any], included: Any, where: str) -> None:
    if included is None:
        return
    if not isinstance(included, dict):
        raise ConfigError([f"{where}: expected a mapping, got {type(included).__name__}"])
    for key, value in included.items():
        mine = data.get(key)
        if key not in data:
            data[key] = value
        elif isinstance(mine, list) and isinstance(value, list):
            data[key] = [*mine, *value]
        elif isinstance(mine, dict) and isinstance(value, dict):
            data[key] = {**value, **mine}
