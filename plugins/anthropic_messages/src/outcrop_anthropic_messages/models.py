"""Which deployment serves the model a client names, built once at start-up.

The Claude deployments are the gateway's ``bedrock-runtime`` deployments (found through the
routes the core parsed, whichever plugin claimed their model strings) whose Bedrock model is
an Anthropic one (``anthropic.claude-...``, with or without an inference-profile prefix such as
``us.`` or ``global.``) or an ARN (an application inference profile or provisioned model, which
the gateway cannot see into). A client's ``model`` is, in this order:

1. a configured ``model_name`` of Claude deployments (load-balanced by the core's router);
2. a key of ``anthropic_messages.model_aliases`` -> that ``model_name``;
3. an Anthropic model id (``claude-sonnet-4-5``, ``claude-3-5-haiku-latest``...) from the
   built-in table (``settings.ANTHROPIC_MODELS``) -> every deployment of that Bedrock model;
4. with ``general_settings.allow_raw_models``, a Bedrock model id (optionally ``bedrock/...``)
   that a deployment serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from outcrop import (
    Deployment,
    DeploymentParams,
    GatewayAPI,
    OutcropError,
    clip,
    weighted_choice,
)

from .settings import ANTHROPIC_MODELS, Settings

_GEO = re.compile(r"(?:us|eu|apac|us-gov|ca|jp|au|global)\.")
_SERVICE = "bedrock-runtime"


@dataclass(frozen=True, slots=True)
class Claude:
    """One Claude deployment, with what each call on it needs."""

    deployment: Deployment
    #: The Bedrock model id or ARN, and its URL path label (percent-encoded as botocore does).
    model_id: str
    label: str
    #: The model id without an inference-profile prefix (what prices and CountTokens know).
    base: str
    #: The region the model string fixes (an ARN's), else ``None``.
    fixed_region: str | None
    base_label: str

    @property
    def params(self) -> DeploymentParams:
        return self.deployment.params


@dataclass(frozen=True, slots=True)
class Target:
    """Where one call goes."""

    claude: Claude
    region: str
    endpoint: str


def base_model(model_id: str) -> str:
    """``us.anthropic.claude-x`` -> ``anthropic.claude-x``; ARNs are kept."""
    return model_id if model_id.startswith("arn:") else _GEO.sub("", model_id, count=1)


def _label(model_id: str) -> str:
    return quote(model_id, safe="-._~")  # botocore's escaping of a URI label


def _is_claude(model_id: str) -> bool:
    return model_id.startswith("arn:") or base_model(model_id).startswith("anthropic.")


class Models:
    def __init__(self, gateway: GatewayAPI, settings: Settings) -> None:
        self._gateway = gateway
        self._raw_allowed = gateway.allow_raw_models
        self.by_name: dict[str, list[Claude]] = {}
        self._by_base: dict[str, list[Claude]] = {}
        self._by_id: dict[str, list[Claude]] = {}
        self._by_index: dict[int, Claude] = {}
        self._other_names: set[str] = set()
        # the routes the core parsed: whichever plugin claimed a deployment's model string, a
        # bedrock-runtime route naming a Claude model id (or an ARN) is ours to serve
        for d in gateway.deployments():
            route = gateway.route(d)
            model_id = route.resource
            if route.service != _SERVICE or not model_id or not _is_claude(model_id):
                self._other_names.add(d.model_name)
                continue
            base = base_model(model_id)
            claude = Claude(d, model_id, _label(model_id), base, route.region, _label(base))
            self.by_name.setdefault(d.model_name, []).append(claude)
            self._by_base.setdefault(claude.base, []).append(claude)
            self._by_id.setdefault(model_id, []).append(claude)
            self._by_index[d.index] = claude
        self._other_names -= set(self.by_name)
        self.aliases = dict(settings.model_aliases)
        self._anthropic = ANTHROPIC_MODELS if settings.default_aliases else {}

    def check(self) -> list[str]:
        """Configuration problems: aliases that name no Claude ``model_name``."""
        return [
            f"anthropic_messages.model_aliases.{alias}: {name!r} is not a model_name of a "
            "Bedrock Claude deployment"
            for alias, name in self.aliases.items()
            if name not in self.by_name
        ]

    def find(self, model: str) -> tuple[Claude, str, str | None]:
        """The deployment for ``model``, the name it is accounted under, and the ``model_name``
        whose deployments may stand in for it (retries, failover); 404 otherwise."""
        group = self.by_name.get(model)
        if group:
            return self._pick(model, group), model, model
        alias = self.aliases.get(model)
        if alias is not None and alias in self.by_name:
            return self._pick(alias, self.by_name[alias]), alias, alias
        base = self._anthropic.get(model)
        if base is not None:
            group = self._by_base.get(base)
            if group:
                claude = self._pick_any(group)
                name = claude.deployment.model_name
                return claude, name, name
        if model in self._other_names:
            raise OutcropError(
                f"model {clip(model)!r} is not a Claude model on Bedrock: /v1/messages serves "
                "only deployments of Anthropic's models (bedrock/anthropic.claude-..., "
                "bedrock/us.anthropic.claude-..., or an inference-profile ARN)",
                400,
            )
        raw = model.removeprefix("bedrock/")
        if self._raw_allowed and raw in self._by_id:
            claude = self._pick_any(self._by_id[raw])
            return claude, claude.deployment.model_name, None
        raise OutcropError(self._unknown(model), 404, code="model_not_found")

    def _pick(self, name: str, group: list[Claude]) -> Claude:
        if len(group) == len(self._gateway.deployments(name)):
            picked = self._gateway.pick(name)  # the core's balancing, when all are ours
            for claude in group:
                if claude.deployment is picked:
                    return claude
        return self._pick_any(group)

    @staticmethod
    def _pick_any(group: list[Claude]) -> Claude:
        if len(group) == 1:
            return group[0]
        picked = weighted_choice([c.deployment for c in group])
        return next(c for c in group if c.deployment is picked)

    def _unknown(self, model: str) -> str:
        names = sorted(self.by_name)
        msg = f"model: {clip(model)!r} is not served here"
        if names:
            msg += f"; the Claude models of this gateway are: {', '.join(names[:20])}"
        else:
            msg += "; this gateway has no Bedrock Claude deployment (bedrock/anthropic.claude-...)"
        if model in ANTHROPIC_MODELS and self._anthropic:
            msg += (
                f" (the Anthropic id {model!r} names {ANTHROPIC_MODELS[model]}, which no "
                "deployment serves)"
            )
        return msg

    def claude_of(self, deployment: Deployment) -> Claude:
        """The Claude deployment the router chose instead (failover within a ``model_name``)."""
        found = self._by_index.get(deployment.index)
        if found is None:
            raise OutcropError(
                f"deployment {deployment.id!r} of {deployment.model_name!r} is not a Bedrock "
                "Claude model: /v1/messages cannot fail over to it",
                502,
            )
        return found

    def target(self, claude: Claude) -> Target:
        gateway = self._gateway
        region = gateway.region(claude.params, claude.fixed_region)
        return Target(claude, region, gateway.endpoint(_SERVICE, region, claude.params))
