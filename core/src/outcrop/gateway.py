"""The per-worker gateway: config, plugins, AWS settings, upstream client, prices, auth.

Plugins reach the core's services through this object (it is passed to
``outcrop_register_routes`` and ``outcrop_startup``); the HTTP app and the Python API share it.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import os
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import Any

import pluggy

from .access import access_groups, access_names
from .aws import AwsSettings, FrozenCredentials
from .bodies import read_body
from .config import (
    Config,
    Deployment,
    DeploymentParams,
    GeneralSettings,
    RouterSettings,
    is_wildcard,
)
from .config_keys import check_sections, did_you_mean
from .errors import ConfigError, OutcropError, clip
from .gateway_api import GatewayAPI
from .hookcalls import callers, every, first
from .lifecycle import CLIENT_LEFT, CallLifecycle, ErrorAnswer, Receive, Send, current_call
from .limits import WORKERS_ENV, Counters, make_counters
from .logs import get_logger
from .plugins import make_plugin_manager
from .pricing import PriceTable
from .providers import ModelClaims, Provider
from .regions import check_region
from .retry import Attempter, send_routed
from .routing import Router
from .types import (
    MASTER,
    OPEN,
    Admission,
    CallEvent,
    ChatCall,
    ConfigSection,
    ModelPrefix,
    ModelRoute,
    Principal,
)
from .upstream import UpstreamClient, UpstreamRequest, UpstreamResponse
from .wildcards import Wildcards
from .wire import Usage

log = get_logger("outcrop.gateway")


#: LiteLLM callback names and the distribution that implements each (strings only), for the
#: error that names what to install.
KNOWN_CALLBACKS = {
    "prometheus": "outcrop-prometheus",
    "otel": "outcrop-otel",
    "langfuse": "outcrop-otel",
}
#: The settings keys that list LiteLLM callbacks.
CALLBACK_KEYS = ("callbacks", "success_callback", "failure_callback")


class Gateway:
    """Everything one worker needs to serve calls. Build with ``Gateway(config)``, then
    ``await gateway.start()`` inside the event loop, and ``await gateway.stop()`` at the end."""

    def __init__(self, config: Config, pm: pluggy.PluginManager | None = None) -> None:
        self.config = config
        #: Serves the in-process Python API only (no HTTP callers to authenticate).
        self.in_process = False
        self.pm = pm or make_plugin_manager()
        self.hook = self.pm.hook
        settings = config.general_settings
        self.aws = AwsSettings(settings.default_region)
        self.http = UpstreamClient(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.request_timeout or settings.read_timeout,
            max_response_bytes=settings.max_response_bytes,
        )
        self.prices = PriceTable()
        self.hook.outcrop_register_pricing(register=self.prices.register)
        #: Who serves which model strings (longest registered prefix), and their provider hooks.
        self.claims = ModelClaims(self.pm)
        self.model_prefixes: list[ModelPrefix] = self.claims.prefixes
        self.config_sections: dict[str, ConfigSection] = {}
        self.hook.outcrop_register_config_sections(register=self._claim_section)
        #: LiteLLM callback names installed plugins implement (``outcrop_register_callbacks``).
        self.known_callbacks: set[str] = set()
        self.hook.outcrop_register_callbacks(register=self.known_callbacks.add)
        #: The callback names the configuration turns on (``litellm_settings.callbacks``,
        #: ``success_callback``, ``failure_callback``): a plugin checks for its own.
        self._callbacks: frozenset[str] = frozenset(
            name for key in CALLBACK_KEYS for name in getattr(settings, key)
        )
        #: Keep each chat answer's text for ``CallEvent.output_text``: a plugin that records
        #: answers (an operator's opt-in) turns it on at start-up; off, it costs nothing.
        self.capture_output = False
        # Asked per upstream request only when some plugin implements it.
        self._before_upstream = bool(self.hook.outcrop_before_upstream.get_hookimpls())
        #: The deployments with a fixed model; wildcard ones (``model_name: "bedrock/*"``)
        #: serve through ``self.wildcards``.
        self._fixed = [d for d in config.model_list if not is_wildcard(d.model_name)]
        self.router = Router(self._fixed, config.router_settings)
        #: ``model_name`` -> its LiteLLM model access groups (``outcrop.access``).
        self._groups = access_groups(config.model_list)
        self.wildcards = Wildcards(
            [d for d in config.model_list if is_wildcard(d.model_name)],
            len(config.model_list),
            lambda d: self.parse_route(d.params.model, d.params),
            self.router,
        )
        self.workers = max(int(os.environ.get(WORKERS_ENV) or 1), 1)
        #: Calls keep their request and answer bodies for ``outcrop_after_call`` (bounded).
        self.capture_bodies = settings.store_prompts_in_spend_logs
        #: Rate-limit and budget counters: in Redis when one is configured, else in-process.
        self.counters: Counters = make_counters(
            settings.redis_url or os.environ.get("REDIS_URL") or None,
            prefix=settings.redis_key_prefix,
            on_failure=settings.limits_on_redis_failure,
        )
        allow = settings.allow_raw_models
        #: Whether model strings that are not a configured ``model_name`` are served.
        self.allow_raw_models: bool = not config.model_list if allow is None else allow
        self.routes: dict[int, ModelRoute] = {}
        #: (service, resource) -> the deployments calling it, for native surfaces.
        self._serving: dict[tuple[str, str], list[Deployment]] = {}
        #: ``path: why`` for every LiteLLM key accepted and ignored (start-up warns about them).
        self.ignored_settings: list[str] = list(config.ignored)
        self._validate()
        self.master_key = settings.master_key
        #: Whether any client credential is configured: the master key, a plugin section that
        #: configures one (key pairs), or a plugin that recognises callers' credentials
        #: (virtual keys, issued SigV4 pairs). Then every route but the health probes needs one.
        self.requires_auth = (
            bool(self.master_key) or self._section_credentials() or self._plugin_credentials()
        )
        self._started = False
        self._calls: set[CallLifecycle] = set()
        self._cache_hooks()

    # -- configuration ---------------------------------------------------------------------
    def _claim_section(self, section: ConfigSection) -> None:
        self.config_sections[section.name] = section

    def _section_credentials(self) -> bool:
        for section in self.config_sections.values():
            if section.client_credentials is None:
                continue
            try:
                if section.client_credentials(self.config.sections.get(section.name)):
                    return True
            except Exception as exc:  # a malformed section is reported by check_config; fail closed
                log.warning(
                    "client_credentials_check_failed",
                    section=section.name,
                    error=f"{type(exc).__name__}: {exc}",
                )
                return True
        return False

    def _plugin_credentials(self) -> bool:
        return bool(
            self.hook.outcrop_authenticate.get_hookimpls()
            or self.hook.outcrop_sigv4_secret.get_hookimpls()
        )

    def _validate(self) -> None:
        errors, ignored = check_sections(
            self.config.sections,
            self.config_sections,
            GeneralSettings.__struct_fields__,
            RouterSettings.__struct_fields__,
        )
        self.ignored_settings.extend(ignored)
        for d in self.config.model_list:
            key = "litellm_params"
            if is_wildcard(d.model_name):
                errors.extend(self._wildcard_problems(d))
                continue
            try:
                route = self.parse_route(d.params.model, d.params)
            except OutcropError as exc:
                # a plugin's error about one of its own keys names that key's path
                field = exc.param if exc.param and exc.param != "model" else "model"
                errors.append(f"model_list[{d.index}].{key}.{field}: {exc.message}")
                continue
            self.routes[d.index] = route
            if route.resource:
                self._serving.setdefault((route.service, route.resource), []).append(d)
        profiles = (
            d.params.aws_profile_name
            for d in self.config.model_list
            if d.params.aws_profile_name and not d.params.aws_region_name
        )
        errors.extend(self.aws.check_defaults(profiles))
        errors.extend(self._aws_settings_problems())
        if self.config.general_settings.database_url and (
            "general_settings.database_url" not in self.config_sections
        ):
            errors.append(
                "general_settings.database_url: no installed plugin keeps anything in a database, "
                "so it would be ignored (and keys, spend and budgets with it); install "
                "outcrop-keys (plugins/keys) for virtual keys and spend, or remove it"
            )
        errors.extend(self._check_callbacks())
        capped = self.router.capped or any(
            d.params.rpm or d.params.tpm for d in self.config.model_list
        )
        if capped and self.workers > 1 and not self.counters.shared:
            errors.append(
                "model_list: deployments with rpm/tpm caps and --workers > 1 need shared "
                "counters: set general_settings.redis_url (or REDIS_URL), or the caps would "
                "multiply by the number of workers"
            )
        for found in self.hook.outcrop_check_config(config=self.config):
            errors.extend(found or ())
        if errors:
            raise ConfigError(errors)

    def _aws_settings_problems(self) -> list[str]:
        """What would fail every call of a deployment or a section's defaults for want of an
        AWS setting (outcrop.aws ``settings_problems``): said at start-up, not at the first
        call. A wildcard's model string, filled in per call, may name its own region."""
        problems = []
        for d in self.config.model_list:
            route = self.routes.get(d.index)
            problems += self.aws.settings_problems(
                d.params,
                f"model_list[{d.index}].litellm_params",
                region_fixed=route is None or bool(route.region),
                needs_region=True,
                label=f" (model_name {d.model_name!r})",
            )
        for section in self.config_sections.values():
            raw = self.config.sections.get(section.name)
            params = section.aws_params(raw) if section.aws_params and raw is not None else None
            if params is not None:  # a section's callers may sign for a region of their own
                problems += self.aws.settings_problems(
                    params, section.name, region_fixed=False, needs_region=False
                )
        return problems

    def _wildcard_problems(self, d: Deployment) -> list[str]:
        """A wildcard deployment's model must be one an installed plugin may claim once its
        ``*`` is filled in (its routes are parsed per concrete model string)."""
        literal = d.params.model.split("*", 1)[0]
        if not literal or any(
            literal.startswith(prefix) or prefix.startswith(literal)
            for prefix, _ in self.claims.owners()
        ):
            return []
        return [f"model_list[{d.index}].litellm_params.model: {self.unclaimed_message(literal)}"]

    def _check_callbacks(self) -> list[str]:
        errors = []
        settings = self.config.general_settings
        for key in CALLBACK_KEYS:
            for name in getattr(settings, key):
                if name in self.known_callbacks:
                    continue
                dist = KNOWN_CALLBACKS.get(name)
                hint = (
                    f"`pip install {dist}` implements it"
                    if dist
                    else "installed plugins implement: "
                    + (", ".join(sorted(self.known_callbacks)) or "none")
                    + did_you_mean(name, [*self.known_callbacks, *KNOWN_CALLBACKS])
                )
                errors.append(
                    f"litellm_settings.{key}: no installed plugin implements callback "
                    f"{clip(name)!r}; {hint}"
                )
        return errors

    def parse_route(self, model: str, params: DeploymentParams | None = None) -> ModelRoute:
        """The route of a model string, from the plugin that registered the longest prefix it
        starts with; a clear error when no plugin claims it."""
        owner = self.claims.owner(model)
        if owner is None:
            raise OutcropError(
                self.unclaimed_message(model), 400, code="model_not_found", param="model"
            )
        prefix, provider = owner
        route: ModelRoute | None = None
        if provider.parse_route is not None:
            params = params or DeploymentParams(model=model)
            route = provider.parse_route(model=model, params=params)
        if route is None:
            raise OutcropError(
                f"model {clip(model)!r} starts with {prefix!r}, registered by plugin "
                f"{provider.name!r}, which does not serve it",
                400,
                code="model_not_found",
                param="model",
            )
        route.plugin = provider.name
        return route

    def provider(self, route: ModelRoute) -> Provider:
        """The provider hooks of the plugin that claimed ``route``."""
        return self.claims.providers[route.plugin]

    def unclaimed_message(self, model: str) -> str:
        msg = f"no installed plugin claims model {clip(model)!r}"
        if self.router.names():  # the names this key may call are at GET /v1/models
            msg += " and it is not a configured model_name (GET /v1/models lists them)"
        served = ", ".join(
            f"{p.prefix}... ({p.distribution or 'plugin ' + name})"
            for name, provider in sorted(self.claims.providers.items())
            for p in provider.prefixes
        )
        if not served:
            return msg + "; no provider plugin is installed (docs/providers/ lists them)"
        return msg + f"; installed plugins serve: {served}"

    # -- settings, for plugins (``GatewayAPI``) -----------------------------------------------
    @property
    def settings(self) -> GeneralSettings:
        return self.config.general_settings

    @property
    def sections(self) -> Mapping[str, Any]:
        return self.config.sections

    @property
    def config_source(self) -> str | None:
        return self.config.source

    @property
    def has_master_key(self) -> bool:
        return bool(self.master_key)

    def derived_secret(self, purpose: bytes) -> bytes | None:
        if not self.master_key:
            return None
        return hmac.new(self.master_key.encode(), purpose, "sha256").digest()

    def cooling(self, deployment: Deployment) -> bool:
        return self.router.cooling(deployment)

    @property
    def issues_sigv4_keys(self) -> bool:
        return bool(self.hook.outcrop_sigv4_secret.get_hookimpls())

    def sigv4_secret(self, access_key_id: str) -> tuple[str, Principal] | None:
        return self.hook.outcrop_sigv4_secret(access_key_id=access_key_id)  # type: ignore[no-any-return]

    def region(self, params: DeploymentParams | None, route_region: str | None = None) -> str:
        return self.aws.region(params, route_region)

    def endpoint(self, service: str, region: str, params: DeploymentParams | None) -> str:
        return self.aws.endpoint(service, region, params)

    def cost(
        self, usage: Usage | None, model: str | None, params: DeploymentParams | None = None
    ) -> float | None:
        return self.prices.cost(usage, model, params)

    def register_plugin(self, plugin: object, name: str) -> None:
        self.pm.register(plugin, name=name)
        self._cache_hooks()

    def get_plugin(self, name: str) -> Any:
        return self.pm.get_plugin(name)

    # -- deployments, for plugins ----------------------------------------------------------------
    def model_names(self) -> list[str]:
        return self.router.names()

    def deployments(self, model_name: str | None = None) -> list[Deployment]:
        """The configured deployments of ``model_name`` (all of them when ``None``)."""
        if model_name is None:
            return list(self._fixed)
        return self.router.candidates(model_name)

    def route(self, deployment: Deployment) -> ModelRoute:
        """The route the core parsed for ``deployment`` (at start-up, or for a wildcard's
        concrete model string when it was first called)."""
        found = self.routes.get(deployment.index) or self.wildcards.routes.get(deployment.index)
        if found is None:  # a wildcard group dropped from the cache while its call ran
            found = self.parse_route(deployment.params.model, deployment.params)
        return found

    def match_wildcard(self, model: str) -> bool:
        """Whether a wildcard deployment serves ``model`` (then ``pick(model)`` and
        ``deployments(model)`` give its deployments); raises ``OutcropError`` (400) when a
        wildcard pattern matches but its ``allowed_models`` do not allow the model."""
        return bool(self.wildcards) and self.wildcards.match(model)

    def serving(self, service: str, resource: str) -> list[Deployment]:
        """The deployments whose route calls ``resource`` (``ModelRoute.resource``: a model id
        or ARN, an agent id, a runtime ARN) on AWS ``service``: how a native surface finds the
        deployment, region and credentials for a resource its caller named."""
        return self._serving.get((service, resource), [])

    def pick(self, model_name: str) -> Deployment | None:
        """One deployment of ``model_name``, chosen by the gateway's routing (weights)."""
        return self.router.pick(model_name)

    def tagged(self, model_name: str, tags: Sequence[str] | None) -> list[Deployment]:
        """The deployments of ``model_name`` a request with ``tags`` may reach: those tag
        routing chooses, all of them when it does not choose among this name's."""
        group = self.router.candidates(model_name)
        return self.router.tagged(group, tags) if self.router.tag_routed(model_name) else group

    def resolve(
        self,
        model: str,
        params: DeploymentParams | None = None,
        tags: Sequence[str] | None = None,
    ) -> tuple[ModelRoute, DeploymentParams, Deployment | None]:
        """Model name or raw model string -> (route, deployment params, deployment or None).
        ``tags``: the request's, for tag routing."""
        router = self.router
        deployment = router.pick(model, tags=tags)
        wildcard = deployment is None and self.wildcards and not router.candidates(model)
        if wildcard and self.wildcards.match(model):
            deployment = router.pick(model, tags=tags)
        if deployment is None and router.tag_routed(model) and router.candidates(model):
            raise OutcropError(
                f"no deployment of model {clip(model)!r} serves the tags "
                f"{clip(', '.join(tags or ())) or '(none)'} (tag routing: a deployment's "
                "`tags` or `tag_regex` match them, else one tagged `default` serves)",
                400,
                code="no_deployments_with_tag",
                param="tags",
            )
        if deployment is not None:
            route = self.routes.get(deployment.index) or self.route(deployment)
            return route, deployment.params, deployment
        if not self.allow_raw_models:
            raise OutcropError(
                self.raw_model_refused(model), 400, code="model_not_found", param="model"
            )
        params = params or DeploymentParams(model=model)
        return self.parse_route(model, params), params, None

    @staticmethod
    def raw_model_refused(model: str) -> str:
        """Why a raw model string is refused, and how to allow it (shared by every surface)."""
        return (
            f"model {clip(model)!r} is not a configured model_name, and this gateway serves only "
            "the model_name values of its model_list; set general_settings.allow_raw_models: true "
            "to also serve raw model strings with the gateway's credentials"
        )

    # -- auth ----------------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Who is calling: the master key (``Authorization: Bearer`` or ``x-api-key``, compared
        in constant time), else the ``Principal`` a plugin names (``outcrop_authenticate``).

        ``OPEN`` when no client credential is configured at all (``requires_auth`` is false:
        every caller is accepted); 401 otherwise.
        """
        if not self.requires_auth:
            return OPEN
        presented = headers.get("x-api-key")
        auth = headers.get("authorization")
        if auth and auth[:7].lower() == "bearer ":
            presented = auth[7:].strip()
        if presented:
            if self.master_key and hmac.compare_digest(
                presented.encode(), self.master_key.encode()
            ):
                return MASTER
            principal = first(self._authenticate, self.hook.outcrop_authenticate, token=presented)
            if principal is not None:
                return principal  # type: ignore[no-any-return]  # untyped hook result
        raise OutcropError(
            "invalid or missing API key: send `Authorization: Bearer <key>` or `x-api-key`",
            401,
            code="invalid_api_key",
        )

    async def admit(self, admission: Admission) -> None:
        """Ask every ``outcrop_admit`` implementation; the first refusal (``OutcropError``)
        propagates. Called once per HTTP call before any upstream byte is sent."""
        for result in every(self._admit, self.hook.outcrop_admit, admission=admission):
            if inspect.isawaitable(result):
                await result

    @property
    def admits(self) -> bool:
        """Whether any plugin implements ``outcrop_admit`` (else calls skip admission)."""
        return self._admit is None or bool(self._admit)

    def _cache_hooks(self) -> None:
        """Resolve the per-request hooks' implementations (see ``outcrop.hookcalls``)."""
        self._authenticate = callers(self.pm, "outcrop_authenticate")
        self._admit = callers(self.pm, "outcrop_admit")
        self._sign = callers(self.pm, "outcrop_sign_request")
        self._after_call = callers(self.pm, "outcrop_after_call")
        self._before_upstream = bool(self.hook.outcrop_before_upstream.get_hookimpls())

    def access_names(self, requested: str, *resolved: str | None) -> tuple[str, ...]:
        router = self.router
        target = router.alias_target(requested)
        return access_names(requested, (*resolved, target), router.configured, self._groups)

    def allowed_models(
        self, principal: Principal, models: list[str], requested: str | None = None
    ) -> list[str]:
        """``models`` filtered by every ``outcrop_allowed_models`` answer."""
        kept = models
        answers = self.hook.outcrop_allowed_models(
            principal=principal, models=models, requested=requested
        )
        for answer in answers:
            if answer is not None:
                allowed = set(answer)
                kept = [m for m in kept if m in allowed]
        return kept

    # -- upstream --------------------------------------------------------------------------
    async def credentials(self, params: DeploymentParams) -> FrozenCredentials:
        return await self.aws.credentials(params)

    async def send(
        self, request: UpstreamRequest, params: DeploymentParams, call: ChatCall | None = None
    ) -> UpstreamResponse:
        """Sign ``request`` with ``params``' credentials (via ``outcrop_sign_request``) and send it."""
        # The region is part of the SigV4 scope: whatever built the request, it must be one.
        check_region(request.region, "the signing region")
        if self._before_upstream:
            self._announce(request)
        creds = await self.aws.credentials(params)
        signed = first(
            self._sign,
            self.hook.outcrop_sign_request,
            request=request,
            credentials=creds,
            call=call,
        )
        return await self.http.send(signed or request)

    async def send_routed(
        self,
        attempt: Attempter,
        *,
        model_name: str | None,
        deployment: Deployment | None,
        life: CallLifecycle | None = None,
        fallbacks: bool = True,
        track: bool = True,
        tags: Sequence[str] | None = None,
    ) -> tuple[UpstreamResponse, Deployment | None]:
        """Run ``attempt`` (build, sign with ``send``, send one upstream request for a
        deployment) with the router's retries, failover and fallbacks (docs/routing.md).

        ``deployment`` was picked from ``model_name`` (both ``None`` for a raw model string:
        retries then repeat the same target). Returns the answer that ends the call (success
        or the last failure) and the deployment that gave it; only a gateway-side failure of
        the last attempt (timeout, unreachable) raises. Never retried: other 4xx answers.
        """
        return await send_routed(
            self,
            attempt,
            model_name=model_name,
            deployment=deployment,
            life=life,
            fallbacks=fallbacks,
            track=track,
            tags=tags,
        )

    def _announce(self, request: UpstreamRequest) -> None:
        """``outcrop_before_upstream`` for ``request`` of the running call; an observer's
        failure never stops the request."""
        life = current_call.get()
        try:
            self.hook.outcrop_before_upstream(
                request=request,
                request_id=life.request_id if life is not None else "",
                request_headers=life.request_headers if life is not None else (),
            )
        except Exception as exc:
            log.error("before_upstream_hook_failed", error=f"{type(exc).__name__}: {exc}")

    # -- calls ---------------------------------------------------------------------------------
    def http_call(
        self,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        *,
        surface: str,
        answer: ErrorAnswer | None = None,
    ) -> CallLifecycle:
        """The lifecycle of one HTTP call (use it as ``async with``): timing, the error answer
        in the caller's dialect (``answer``; OpenAI JSON by default), the disconnect watcher
        (``life.watch()`` once the body is read), and exactly one ``outcrop_after_call``."""
        state = scope.get("state") or {}
        life = CallLifecycle(
            self,
            surface,
            scope.get("path", ""),
            request_id=state.get("request_id"),
            started=state.get("started"),
            receive=receive,
            send=send,
            answer=answer,
            left=(scope.get("extensions") or {}).get(CLIENT_LEFT),
        )
        client = scope.get("client")
        life.client_ip = client[0] if client else None
        life.request_headers = scope.get("headers", ())
        for name, value in life.request_headers:
            if name == b"user-agent":
                life.user_agent = value.decode("latin-1")
                break
        return life

    async def read_body(
        self, receive: Receive, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> bytes:
        """A request body within ``max_request_bytes`` (413) and ``body_timeout`` (408);
        ``headers`` (the ASGI scope's) let an oversized ``Content-Length`` fail at once."""
        settings = self.config.general_settings
        return await read_body(
            receive,
            limit=settings.max_request_bytes,
            timeout=settings.body_timeout,
            headers=headers,
        )

    @property
    def callbacks(self) -> frozenset[str]:
        return self._callbacks

    @property
    def in_flight(self) -> int:
        """Calls this worker is serving right now (for metrics: sample it, never per call)."""
        return len(self._calls)

    def gauges(self) -> dict[str, tuple[str, float]]:
        """Plugins' current levels, ``name -> (description, value)`` (``outcrop_report_gauges``),
        for metrics exporters to sample at scrape time."""
        found: dict[str, tuple[str, float]] = {}

        def report(name: str, description: str, value: float) -> None:
            found[name] = (description, float(value))

        try:
            self.hook.outcrop_report_gauges(report=report)
        except Exception as exc:
            log.error("report_gauges_hook_failed", error=f"{type(exc).__name__}: {exc}")
        return found

    def track(self, call: CallLifecycle) -> None:
        self._calls.add(call)

    def forget(self, call: CallLifecycle) -> None:
        self._calls.discard(call)

    async def _cut_calls(self) -> None:
        """Calls still running when the gateway stops end now, each with one 503 event."""
        calls = list(self._calls)
        me = asyncio.current_task()
        tasks = {t for c in calls if (t := c.running_task) is not None and t is not me}
        for call in calls:
            call.cut()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    def after_call(self, event: CallEvent) -> None:
        """Emit ``outcrop_after_call``; a failing observer never breaks the call."""
        try:
            every(self._after_call, self.hook.outcrop_after_call, event=event)
        except Exception as exc:
            log.error("after_call_hook_failed", error=f"{type(exc).__name__}: {exc}")

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await self.counters.start()
        await self.aws.start([d.params for d in self.config.model_list])
        for d in self._fixed:  # warm endpoint lookups (they read the AWS config file)
            route = self.routes[d.index]
            try:
                self.aws.endpoint(route.service, self.aws.region(d.params, route.region), d.params)
            except OutcropError as exc:
                log.warning("deployment_without_region", deployment=d.id, error=exc.message)
        for line in self.ignored_settings:
            log.warning("setting_ignored", setting=line)
        if not self.requires_auth and not self.in_process:
            log.warning(
                "no_client_authentication",
                message=(
                    "no client credential is configured (general_settings.master_key, "
                    "OUTCROP_MASTER_KEY, LITELLM_MASTER_KEY, or a plugin's keys): EVERY caller is "
                    "accepted; "
                    + (
                        "general_settings.allow_unauthenticated is true, so any address may be served"
                        if self.config.general_settings.allow_unauthenticated
                        else "only loopback callers are served"
                    )
                ),
            )
        elif self.config.general_settings.allow_unauthenticated:
            log.warning(
                "allow_unauthenticated_unused",
                message=(
                    "general_settings.allow_unauthenticated is true but a client credential is "
                    "configured: every route still requires one"
                ),
            )
        self._cache_hooks()  # plugins registered on this gateway since it was built
        self.hook.outcrop_startup(gateway=self)
        # plugins may have registered per-gateway objects since __init__ (routes, startup)
        self._before_upstream = bool(self.hook.outcrop_before_upstream.get_hookimpls())
        self._cache_hooks()

    async def stop(self) -> None:
        await self._cut_calls()  # before the plugins stop: their events still count
        if self._started:
            await self._shutdown_plugins()
        await self.counters.close()
        await self.aws.stop()
        await self.http.close()
        self._started = False

    async def _shutdown_plugins(self) -> None:
        # one plugin's failed flush must not stop the others, nor the gateway
        try:
            results = self.hook.outcrop_shutdown(gateway=self)
        except Exception as exc:
            log.error("shutdown_hook_failed", error=f"{type(exc).__name__}: {exc}")
            return
        for result in results:
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception as exc:
                    log.error("shutdown_hook_failed", error=f"{type(exc).__name__}: {exc}")


def _implements_gateway_api(gateway: Gateway) -> GatewayAPI:
    return gateway  # mypy checks here that Gateway is a GatewayAPI
