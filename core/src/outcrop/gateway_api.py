"""``GatewayAPI``: what a plugin may call on the gateway it is given.

The hooks that hand a plugin the gateway (``outcrop_register_routes``, ``outcrop_startup``,
``outcrop_shutdown``) type it as this protocol; ``outcrop.Gateway`` implements it. Anything else
on the gateway object is the core's own and may change without notice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .aws import FrozenCredentials
    from .config import Deployment, DeploymentParams, GeneralSettings
    from .lifecycle import CallLifecycle, ErrorAnswer, Receive, Send
    from .limits import Counters
    from .retry import Attempter
    from .types import Admission, CallEvent, ChatCall, ModelRoute, Principal
    from .upstream import UpstreamRequest, UpstreamResponse
    from .wire import Usage


class GatewayAPI(Protocol):
    """The gateway's services for plugins: callers, deployments, AWS, upstream calls, costs."""

    # -- settings ----------------------------------------------------------------------------------
    @property
    def settings(self) -> GeneralSettings:
        """``general_settings`` as the core decoded them (timeouts, limits, flags)."""

    @property
    def sections(self) -> Mapping[str, Any]:
        """The config-file parts plugins claimed (``outcrop_register_config_sections``), by
        name, as written in the file."""

    @property
    def config_source(self) -> str | None:
        """The path of the config file the gateway was loaded from (``None``: no file)."""

    @property
    def has_master_key(self) -> bool:
        """Whether a master key is configured."""

    @property
    def requires_auth(self) -> bool:
        """Whether every route needs a client credential (false: an open, loopback-only
        gateway)."""

    @property
    def allow_raw_models(self) -> bool:
        """Whether model strings that are not a configured ``model_name`` are served."""

    def derived_secret(self, purpose: bytes) -> bytes | None:
        """A secret for ``purpose`` derived from the master key (HMAC-SHA256), ``None`` without
        one: for signing cookies or tokens every worker accepts and a new master key revokes."""

    def raw_model_refused(self, model: str) -> str:
        """Why a raw model string is refused, and how to allow it (one wording on every
        surface)."""

    # -- callers -----------------------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """Who presents these headers (master key, or ``outcrop_authenticate``); 401 otherwise."""

    def sigv4_secret(self, access_key_id: str) -> tuple[str, Principal] | None:
        """The secret and ``Principal`` of a SigV4 key pair a plugin issued
        (``outcrop_sigv4_secret``), or ``None``."""

    @property
    def issues_sigv4_keys(self) -> bool:
        """Whether any plugin issues SigV4 key pairs (implements ``outcrop_sigv4_secret``)."""

    async def admit(self, admission: Admission) -> None:
        """Ask ``outcrop_admit``; the first refusal (``OutcropError``) propagates."""

    def access_names(self, requested: str, *resolved: str | None) -> tuple[str, ...]:
        """The names a key's ``models`` list is matched against (``outcrop.model_allowed``) for
        a call of ``requested`` (the name the caller sent) served by the ``model_name`` values
        ``resolved``: those, a ``model_group_alias``'s target, and a raw Bedrock id also with
        its ``bedrock/`` prefix. One rule for every surface (docs/keys.md)."""

    def allowed_models(
        self, principal: Principal, models: list[str], requested: str | None = None
    ) -> list[str]:
        """The names of ``models`` ``principal`` may call (``outcrop_allowed_models``): each as
        if sent when ``requested`` is ``None``; else as the ``model_name`` serving a call of
        ``requested`` (to choose among the names serving it, never one the key may not use)."""

    # -- deployments -------------------------------------------------------------------------------
    def model_names(self) -> list[str]:
        """Every configured ``model_name``."""

    def deployments(self, model_name: str | None = None) -> list[Deployment]:
        """The configured deployments of ``model_name`` (all of them when ``None``: those with
        a fixed model; wildcard deployments serve through ``match_wildcard``)."""

    def match_wildcard(self, model: str) -> bool:
        """Whether a wildcard deployment (``model_name: "bedrock/*"``) serves the model string
        ``model``: then ``pick(model)``, ``deployments(model)`` and ``route`` give its
        deployments, each with the concrete model id. Raises ``OutcropError`` (400) when a
        wildcard matches but its ``model_info.allowed_models`` do not allow ``model``."""

    def route(self, deployment: Deployment) -> ModelRoute:
        """The route the core parsed for ``deployment`` at start-up."""

    def serving(self, service: str, resource: str) -> list[Deployment]:
        """The deployments whose route calls ``resource`` (``ModelRoute.resource``) on AWS
        ``service``."""

    def pick(self, model_name: str) -> Deployment | None:
        """One deployment of ``model_name``, chosen by the gateway's routing."""

    def tagged(self, model_name: str, tags: Sequence[str] | None) -> list[Deployment]:
        """The deployments of ``model_name`` a request with ``tags`` (``outcrop.request_tags``)
        may reach: those tag routing chooses, all of them when it does not choose among this
        name's. A surface that serves only some of a name's deployments picks among these,
        never among all of them (the tags would be bypassed)."""

    def resolve(
        self,
        model: str,
        params: DeploymentParams | None = None,
        tags: Sequence[str] | None = None,
    ) -> tuple[ModelRoute, DeploymentParams, Deployment | None]:
        """Route a caller's model string as ``/v1/chat/completions`` and ``/v1/embeddings`` do
        (docs/routing.md): a ``model_name`` or ``model_group_alias`` -> one of its deployments,
        picked by the router (order, cooldowns, strategy, and tag routing with ``tags``, the
        request's, from ``outcrop.request_tags``); a model string a wildcard deployment serves
        -> one of its derived deployments; else, with ``allow_raw_models``, the raw model
        string on ``params`` (the gateway's defaults when ``None``) and no deployment.
        Returns ``(route, deployment params, deployment or None)``; pass the deployment's
        ``model_name`` and the same ``tags`` to ``send_routed`` for its retries and failover.
        Raises ``OutcropError`` (400): a name refused (``model_not_found``), no deployment
        serving the tags (``no_deployments_with_tag``), a wildcard's allow-list refusing it."""

    def cooling(self, deployment: Deployment) -> bool:
        """Whether the router is cooling ``deployment`` down after failures right now."""

    # -- limits ------------------------------------------------------------------------------------
    @property
    def counters(self) -> Counters:
        """The rate-limit and budget counters (``admit`` limits in one atomic step, ``finish``
        when the call ends): in this process, or shared through Redis when one is configured
        (``counters.shared``)."""

    @property
    def workers(self) -> int:
        """How many worker processes serve this gateway (``outcrop serve --workers N``)."""

    # -- AWS ---------------------------------------------------------------------------------------
    def region(self, params: DeploymentParams | None, route_region: str | None = None) -> str:
        """The region of a call: the deployment's ``aws_region_name``, then ``route_region``
        (what the model string or an ARN fixes), then the AWS defaults; an error when none."""

    def endpoint(self, service: str, region: str, params: DeploymentParams | None) -> str:
        """The base URL of AWS ``service`` in ``region`` (honours ``api_base`` and
        ``AWS_ENDPOINT_URL_*``)."""

    async def credentials(self, params: DeploymentParams) -> FrozenCredentials:
        """The AWS credentials of a deployment (cached, refreshed in the background)."""

    async def send(
        self, request: UpstreamRequest, params: DeploymentParams, call: ChatCall | None = None
    ) -> UpstreamResponse:
        """Sign ``request`` (``outcrop_sign_request``) with ``params``' credentials and send it on
        the pooled client."""

    async def send_routed(
        self,
        attempt: Attempter,
        *,
        model_name: str | None,
        deployment: Deployment | None,
        life: CallLifecycle | None = None,
        fallbacks: bool = True,
        tags: Sequence[str] | None = None,
    ) -> tuple[UpstreamResponse, Deployment | None]:
        """Run ``attempt`` (build and ``send`` one upstream request for a deployment) with the
        router's retries, failover and fallbacks; the answer that ends the call and the
        deployment that gave it. ``tags`` (the request's) keep every retry's deployment among
        those tag routing chose for the first attempt."""

    def cost(
        self, usage: Usage | None, model: str | None, params: DeploymentParams | None = None
    ) -> float | None:
        """USD for ``usage`` of ``model`` (the deployment's prices first), ``None`` if unknown."""

    # -- calls -------------------------------------------------------------------------------------
    def http_call(
        self,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        *,
        surface: str,
        answer: ErrorAnswer | None = None,
    ) -> CallLifecycle:
        """The lifecycle of one HTTP call (``async with``): timing, the error answer in the
        caller's dialect, the disconnect watcher, and exactly one ``outcrop_after_call``."""

    async def read_body(
        self, receive: Receive, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> bytes:
        """A request body within ``max_request_bytes`` (413) and ``body_timeout`` (408)."""

    def after_call(self, event: CallEvent) -> None:
        """Emit ``outcrop_after_call`` for a call that does not run in ``http_call``."""

    # -- observers (metrics, traces) ---------------------------------------------------------------
    @property
    def callbacks(self) -> frozenset[str]:
        """The LiteLLM callback names the configuration turns on (``litellm_settings.callbacks``,
        ``success_callback``, ``failure_callback``); each is claimed by an installed plugin
        (``outcrop_register_callbacks``)."""

    @property
    def in_flight(self) -> int:
        """Calls this worker is serving right now (sample it, never per call)."""

    def gauges(self) -> dict[str, tuple[str, float]]:
        """Every plugin's current levels (``outcrop_report_gauges``), ``name -> (description,
        value)``, for metrics exporters to sample."""

    @property
    def capture_output(self) -> bool:
        """Whether each chat answer's text is kept for ``CallEvent.output_text``. Set it to True
        at start-up only for an operator who opted in to record answers; off, it costs
        nothing."""

    @capture_output.setter
    def capture_output(self, on: bool) -> None: ...

    # -- plugins -----------------------------------------------------------------------------------
    def register_plugin(self, plugin: object, name: str) -> None:
        """Register an object's hooks on this gateway only (a per-gateway service)."""

    def get_plugin(self, name: str) -> Any:
        """The plugin registered under ``name`` (``None`` if there is none)."""
