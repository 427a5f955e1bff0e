"""Which deployment serves the model a client names: the core's routing, plus Anthropic's ids.

A Claude deployment is one whose route (as the core parsed it, whichever plugin claimed its
model string) calls ``bedrock-runtime`` on an Anthropic model (``anthropic.claude-...``, with or
without an inference-profile prefix such as ``us.`` or ``global.``) or on an ARN (an
application inference profile or provisioned model, which the gateway cannot see into).

A client's ``model`` is routed by the core (``GatewayAPI.resolve``, as ``/v1/chat/completions``
routes it: the router's pick, tag routing, cooldowns; ``send_routed`` then retries and fails
over), after the names this surface adds are mapped to what the core routes. In this order:

1. a configured ``model_name`` or ``router_settings.model_group_alias``;
2. a key of ``anthropic_messages.model_aliases`` -> its target (a ``model_name``, an alias, or a
   model string a wildcard deployment serves);
3. an Anthropic model id (``claude-sonnet-4-5``, ``claude-3-5-haiku-latest``...) from the
   built-in table (``settings.ANTHROPIC_MODELS``) -> a ``model_name`` whose deployments call
   that Bedrock model (any region or inference profile);
4. with ``general_settings.allow_raw_models``, a Bedrock model id a configured deployment
   calls -> that deployment's ``model_name``;
5. a model string a wildcard deployment (``model_name: "bedrock/*"``) serves and allows;
6. with ``allow_raw_models``, a raw model string (the gateway's default credentials), as on the
   chat route.

The route must be a Claude one (else 400). A ``model_name`` whose deployments are all Claude
fails over between them; one that mixes Claude and other deployments serves from its Claude
ones among those the request's tags chose, by weight, each call on one deployment.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from outcrop import (
    Deployment,
    DeploymentParams,
    GatewayAPI,
    ModelRoute,
    OutcropError,
    Principal,
    clip,
    weighted_choice,
)

from .settings import ANTHROPIC_MODELS, Settings

_GEO = re.compile(r"(?:us|eu|apac|us-gov|ca|jp|au|global)\.")
_SERVICE = "bedrock-runtime"


@dataclass(frozen=True, slots=True)
class Claude:
    """One Claude target (a deployment's, or a raw model string's), with what a call needs."""

    #: ``None`` for a raw model string (``allow_raw_models``): the gateway's defaults serve it.
    deployment: Deployment | None
    params: DeploymentParams
    #: The Bedrock model id or ARN, and its URL path label (percent-encoded as botocore does).
    model_id: str
    label: str
    #: The model id without an inference-profile prefix (what prices and CountTokens know).
    base: str
    #: The region the model string fixes (an ARN's), else ``None``.
    fixed_region: str | None
    base_label: str


@dataclass(frozen=True, slots=True)
class Target:
    """Where one call goes."""

    claude: Claude
    region: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class Found:
    """What ``Models.find`` chose for a call."""

    claude: Claude
    #: The name the call is accounted under (and keys' ``models`` checked against).
    name: str
    #: The ``model_name`` whose deployments may stand in on a retry; ``None``: the same target.
    group: str | None


def base_model(model_id: str) -> str:
    """``us.anthropic.claude-x`` -> ``anthropic.claude-x``; ARNs are kept."""
    return model_id if model_id.startswith("arn:") else _GEO.sub("", model_id, count=1)


def _label(model_id: str) -> str:
    return quote(model_id, safe="-._~")  # botocore's escaping of a URI label


def _is_claude(model_id: str) -> bool:
    return model_id.startswith("arn:") or base_model(model_id).startswith("anthropic.")


def claude_target(
    route: ModelRoute, params: DeploymentParams, deployment: Deployment | None
) -> Claude | None:
    """The Claude target of a route, ``None`` when it calls no Claude model on Bedrock."""
    model_id = route.resource
    if route.service != _SERVICE or not model_id or not _is_claude(model_id):
        return None
    base = base_model(model_id)
    return Claude(deployment, params, model_id, _label(model_id), base, route.region, _label(base))


class Models:
    def __init__(self, gateway: GatewayAPI, settings: Settings) -> None:
        self._gateway = gateway
        self._raw_allowed = gateway.allow_raw_models
        #: model_names and model_group_alias names: the core routes them as they are.
        self._names = frozenset(gateway.model_names())
        self._claude: dict[int, Claude] = {}  # configured deployment index -> its target
        self._by_base: dict[str, list[str]] = {}  # foundation model -> model_names calling it
        self._by_id: dict[str, list[str]] = {}  # Bedrock model id -> model_names calling it
        names: dict[str, list[Deployment]] = {}
        for d in gateway.deployments():
            names.setdefault(d.model_name, []).append(d)
            claude = claude_target(gateway.route(d), d.params, d)
            if claude is None:
                continue
            self._claude[d.index] = claude
            _add(self._by_base, claude.base, d.model_name)
            _add(self._by_id, claude.model_id, d.model_name)
        #: model_name -> whether every deployment of it is Claude (then any may stand in).
        self._all_claude = {
            name: all(d.index in self._claude for d in group) for name, group in names.items()
        }
        #: The model_names with Claude deployments (for the errors that list them).
        self.claude_names = sorted(
            n for n, group in names.items() if any(d.index in self._claude for d in group)
        )
        self.aliases = dict(settings.model_aliases)
        self._anthropic = ANTHROPIC_MODELS if settings.default_aliases else {}

    def check(self) -> list[str]:
        """Configuration problems: aliases naming nothing the gateway routes to Claude."""
        problems = []
        for alias, name in self.aliases.items():
            if name in self._names:
                served = any(d.index in self._claude for d in self._gateway.deployments(name))
            else:
                try:
                    served = self._gateway.match_wildcard(name)
                except OutcropError:
                    served = False
            if not served:
                problems.append(
                    f"anthropic_messages.model_aliases.{alias}: {name!r} is not a model_name of a "
                    "Bedrock Claude deployment (nor an alias of one, nor a model string a "
                    "wildcard deployment serves)"
                )
        return problems

    def find(
        self, model: str, tags: Sequence[str] | None = None, principal: Principal | None = None
    ) -> Found:
        """Where a call of ``model`` goes (``tags``: the request's, for tag routing); 400 for
        a model that is not Claude, 404 for one nothing serves. Among several names serving
        ``model``, one ``principal`` may call (admission refuses when it may call none)."""
        if model in self._names:
            return self._routed(model, model, tags)
        target = self.aliases.get(model)
        if target is not None:
            return self._routed(target, target, tags)
        base = self._anthropic.get(model)
        names = self._by_base.get(base) if base is not None else None
        if not names and self._raw_allowed:
            names = self._by_id.get(model)
        if names:
            if len(names) > 1 and principal is not None:
                names = self._gateway.allowed_models(principal, names, model) or names
            name = names[0] if len(names) == 1 else random.choice(names)
            return self._routed(name, name, tags)
        if self._gateway.match_wildcard(model):  # raises when its allow-list refuses it
            return self._routed(model, model, tags)
        if self._raw_allowed:
            try:
                return self._routed(model, model, tags)
            except OutcropError as exc:
                if exc.code != "model_not_found":
                    raise
        raise OutcropError(self._unknown(model), 404, code="model_not_found")

    def _routed(self, name: str, accounted: str, tags: Sequence[str] | None) -> Found:
        route, params, deployment = self._gateway.resolve(name, tags=tags)
        claude = self._target(route, params, deployment)
        if claude is None and deployment is not None:  # a name mixing Claude and others
            # its Claude deployments among those the tags chose (never one they left out)
            group = [
                d
                for d in self._gateway.tagged(deployment.model_name, tags)
                if self._target(self._gateway.route(d), d.params, d) is not None
            ]
            if group:
                claude = self.claude_of(weighted_choice(group))
                return Found(claude, accounted, None)
            if deployment.model_name in self.claude_names:
                raise OutcropError(
                    f"no Claude deployment of model {clip(accounted)!r} serves the tags "
                    f"{clip(', '.join(tags or ())) or '(none)'} (its other deployments are "
                    "served at /v1/chat/completions)",
                    400,
                    code="no_deployments_with_tag",
                )
        if claude is None:
            raise OutcropError(
                f"model {clip(accounted)!r} is not a Claude model on Bedrock: /v1/messages "
                "serves only deployments of Anthropic's models (bedrock/anthropic.claude-..., "
                "bedrock/us.anthropic.claude-..., or an inference-profile ARN)",
                400,
            )
        group_name = deployment.model_name if deployment is not None else None
        if group_name is not None and not self._every_claude(group_name):
            group_name = None
        return Found(claude, accounted, group_name)

    def _target(
        self, route: ModelRoute, params: DeploymentParams, deployment: Deployment | None
    ) -> Claude | None:
        if deployment is not None:
            known = self._claude.get(deployment.index)
            if known is not None:
                return known
        return claude_target(route, params, deployment)

    def _every_claude(self, name: str) -> bool:
        known = self._all_claude.get(name)
        if known is not None:
            return known
        # a wildcard's group (derived deployments, one per wildcard deployment allowing it)
        return all(
            self._target(self._gateway.route(d), d.params, d) is not None
            for d in self._gateway.deployments(name)
        )

    def _unknown(self, model: str) -> str:
        names = self.claude_names
        msg = f"model: {clip(model)!r} is not served here"
        if names:
            msg += f"; the Claude models of this gateway are: {', '.join(names[:20])}"
        else:
            msg += "; this gateway has no Bedrock Claude deployment (bedrock/anthropic.claude-...)"
        if model in ANTHROPIC_MODELS and self._anthropic:
            msg += (
                f" (the Anthropic id {model!r} names {ANTHROPIC_MODELS[model]}, which no "
                "deployment serves; anthropic_messages.model_aliases can map it to a model "
                "string a wildcard deployment serves)"
            )
        return msg

    def claude_of(self, deployment: Deployment) -> Claude:
        """The Claude target of a deployment the router chose instead (failover)."""
        found = self._target(self._gateway.route(deployment), deployment.params, deployment)
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


def _add(table: dict[str, list[str]], key: str, name: str) -> None:
    names = table.setdefault(key, [])
    if name not in names:
        names.append(name)
