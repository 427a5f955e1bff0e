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

from outcrop import ConfigError, DeploymentParams, Gateway, OutcropError, check_region

from . import SECTION
from .operations import SERVICES

_KEY_ID = re.compile(r"[A-Za-z0-9_.+=@-]{4,128}\Z")  # no '/' or ',': they split the Credential
_URL = re.compile(r"https?://[^/\s]+(/\S*)?\Z")


class KeyPair(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A SigV4 access key id and secret the gateway issued to an AWS SDK client."""

    access_key_id: str
    secret_access_key: str
    name: str | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"KeyPair({self.access_key_id!r}, name={self.name!r})"


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The section; the ``aws_*`` fields and ``api_base`` mean what they mean on a deployment."""

    #: Deprecated spelling of ``general_settings.allow_raw_models: false`` (``None``: not set).
    only_aliases: bool | None = None
    max_clock_skew_seconds: int = 900
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
    endpoints: dict[str, str] = msgspec.field(default_factory=dict)
    keys: list[KeyPair] = msgspec.field(default_factory=list)

    def __repr__(self) -> str:
        return (f"Settings(only_aliases={self.only_aliases}, region={self.aws_region_name!r}, "
                f"keys={len(self.keys)})")

    def default_params(self) -> DeploymentParams:
        """Deployment-style params for calls no deployment serves (the gateway's defaults)."""
        fields = {f: getattr(self, f) for f in _PARAM_FIELDS if getattr(self, f) is not None}
        return DeploymentParams(model="bedrock_passthrough", **fields)

    def raw_models_allowed(self, gateway: Gateway) -> bool:
        """Whether ``/model/{id}/...`` may name a model id that is not a configured model_name:
        ``general_settings.allow_raw_models``, else the deprecated ``only_aliases``, else the
        core's default (only when there is no model_list)."""
        if gateway.config.general_settings.allow_raw_models is None and self.only_aliases is not None:
            return not self.only_aliases
        return gateway.allow_raw_models

    def secrets(self) -> dict[str, str]:
        return {k.access_key_id: k.secret_access_key for k in self.keys}

    def has_credentials(self) -> bool:
        return any(getattr(self, f) for f in _AWS_FIELDS if f not in ("aws_region_name", "api_base"))


_AWS_FIELDS = (*(f for f in Settings.__struct_fields__ if f.startswith("aws_")), "api_base")
_PARAM_FIELDS = (*_AWS_FIELDS, "timeout", "connect_timeout")


def parse_settings(sections: dict[str, Any]) -> Settings:
    """Decode ``sections['bedrock_passthrough']``; raises ``ConfigError`` listing every problem."""
    raw = sections.get(SECTION)
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        raise ConfigError([f"{SECTION}: expected a mapping, got {type(raw).__name__}"])
    try:
        settings = msgspec.convert(raw, Settings, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError([_path_error(exc)]) from None
    errors: list[str] = []
    if bool(settings.aws_access_key_id) != bool(settings.aws_secret_access_key):
        given, missing = (("aws_access_key_id", "aws_secret_access_key") if settings.aws_access_key_id
                          else ("aws_secret_access_key", "aws_access_key_id"))
        errors.append(f"{SECTION}.{missing}: required together with {given}")
    if settings.aws_region_name is not None:
        try:
            check_region(settings.aws_region_name, f"{SECTION}.aws_region_name")
        except OutcropError as exc:
            errors.append(exc.message)
    for name in ("timeout", "connect_timeout"):
        value = getattr(settings, name)
        if value is not None and value <= 0:
            errors.append(f"{SECTION}.{name}: must be > 0 seconds, got {value}")
    if settings.max_clock_skew_seconds < 1:
        errors.append(f"{SECTION}.max_clock_skew_seconds: must be >= 1, got {settings.max_clock_skew_seconds}")
    if settings.api_base is not None and not _URL.match(settings.api_base):
        errors.append(f"{SECTION}.api_base: expected an http(s) URL, got {settings.api_base!r}")
    for service, url in settings.endpoints.items():
        if service not in SERVICES:
            errors.append(f"{SECTION}.endpoints.{service}: unknown service (expected one of "
                          f"{', '.join(SERVICES)})")
        elif not _URL.match(url):
            errors.append(f"{SECTION}.endpoints.{service}: expected an http(s) URL, got {url!r}")
    seen: set[str] = set()
    for i, key in enumerate(settings.keys):
        where = f"{SECTION}.keys[{i}]"
        if not _KEY_ID.match(key.access_key_id):
            errors.append(f"{where}.access_key_id: 4-128 characters of letters, digits and "
                          "_.+=@- (no '/' or ',')")
        elif key.access_key_id in seen:
            errors.append(f"{where}.access_key_id: {key.access_key_id!r} is listed twice")
        seen.add(key.access_key_id)
        if len(key.secret_access_key) < 16:
            errors.append(f"{where}.secret_access_key: must be at least 16 characters")
    if errors:
        raise ConfigError(errors)
    return settings


def _path_error(exc: msgspec.ValidationError) -> str:
    """``Expected `bool`, got `str` - at `$.only_aliases``` -> ``bedrock_passthrough.only_aliases: ...``."""
    text = str(exc)
    where = ""
    found = re.search(r" - at `\$(.*)`$", text)
    if found:
        where, text = found.group(1), text[:found.start()]
    if text.startswith("Object contains unknown field"):
        field = text.split("`")[1] if "`" in text else ""
        return f"{SECTION}{where}.{field}: unknown key"
    return f"{SECTION}{where}: {text[:1].lower()}{text[1:]}"
