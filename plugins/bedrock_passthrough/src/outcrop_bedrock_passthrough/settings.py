"""The ``bedrock_passthrough`` config section, decoded and checked with field paths.

```yaml
bedrock_passthrough:
  only_aliases: true             # deprecated: general_settings.allow_raw_models (its opposite)
  aws_region_name: us-west-2     # defaults for raw model ids, agent-runtime and AgentCore paths
  aws_access_key_id: os.environ/AWS_ACCESS_KEY_ID
  aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY
  endpoints: {bedrock-agent-runtime: https://vpce-...}
  timeout: 600                   # seconds without a byte from AWS (default: the gateway's)
  keys:                          # gateway-issued SigV4 key pairs for AWS SDK clients
    - {access_key_id: OUTCROPKEY0001, secret_access_key: os.environ/OUTCROP_SDK_SECRET}
```
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from outcrop import (
    DATA_PLANE_SERVICES,
    ConfigError,
    DeploymentParams,
    GatewayAPI,
    http_url_problem,
    parse_params,
)

from . import SECTION

_KEY_ID = re.compile(r"[A-Za-z0-9_.+=@-]{4,128}\Z")  # no '/' or ',': they split the Credential


class KeyPair(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A SigV4 access key id and secret the gateway issued to an AWS SDK client."""

    access_key_id: str
    secret_access_key: str
    name: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"KeyPair({self.access_key_id!r}, name={self.name!r})"


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The section's own keys; every other key is a deployment setting (``aws_*``,
    ``api_base``, timeouts), decoded by the core into ``params``."""

    #: Deprecated spelling of ``general_settings.allow_raw_models: false`` (``None``: not set).
    only_aliases: bool | None = None
    max_clock_skew_seconds: int = 900
    endpoints: dict[str, str] = msgspec.field(default_factory=dict)
    keys: list[KeyPair] = msgspec.field(default_factory=list)
    #: The gateway's defaults for calls no deployment serves (raw model ids, agent paths).
    params: DeploymentParams = msgspec.field(
        default_factory=lambda: DeploymentParams(model=SECTION)
    )

    def __repr__(self) -> str:
        return (
            f"Settings(only_aliases={self.only_aliases}, "
            f"region={self.params.aws_region_name!r}, keys={len(self.keys)})"
        )

    def raw_models_allowed(self, gateway: GatewayAPI) -> bool:
        """Whether ``/model/{id}/...`` may name a model id that is not a configured model_name:
        ``general_settings.allow_raw_models``, else the deprecated ``only_aliases``, else the
        core's default (only when there is no model_list)."""
        if gateway.settings.allow_raw_models is None and self.only_aliases is not None:
            return not self.only_aliases
        return gateway.allow_raw_models

    def secrets(self) -> dict[str, str]:
        return {k.access_key_id: k.secret_access_key for k in self.keys}

    def has_credentials(self) -> bool:
        return any(self.params.credential_key())


#: The keys the section reads itself (``params`` is filled from the others).
OWN_KEYS = frozenset(Settings.__struct_fields__) - {"params"}


def has_keys(raw: Any) -> bool:
    """Whether the section (raw, as in the file) configures SigV4 key pairs for callers."""
    return isinstance(raw, dict) and bool(raw.get("keys"))


def aws_params(raw: Any) -> DeploymentParams | None:
    """The section's AWS defaults (raw, as in the file), for the core's start-up check of a
    named profile; ``None`` when the section is malformed (``outcrop_check_config`` says how)."""
    try:
        return parse_settings({SECTION: raw}).params
    except ConfigError:
        return None


def parse_settings(sections: dict[str, Any]) -> Settings:
    """Decode ``sections['bedrock_passthrough']``; raises ``ConfigError`` listing every problem."""
    raw = sections.get(SECTION)
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        raise ConfigError([f"{SECTION}: expected a mapping, got {type(raw).__name__}"])
    errors: list[str] = []
    own = {k: v for k, v in raw.items() if k in OWN_KEYS}
    rest = {k: v for k, v in raw.items() if k not in OWN_KEYS}
    if "model" in rest:  # the section's defaults serve whatever model a caller names
        errors.append(f"{SECTION}.model: unknown key")
        del rest["model"]
    try:
        params = parse_params({"model": SECTION, **rest}, SECTION, provider_params=False)
    except ConfigError as exc:
        errors.extend(exc.errors)
        params = DeploymentParams(model=SECTION)
    try:
        settings = msgspec.convert(own, Settings, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError([*errors, *ConfigError.from_validation(exc, SECTION).errors]) from None
    settings.params = params
    if settings.max_clock_skew_seconds < 1:
        errors.append(
            f"{SECTION}.max_clock_skew_seconds: must be >= 1, got {settings.max_clock_skew_seconds}"
        )
    for service, url in settings.endpoints.items():
        if service not in DATA_PLANE_SERVICES:
            errors.append(
                f"{SECTION}.endpoints.{service}: unknown service (expected one of "
                f"{', '.join(DATA_PLANE_SERVICES)})"
            )
        elif problem := http_url_problem(url):
            errors.append(f"{SECTION}.endpoints.{service}: {problem}")
    seen: set[str] = set()
    for i, key in enumerate(settings.keys):
        where = f"{SECTION}.keys[{i}]"
        if not _KEY_ID.match(key.access_key_id):
            errors.append(
                f"{where}.access_key_id: 4-128 characters of letters, digits and "
                "_.+=@- (no '/' or ',')"
            )
        elif key.access_key_id in seen:
            errors.append(f"{where}.access_key_id: {key.access_key_id!r} is listed twice")
        seen.add(key.access_key_id)
        if len(key.secret_access_key) < 16:
            errors.append(f"{where}.secret_access_key: must be at least 16 characters")
    if errors:
        raise ConfigError(errors)
    return settings
