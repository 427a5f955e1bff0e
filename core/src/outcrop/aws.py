"""AWS settings per deployment: credentials, region and endpoint, resolved as botocore does.

Credentials come from botocore's chain (static keys, profile, assume-role, web identity, env,
SSO, IMDS...). They are resolved once, off the event loop, and refreshed in the background
before expiry; the request path only reads a frozen snapshot.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import botocore.session
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    AssumeRoleWithWebIdentityCredentialFetcher,
    Credentials,
    DeferredRefreshableCredentials,
    ReadOnlyCredentials,
)

from .config import DeploymentParams
from .errors import OutcropError
from .logs import get_logger
from .regions import check_region, is_region, region_problem

log = get_logger("outcrop.aws")

_DNS_SUFFIX = (("cn-", "amazonaws.com.cn"), ("eusc-", "amazonaws.eu"))
_REFRESH_EVERY_S = 60.0
#: Endpoint URLs kept per worker: regions in request paths are client input, so the cache is
#: bounded (the oldest entry goes first) rather than growing with every region-shaped string.
MAX_CACHED_ENDPOINTS = 512


def dns_suffix(region: str) -> str:
    for prefix, suffix in _DNS_SUFFIX:
        if region.startswith(prefix):
            return suffix
    return "amazonaws.com"


class CredentialSource:
    """One botocore credential provider and its latest frozen snapshot."""

    def __init__(self, params: DeploymentParams, session: botocore.session.Session) -> None:
        self._params = params
        self._session = session
        self._credentials: Any = None
        self._frozen: ReadOnlyCredentials | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def _build(self) -> Any:
        p = self._params
        base: Any
        if p.aws_access_key_id and p.aws_secret_access_key:
            base = Credentials(p.aws_access_key_id, p.aws_secret_access_key, p.aws_session_token)
        elif p.aws_profile_name:
            base = botocore.session.Session(profile=p.aws_profile_name).get_credentials()
        else:
            base = (
                None
                if (p.aws_role_name and p.aws_web_identity_token)
                else self._session.get_credentials()
            )
        if not p.aws_role_name:
            return base
        client_session = self._session
        region = p.aws_region_name or default_region(self._session)

        def client_creator(service: str, **kwargs: Any) -> Any:
            kwargs.setdefault("region_name", region)
            if p.aws_sts_endpoint:
                kwargs.setdefault("endpoint_url", p.aws_sts_endpoint)
            return client_session.create_client(service, **kwargs)

        session_name = p.aws_session_name or "outcrop"
        if p.aws_web_identity_token:
            token = p.aws_web_identity_token

            def load_token() -> str:
                if os.path.isfile(token):
                    with open(token) as f:
                        return f.read().strip()
                return token

            fetcher: Any = AssumeRoleWithWebIdentityCredentialFetcher(
                client_creator,
                load_token,
                p.aws_role_name,
                extra_args={"RoleSessionName": session_name},
            )
            method = "assume-role-with-web-identity"
        else:
            if base is None:
                raise OutcropError("no base AWS credentials found to assume the role with", 500)
            extra: dict[str, Any] = {"RoleSessionName": session_name}
            if p.aws_external_id:
                extra["ExternalId"] = p.aws_external_id
            fetcher = AssumeRoleCredentialFetcher(
                client_creator, base, p.aws_role_name, extra_args=extra
            )
            method = "assume-role"
        return DeferredRefreshableCredentials(
            refresh_using=fetcher.fetch_credentials, method=method
        )

    def resolve(self) -> None:
        """Blocking: build the provider and take a snapshot. Run it in a thread."""
        with self._lock:
            try:
                if self._credentials is None:
                    self._credentials = self._build()
                self._frozen = (
                    self._credentials.get_frozen_credentials() if self._credentials else None
                )
                self.error = None if self._frozen else "no AWS credentials found"
            except Exception as exc:  # botocore raises many types; keep the worker alive
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("aws_credentials_unavailable", error=self.error)

    def needs_refresh(self) -> bool:
        creds = self._credentials
        if creds is None:
            return self._frozen is None
        refresh_needed = getattr(creds, "refresh_needed", None)
        return bool(refresh_needed and refresh_needed())

    def frozen(self) -> ReadOnlyCredentials:
        """The current snapshot; raises a clear error when there is none."""
        if self._frozen is None:
            # botocore's text (profile names, role ARNs, account ids, STS answers) goes to
            # the log only; the caller learns that the gateway, not its request, is at fault.
            raise OutcropError(
                "AWS credentials are not available for this deployment "
                "(the gateway's log says why)",
                500,
                code="aws_credentials_unavailable",
            )
        return self._frozen


class AwsSettings:
    """Credential sources, regions and endpoints for every deployment of one gateway."""

    def __init__(self, default_region_name: str | None = None) -> None:
        self.session = botocore.session.Session()
        self._sources: dict[tuple[Any, ...], CredentialSource] = {}
        self._endpoints: dict[tuple[str, str, str | None], str] = {}
        self._default_region = default_region_name
        self._task: asyncio.Task[None] | None = None

    # -- credentials ---------------------------------------------------------------------
    def source(self, params: DeploymentParams) -> CredentialSource:
        key = params.credential_key()
        src = self._sources.get(key)
        if src is None:
            src = self._sources[key] = CredentialSource(params, self.session)
        return src

    async def credentials(self, params: DeploymentParams) -> ReadOnlyCredentials:
        """The snapshot for ``params``; resolves it off-loop the first time only."""
        src = self.source(params)
        if src._frozen is None and src._credentials is None:
            await asyncio.to_thread(src.resolve)
        return src.frozen()

    async def start(self, params: list[DeploymentParams]) -> None:
        """Resolve every deployment's credentials concurrently, then refresh in the background."""
        sources = {id(s): s for s in (self.source(p) for p in params)}
        await asyncio.gather(*(asyncio.to_thread(s.resolve) for s in sources.values()))
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(_REFRESH_EVERY_S)
            for src in list(self._sources.values()):
                if src.needs_refresh():
                    await asyncio.to_thread(src.resolve)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            self._task = None

    # -- region and endpoint -------------------------------------------------------------
    def region(self, params: DeploymentParams | None, route_region: str | None = None) -> str:
        """Deployment setting, then the region the model string fixes, then the AWS defaults.

        Every source is checked (``outcrop.regions``): a value that is not a region is a 400 when
        it came with the call and a 500 when it came from the gateway's own settings.
        """
        if params and params.aws_region_name:
            return check_region(params.aws_region_name, "aws_region_name", param="model")
        if route_region:
            return check_region(route_region, "the region in the model string", param="model")
        found = self.default_region_source()
        if found is None:
            raise OutcropError(
                "no AWS region: set aws_region_name on the deployment, or AWS_REGION / AWS_DEFAULT_REGION",
                400,
                code="missing_region",
            )
        region, source = found
        return check_region(region, source, 500)

    def default_region_source(self) -> tuple[str, str] | None:
        """The region used when neither deployment nor model string fixes one, and where it was
        found: ``general_settings.default_region``, then the AWS defaults."""
        if self._default_region:
            return self._default_region, "general_settings.default_region"
        return default_region_source(self.session)

    def check_defaults(self) -> list[str]:
        """Config errors for a default region (settings, environment, profile) that is not one."""
        found = self.default_region_source()
        if found is None or is_region(found[0]):
            return []
        return [region_problem(found[0], found[1])]

    def endpoint(self, service: str, region: str, params: DeploymentParams | None) -> str:
        """Base URL (no trailing slash) for ``service`` in ``region``.

        Order: the deployment's ``api_base``; ``AWS_ENDPOINT_URL_<SERVICE>``;
        ``AWS_ENDPOINT_URL``; the shared config file's services section; the AWS default host.
        """
        # Callers pass regions from ``region()``; refusing here too keeps any other path from
        # formatting a non-region into a host name.
        check_region(region, "region")
        if params and params.api_base:
            return params.api_base.rstrip("/")
        profile = params.aws_profile_name if params else None
        key = (service, region, profile)
        url = self._endpoints.get(key)
        if url is None:
            url = self._configured_endpoint(service, profile) or (
                f"https://{service}.{region}.{dns_suffix(region)}"
            )
            if len(self._endpoints) >= MAX_CACHED_ENDPOINTS:
                del self._endpoints[next(iter(self._endpoints))]
            self._endpoints[key] = url = url.rstrip("/")
        return url

    def _configured_endpoint(self, service: str, profile: str | None) -> str | None:
        if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
            return None
        session = botocore.session.Session(profile=profile) if profile else self.session
        try:
            scoped = session.get_scoped_config()
        except Exception:  # a missing profile: no configured endpoint
            scoped = {}
        provider = ConfiguredEndpointProvider(
            full_config=session.full_config, scoped_config=scoped, client_name=service
        )
        value = provider.provide()
        return value if isinstance(value, str) else None


def default_region(session: botocore.session.Session) -> str | None:
    found = default_region_source(session)
    return found[0] if found else None


def default_region_source(session: botocore.session.Session) -> tuple[str, str] | None:
    """The AWS default region and where it came from (for error messages), as botocore reads it."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return os.environ[name], f"{name} (environment)"
    region = session.get_config_variable("region")
    if region:
        return region, "the AWS config file's region"
    if os.environ.get("AWS_REGION_NAME"):  # LiteLLM's name, after botocore's own
        return os.environ["AWS_REGION_NAME"], "AWS_REGION_NAME (environment)"
    return None
