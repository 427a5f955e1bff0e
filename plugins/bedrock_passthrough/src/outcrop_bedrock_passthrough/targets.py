"""Where a matched request goes: the path to send, the credentials, the region and the endpoint.

* ``/model/{name}/...`` where ``{name}`` is a configured ``model_name`` (or a
  ``model_group_alias``) of native deployments: the core's router picks the deployment
  (``GatewayAPI.resolve``: weights, order, cooldowns, the strategy, and tag routing with the
  ``x-litellm-tags`` header), the label becomes its model id, served with its region,
  credentials and endpoint; retries fail over among the deployments the tags chose. A name
  mixing native and other deployments is served by its native ones among those the tags
  chose, by weight, without failover.
* A model id a wildcard deployment (``model_name: "bedrock/*"``) serves and allows
  (``GatewayAPI.match_wildcard``, tried with the id as sent, then as ``bedrock/{id}``): its
  derived deployments, like an alias's; one the wildcard does not allow is refused (403).
* A raw model id that a native deployment serves uses that deployment (a raw id is then as
  good as its alias, tags included: among the deployments they choose); any other raw id uses the gateway's defaults (the ``bedrock_passthrough``
  section, else botocore's default chain). Raw ids are served only when
  ``general_settings.allow_raw_models`` allows them (by default: when there is no model_list).
* Agent-runtime paths for an agent, and AgentCore paths for a runtime ARN, use a deployment
  calling that agent or runtime when one is configured, else the defaults. An ARN fixes the
  region.

Deployments are found through the routes the core parsed (``GatewayAPI.serving``,
``ModelRoute.resource``), whichever plugin claimed their model strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from outcrop import (
    Deployment,
    DeploymentParams,
    GatewayAPI,
    OperationMatch,
    OutcropError,
    Principal,
    arn_region,
    check_region,
    clip,
    weighted_choice,
)

from . import PREFIX
from .settings import Settings

_SAFE = "-._~"  # what botocore leaves unescaped in a URI label
RUNTIME = "bedrock-runtime"


@dataclass(slots=True)
class Target:
    path: str
    params: DeploymentParams
    deployment: Deployment | None
    region: str
    endpoint: str
    #: What the client named (alias or raw id), for logs; the model id priced.
    model: str
    model_id: str | None
    #: The model_name whose deployments may take over on a retry (an alias served by native
    #: deployments only); ``None``: retries repeat this target.
    group: str | None = None


def _forbidden(message: str) -> OutcropError:
    return OutcropError(message, 403, aws_type="AccessDeniedException")


class Resolver:
    def __init__(self, gateway: GatewayAPI, settings: Settings) -> None:
        self._gateway = gateway
        self._settings = settings
        self._defaults = settings.params
        self._raw_allowed = settings.raw_models_allowed(gateway)
        #: model_names and model_group_alias names (the core routes them).
        self._names = frozenset(gateway.model_names())
        self._model_ids: dict[int, tuple[str, str]] = {}  # index -> (model id, its URI label)
        names: dict[str, list[Deployment]] = {}
        # the routes the core parsed: whichever plugin claimed a deployment's model string, a
        # bedrock-runtime route naming a model id is a native model
        for d in gateway.deployments():
            names.setdefault(d.model_name, []).append(d)
            route = gateway.route(d)
            model_id = route.resource
            if route.service == RUNTIME and model_id:
                self._model_ids[d.index] = (model_id, quote(model_id, safe=_SAFE))
        #: model_name -> its native deployments, and whether it has no other (then any of them
        #: may stand in for another on a retry).
        self._native = {
            name: [d for d in group if d.index in self._model_ids] for name, group in names.items()
        }
        self._all_native = {name: len(self._native[name]) == len(g) for name, g in names.items()}

    def resolve(
        self,
        found: OperationMatch,
        raw_path: str,
        signed_region: str | None,
        tags: Sequence[str] | None = None,
        principal: Principal | None = None,
    ) -> Target:
        """Where a matched request goes; ``tags``: the request's (tag routing); ``principal``:
        the caller (a raw id several names serve goes to one it may call)."""
        op = found.operation
        labels = found.labels
        if op.service == RUNTIME and "modelId" in labels:
            return self._model(found, raw_path, signed_region, tags, principal)
        if op.name == "StartAsyncInvoke" and not self._raw_allowed:
            raise _forbidden(
                "StartAsyncInvoke names its model in the body, which the gateway "
                "forwards unchanged, so it is served only when raw model ids are: "
                "set general_settings.allow_raw_models: true to allow it."
            )
        deployment: Deployment | None = None
        fixed: str | None = None
        if op.service == "bedrock-agent-runtime" and "agentId" in labels:
            deployment = self._first(op.service, unquote(labels["agentId"]))
        elif op.service == "bedrock-agentcore" and "agentRuntimeArn" in labels:
            arn = unquote(labels["agentRuntimeArn"])
            deployment = self._first(op.service, arn)
            fixed = arn_region(arn, "agent runtime ARN")
        if deployment is not None:
            return self._on(deployment, raw_path, op.service, fixed, "", None)
        return self._default(raw_path, op.service, fixed, signed_region, "", None)

    def _first(self, service: str, resource: str) -> Deployment | None:
        """The first deployment calling ``resource`` (an agent, a runtime) on ``service``."""
        served = self._gateway.serving(service, resource)
        return served[0] if served else None

    def _model(
        self,
        found: OperationMatch,
        raw_path: str,
        signed_region: str | None,
        tags: Sequence[str] | None,
        principal: Principal | None,
    ) -> Target:
        raw_label = found.labels["modelId"]
        name = unquote(raw_label)
        aliases = principal.model_aliases if principal is not None else None
        if aliases is not None and name in aliases:  # the caller's own name for a model
            name = aliases[name]
            start, end = found.spans["modelId"]
            raw_label = quote(name, safe=_SAFE)
            raw_path = raw_path[:start] + raw_label + raw_path[end:]
            spans = {**found.spans, "modelId": (start, start + len(raw_label))}
            labels = {**found.labels, "modelId": raw_label}
            found = OperationMatch(found.operation, labels, spans)
        if name in self._names:
            return self._named(name, found, raw_path, tags)
        wildcard = self._wildcard(name)
        if wildcard is not None and not self._gateway.serving(RUNTIME, name):
            _, _, picked = self._gateway.resolve(wildcard, tags=tags)
            assert picked is not None  # a wildcard's model string has deployments
            target = self.on_alias(picked, found, raw_path)
            target.group = wildcard
            return target
        if not self._raw_allowed and wildcard is None:
            raise _forbidden(self._gateway.raw_model_refused(name))
        served = self._gateway.serving(RUNTIME, name)  # a configured deployment wins
        if served:
            # as its model_name would be: among the deployments the tags choose
            reachable = [d for d in served if d in self._gateway.tagged(d.model_name, tags)]
            if not reachable:
                raise self._untagged(name, tags)
            names = list(dict.fromkeys(d.model_name for d in reachable))
            if len(names) > 1 and principal is not None:  # the names the caller may call
                allowed = self._gateway.allowed_models(principal, names, name)
                reachable = [d for d in reachable if d.model_name in allowed] or reachable
            deployment = weighted_choice(reachable)
            return self._on(deployment, raw_path, RUNTIME, arn_region(name), name, name)
        return self._default(raw_path, RUNTIME, arn_region(name), signed_region, name, name)

    def _named(
        self, name: str, found: OperationMatch, raw_path: str, tags: Sequence[str] | None
    ) -> Target:
        """A ``model_name`` or ``model_group_alias``: the deployment the core's router picks
        (among the native ones of a name that mixes them with others)."""
        _, _, picked = self._gateway.resolve(name, tags=tags)
        model_name = picked.model_name if picked is not None else name
        if picked is not None and picked.index in self._model_ids:
            target = self.on_alias(picked, found, raw_path)
            if self._all_native.get(model_name, False):
                target.group = model_name  # every deployment is native: any may serve
            return target
        # the native deployments among those the tags chose (never one they left out)
        native = [d for d in self._gateway.tagged(model_name, tags) if d.index in self._model_ids]
        if native:
            return self.on_alias(weighted_choice(native), found, raw_path)
        if self._native.get(model_name):
            raise self._untagged(name, tags)
        raise OutcropError(
            f"model_name {clip(name)!r} is not a native Bedrock model (its deployments "
            "call no Bedrock model id); call it at /v1/chat/completions",
            400,
            aws_type="ValidationException",
        )

    @staticmethod
    def _untagged(name: str, tags: Sequence[str] | None) -> OutcropError:
        return OutcropError(
            f"no native Bedrock deployment of {clip(name)!r} serves the tags "
            f"{clip(', '.join(tags or ())) or '(none)'} (tag routing; a model_name's other "
            "deployments are served at /v1/chat/completions)",
            400,
            code="no_deployments_with_tag",
            aws_type="ValidationException",
        )

    def _wildcard(self, model_id: str) -> str | None:
        """The model_name under which a wildcard deployment serves ``model_id`` natively."""
        refused: OutcropError | None = None
        for model in (model_id, PREFIX + model_id):
            try:
                if not self._gateway.match_wildcard(model):
                    continue
            except OutcropError as exc:
                refused = exc
                continue
            routes = [self._gateway.route(d) for d in self._gateway.deployments(model)]
            if all(r.service == RUNTIME and r.resource for r in routes):
                return model
        if refused is not None:
            raise _forbidden(refused.message)
        return None

    def on_alias(self, deployment: Deployment, found: OperationMatch, raw_path: str) -> Target:
        """The target of an alias call on ``deployment`` (its model id in the path, its region,
        credentials and endpoint): the first attempt's, and each retry's on another one."""
        known = self._model_ids.get(deployment.index)
        if known is None:  # a wildcard's deployment: its route names the concrete model id
            model_id = self._gateway.route(deployment).resource or ""
            known = (model_id, quote(model_id, safe=_SAFE))
        model_id, label = known
        start, end = found.spans["modelId"]
        path = raw_path[:start] + label + raw_path[end:]
        name = deployment.model_name
        region = self._gateway.route(deployment).region
        return self._on(deployment, path, RUNTIME, region, name, model_id)

    # -- building the target ------------------------------------------------------------------
    def _on(
        self,
        deployment: Deployment,
        path: str,
        service: str,
        fixed: str | None,
        model: str,
        model_id: str | None,
    ) -> Target:
        params = deployment.params
        region = self._gateway.region(params, fixed)
        return Target(
            path,
            params,
            deployment,
            region,
            self._gateway.endpoint(service, region, params),
            model or deployment.model_name,
            model_id,
        )

    def _default(
        self,
        path: str,
        service: str,
        fixed: str | None,
        signed_region: str | None,
        model: str,
        model_id: str | None,
    ) -> Target:
        region = fixed or self._defaults.aws_region_name or self._default_region(signed_region)
        endpoint = self._settings.endpoints.get(service) or self._gateway.endpoint(
            service, region, self._defaults
        )
        return Target(path, self._defaults, None, region, endpoint, model, model_id)

    def _default_region(self, signed_region: str | None) -> str:
        try:
            return self._gateway.region(self._defaults)  # with the section's profile's region
        except OutcropError as exc:
            if exc.code != "missing_region":
                raise
        # the region the SDK client signed for (the core already read AWS_REGION_NAME): client
        # input, so it passes the core's region check before it picks a host
        if signed_region:
            return check_region(signed_region, "the region of the request's SigV4 credential scope")
        raise OutcropError(
            "no AWS region for this call: set bedrock_passthrough.aws_region_name, or "
            "AWS_REGION / AWS_DEFAULT_REGION",
            400,
            aws_type="ValidationException",
        )
