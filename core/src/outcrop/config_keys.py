"""Which configuration keys exist: the core's own, LiteLLM's, and those plugins claim.

A LiteLLM config carries many keys Outcrop does not implement. Each known one is either
*ignored* (accepted for compatibility; named in a start-up warning and by ``check-config``) or
*refused* (it restricts access, spends money or sends data elsewhere, so running without it
would silently do something else than configured). A key in none of these tables, and not
claimed by an installed plugin, is a typo: an error with a "did you mean" hint. The tables are
reproduced in ``docs/configuration.md`` (a test keeps them in step).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

#: The settings sections the core reads (``general_settings`` and ``litellm_settings`` share
#: the core's settings; ``router_settings`` holds LiteLLM router options).
SETTINGS_SECTIONS = ("general_settings", "litellm_settings", "router_settings")
#: Top-level keys the core reads.
CORE_SECTIONS = ("model_list", "environment_variables", *SETTINGS_SECTIONS)

_LOGGING = "Outcrop logs one structured line per call; see docs/server.md"
_DB = "virtual keys and spend need a plugin that stores them"

#: Known LiteLLM keys Outcrop accepts and ignores, per section: key -> why it is harmless.
IGNORED: dict[str, dict[str, str]] = {
    "": {  # top-level sections
        "files_settings": "Outcrop serves no files API",
        "finetune_settings": "Outcrop serves no fine-tuning API",
        "assistant_settings": "Outcrop serves no assistants API",
        "mcp_servers": "Outcrop serves no MCP gateway",
    },
    "general_settings": {
        "alerting": "no Slack/webhook alerts",
        "alerting_threshold": "no alerts",
        "alert_types": "no alerts",
        "alert_to_webhook_url": "no alerts",
        "background_health_checks": "no background health checks",
        "health_check_interval": "no background health checks",
        "health_check_details": "health probes reveal nothing",
        "disable_master_key_return": "the master key is never returned",
        "disable_spend_logs": _DB,
        "disable_reset_budget": _DB,
        "disable_adding_master_key_hash_to_db": _DB,
        "disable_prisma_schema_update": _DB,
        "database_connection_pool_limit": _DB,
        "database_connection_timeout": _DB,
        "allow_requests_on_db_unavailable": _DB,
        "store_model_in_db": "models come from the config file only",
        "proxy_batch_write_at": _DB,
        "proxy_budget_rescheduler_min_time": _DB,
        "proxy_budget_rescheduler_max_time": _DB,
        "maximum_spend_logs_retention_period": _DB,
        "spend_report_frequency": _DB,
        "ui_access_mode": "Outcrop has no admin UI",
        "infer_model_from_keys": "models come from model_list or the model string",
        "forward_openai_org_id": "nothing is forwarded to OpenAI",
        "forward_client_headers_to_llm_api": "the upstream request is built from the call",
        "disable_retry_on_max_parallel_request_limit_error": "no parallel-request limit",
        "use_redis_transaction_buffer": "counters are shared through general_settings.redis_url",
        "litellm_key_header_name": "keys are read from Authorization or x-api-key",
        "use_x_forwarded_for": "not used by any check",
        "otel": _LOGGING,
        "max_parallel_requests": "set max_parallel_requests on a key or team (/key/generate)",
        "global_max_parallel_requests": "no gateway-wide concurrency limit",
    },
    "litellm_settings": {
        "set_verbose": "use --log-level",
        "json_logs": "logs are JSON when stderr is not a terminal",
        "turn_off_message_logging": "prompts and answers are never logged",
        "redact_messages_in_exceptions": "prompts and answers are never logged",
        "redact_user_api_key_info": "keys are never logged",
        "telemetry": "Outcrop sends no telemetry",
        "modify_params": "requests reach the provider as sent (see drop_params)",
        "force_ipv4": "the system resolver decides",
        "enable_preview_features": "no preview features",
        "return_response_headers": "Outcrop's own x-outcrop-* headers are always returned",
        "enable_json_schema_validation": "no client-side JSON schema validation",
        "public_model_groups": "Outcrop has no admin UI",
        "langfuse_default_tags": _LOGGING,
        "disable_end_user_cost_tracking": "cost is per call, in logs and headers",
    },
    "router_settings": {
        "stream_timeout": "a deployment's timeout (or general_settings.read_timeout) applies",
        "enable_pre_call_checks": (
            "no pre-call context-window check; context_window_fallbacks act on AWS's answer"
        ),
        "optional_pre_call_checks": "no pre-call checks",
        "default_max_parallel_requests": "no per-deployment concurrency limit",
        "redis_host": "use general_settings.redis_url or REDIS_URL",
        "redis_port": "use general_settings.redis_url or REDIS_URL",
        "redis_password": "use general_settings.redis_url or REDIS_URL",
        "client_ttl": "one pooled upstream client per worker",
        "polling_interval": "no background polling",
        "set_verbose": "use --log-level",
        "debug_level": "use --log-level",
        "tag_routing_prefix": "request tags are matched as sent (no prefix is stripped)",
    },
}

_ACCESS = (
    "it restricts who may call what; Outcrop does not implement it, and serving "
    "without it would let through callers it is meant to refuse"
)
_MONEY = "it limits spend; Outcrop does not implement it, and ignoring it could overspend"
_CACHE = "response caching is not implemented: without it every call is sent and paid for"
_EGRESS = (
    "it sends call data to another service; Outcrop does not implement it (use an "
    "outcrop_after_call plugin)"
)

#: Known LiteLLM keys Outcrop refuses (unless an installed plugin claims them): key -> why.
REFUSED: dict[str, dict[str, str]] = {
    "": {
        "include": "includes are read from a config file: give the file's path (--config)",
        "credential_list": (
            "named credentials are not supported: put the aws_* settings on each deployment"
        ),
        "guardrails": (
            "content guardrails are not applied by Outcrop, and serving without them "
            "would let through what they are meant to block"
        ),
    },
    "general_settings": {
        "allowed_routes": _ACCESS,
        "admin_only_routes": _ACCESS,
        "public_routes": _ACCESS,
        "allowed_ips": _ACCESS,
        "enable_jwt_auth": _ACCESS,
        "enable_oauth2_auth": _ACCESS,
        "custom_auth": _ACCESS,
        "enforce_user_param": _ACCESS,
        "key_management_system": "keys come from the config file or the environment",
        "key_management_settings": "keys come from the config file or the environment",
        "use_azure_key_vault": "keys come from the config file or the environment",
        "use_google_kms": "keys come from the config file or the environment",
        "custom_key_generate": _DB + ", and no installed plugin claims it",
        "pass_through_endpoints": "routes come from installed plugins only",
    },
    "litellm_settings": {
        "service_callback": _EGRESS,
        "cache": _CACHE,
        "cache_params": "response caching is not implemented",
        "max_budget": _MONEY,
        "budget_duration": _MONEY,
        "max_internal_user_budget": _MONEY,
        "max_end_user_budget": _MONEY,
        "default_key_generate_params": _DB + ", and no installed plugin claims it",
        "upperbound_key_generate_params": _DB + ", and no installed plugin claims it",
        "key_generation_settings": _DB + ", and no installed plugin claims it",
        "default_team_settings": _DB + ", and no installed plugin claims it",
    },
    "router_settings": {
        "cache_responses": _CACHE,
        "provider_budget_config": _MONEY,
    },
}

#: LiteLLM deployment keys (``litellm_params``) accepted and ignored.
IGNORED_PARAMS: dict[str, str] = {
    "custom_llm_provider": "the plugin that claims the model string serves it",
    "max_parallel_requests": "no per-deployment concurrency limit",
    "cooldown_time": "router_settings.cooldown_time applies to every deployment",
    "stream_timeout": "use timeout",
    "use_in_pass_through": "the pass-through serves every deployment it can",
}


def did_you_mean(key: str, choices: Iterable[str]) -> str:
    """`` (did you mean `master_key`?)`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def unknown_key(path: str, key: str, choices: Iterable[str]) -> str:
    """The error line for an unknown key at ``path`` (``""`` for the top level)."""
    where = f"{path}.{key}" if path else key
    return f"{where}: unknown key{did_you_mean(key, choices)}"


def check_sections(
    sections: Mapping[str, Any],
    claimed: Collection[str],
    settings_keys: Collection[str],
    router_keys: Collection[str] = (),
) -> tuple[list[str], list[str]]:
    """Sort what the core does not read (``Config.sections``) into errors and ignored keys.

    ``claimed`` are the names installed plugins registered; ``settings_keys`` the core's own
    ``general_settings`` keys and ``router_keys`` its ``router_settings`` keys (for hints). Returns ``(errors, ignored)``, both ``path: why``
    (the ignored ones are accepted for LiteLLM compatibility).
    """
    errors: list[str] = []
    ignored: list[str] = []
    for name in sections:
        if name in claimed:
            continue
        head, _, key = name.partition(".")
        table = head if key and head in SETTINGS_SECTIONS else ""
        key = key if table else name
        if key in IGNORED[table]:
            ignored.append(f"{name}: {IGNORED[table][key]}")
            continue
        if key in REFUSED[table]:
            errors.append(
                f"{name}: a LiteLLM setting Outcrop does not implement: {REFUSED[table][key]}"
            )
            continue
        mine = (
            [c.partition(".")[2] for c in claimed if c.startswith(f"{table}.")]
            if table
            else [c for c in claimed if "." not in c]
        )
        own = {
            "": CORE_SECTIONS,
            "general_settings": settings_keys,
            "litellm_settings": [*settings_keys, *router_keys],
            "router_settings": router_keys,
        }[table]
        choices = [*own, *IGNORED[table], *REFUSED[table], *mine]
        if table:
            errors.append(unknown_key(table, key, choices))
        else:
            plugins = (
                f"; sections of installed plugins: {', '.join(sorted(mine))}"
                if mine
                else ("; no installed plugin claims a section")
            )
            errors.append(f"{name}: unknown section{did_you_mean(name, choices)}{plugins}")
    return errors, ignored
