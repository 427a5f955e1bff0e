"""AWS settings per deployment: credentials, region and endpoint, resolved as botocore does.

Credentials come from botocore's chain (static keys, profile, assume-role, web identity, env,
SSO, IMDS...). They are resolved once, off the event loop, and refreshed in the background
before expiry; the request path only reads a frozen snapshot.

botocore (~70 ms of CPU and ~10 MB per worker) is imported only when something needs it: a
role, a profile, credentials that come neither from the deployment nor from the environment's
fixed keys (IMDS, containers, SSO...), or the AWS config file (a default region or configured
endpoints, read only when the file exists). A gateway whose keys are in its deployments or in
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, with no AWS config or credentials file and no
profile in the environment, never loads it (``env_credentials``: then botocore's chain would
stop at its first link with the same keys).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import DeploymentParams
from .errors import OutcropError
from .logs import get_logger
from .regions import check_region, is_region, region_problem

if TYPE_CHECKING:
    import botocore.session

log = get_logger("outcrop.aws")


class FrozenCredentials(NamedTuple):
    """One snapshot of a deployment's credentials (the fields of botocore's
    ``ReadOnlyCredentials``): what ``outcrop_sign_request`` receives."""

    access_key: str
    secret_key: str
    token: str | None


class _Static:
    """Keys written in the deployment: nothing to refresh, no botocore."""

    def __init__(self, frozen: FrozenCredentials) -> None:
        self._frozen = frozen

    def get_frozen_credentials(self) -> FrozenCredentials:
        return self._frozen


#: Settings botocore reads before its chain's first link (``EnvProvider``) that make it fail
#: (a profile that may not exist, IMDS settings it converts): set, botocore decides.
_READ_BEFORE_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_METADATA_SERVICE_TIMEOUT",
    "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
)


def env_credentials() -> FrozenCredentials | None:
    """What botocore's default chain answers when its first link (``EnvProvider``) has fixed
    keys and nothing before it can fail: ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``,
    with ``AWS_SECURITY_TOKEN`` (botocore looks at it first), else ``AWS_SESSION_TOKEN``.
    ``None`` when botocore's chain must decide: keys absent, partial or expiring
    (``AWS_CREDENTIAL_EXPIRATION``), a profile named in the environment, an IMDS setting, or
    an AWS config or credentials file (botocore parses them first, and refuses a broken one)."""
    env = os.environ
    key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not key or not secret or env.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    if any(name in env for name in _READ_BEFORE_ENV):
        return None
    if _aws_file_exists(_CONFIG_FILE) or _aws_file_exists(_CREDENTIALS_FILE):
        return None
    token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
    return FrozenCredentials(key, secret, token)


def new_session(profile: str | None = None) -> botocore.session.Session:
    import botocore.session

    return botocore.session.Session(profile=profile)


#: (variable, default) of the AWS config file and the shared credentials file.
_CONFIG_FILE = ("AWS_CONFIG_FILE", "~/.aws/config")
_CREDENTIALS_FILE = ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")


def _aws_file_exists(which: tuple[str, str]) -> bool:
    """Whether the file botocore would read exists: the variable (even empty: then none), else
    the default, with ``$VAR`` and ``~`` expanded as botocore expands them."""
    path = os.environ.get(*which)
    return bool(path) and os.path.isfile(os.path.expanduser(os.path.expandvars(path)))


def shared_config_file() -> bool:
    """The AWS config file exists (where botocore reads a default region and endpoints)."""
    return _aws_file_exists(_CONFIG_FILE)


_DNS_SUFFIX = (("cn-", "amazonaws.com.cn"), ("eusc-", "amazonaws.eu"))
_REFRESH_EVERY_S = 60.0
#: Endpoint URLs kept per worker: regions in request paths are client input, so the cache is
#: bounded (the oldest entry goes first) rather than growing with every region-shaped string.
MAX_CACHED_ENDPOINTS = 512
#: AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>: endpoints configured in the environment.
_ENDPOINT_ENV = "AWS_ENDPOINT_URL"


def dns_suffix(region: str) -> str:
    for prefix, suffix in _DNS_SUFFIX:
        if region.startswith(prefix):
            return suffix
    return "amazonaws.com"


class CredentialSource:
    """One botocore credential provider and its latest frozen snapshot."""

    def __init__(self, params: DeploymentParams, aws: AwsSettings) -> None:
        self._params = params
        self._aws = aws
        self._credentials: Any = None
        self._frozen: FrozenCredentials | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def _build(self) -> Any:
        p = self._params
        key_id, secret = p.aws_access_key_id, p.aws_secret_access_key
        static = bool(key_id and secret)
        if key_id and secret and not p.aws_role_name:
            return _Static(FrozenCredentials(key_id, secret, p.aws_session_token))
        if not (static or p.aws_profile_name or p.aws_role_name):
            from_env = env_credentials()
            if from_env is not None:  # the default chain would stop at its first link
                return _Static(from_env)
        from botocore.credentials import (
            AssumeRoleCredentialFetcher,
            AssumeRoleWithWebIdentityCredentialFetcher,
            Credentials,
            DeferredRefreshableCredentials,
        )

        base: Any
        if static:
            base = Credentials(p.aws_access_key_id, p.aws_secret_access_key, p.aws_session_token)
        elif p.aws_profile_name:
            base = new_session(p.aws_profile_name).get_credentials()
        else:
            base = (
                None
                if (p.aws_role_name and p.aws_web_identity_token)
                else self._aws.session.get_credentials()
            )
        if not p.aws_role_name:
            return base
        client_session = self._aws.session
        region = p.aws_region_name or default_region(client_session)

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
                snapshot = self._credentials.get_frozen_credentials() if self._credentials else None
                self._frozen = (
                    FrozenCredentials(snapshot.access_key, snapshot.secret_key, snapshot.token)
                    if snapshot
                    else None
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

    def frozen(self) -> FrozenCredentials:
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
        self._session: botocore.session.Session | None = None
        self._sources: dict[tuple[Any, ...], CredentialSource] = {}
        self._endpoints: dict[tuple[str, str, str | None], str] = {}
        self._default_region = default_region_name
        self._profile_sessions: dict[str, botocore.session.Session] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def session(self) -> botocore.session.Session:
        """The botocore session (made, and botocore imported, on first use)."""
        if self._session is None:
            self._session = new_session()
        return self._session

    # -- credentials ---------------------------------------------------------------------
    def source(self, params: DeploymentParams) -> CredentialSource:
        key = params.credential_key()
        src = self._sources.get(key)
        if src is None:
            src = self._sources[key] = CredentialSource(params, self)
        return src

    async def credentials(self, params: DeploymentParams) -> FrozenCredentials:
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
        found = self.default_region_source(params.aws_profile_name if params else None)
        if found is None:
            raise OutcropError(
                "no AWS region: set aws_region_name on the deployment, or AWS_REGION / AWS_DEFAULT_REGION",
                400,
                code="missing_region",
            )
        region, source = found
        return check_region(region, source, 500)

    def default_region_source(self, profile: str | None = None) -> tuple[str, str] | None:
        """The region used when neither deployment nor model string fixes one, and where it was
        found: ``general_settings.default_region``, then the AWS defaults (a deployment's
        ``aws_profile_name``: that profile's ``region``, not the default profile's)."""
        if self._default_region:
            return self._default_region, "general_settings.default_region"
        if profile:
            return default_region_source(lambda: self._profile_session(profile), profile)
        return default_region_source(lambda: self.session)

    def _profile_session(self, profile: str) -> botocore.session.Session:
        session = self._profile_sessions.get(profile)
        if session is None:
            session = self._profile_sessions[profile] = new_session(profile)
        return session

    def profile_exists(self, profile: str) -> bool:
        """Whether botocore knows ``profile`` (a section of the AWS config or credentials
        file): a named profile it does not know fails every call's credentials."""
        if not (shared_config_file() or _aws_file_exists(_CREDENTIALS_FILE)):
            return False  # no file to hold it (and no need for botocore)
        from botocore.exceptions import ProfileNotFound

        try:
            self._profile_session(profile).get_scoped_config()
        except ProfileNotFound:
            return False
        return True

    def settings_problems(
        self,
        params: DeploymentParams,
        where: str,
        *,
        region_fixed: bool,
        needs_region: bool,
        label: str = "",
    ) -> list[str]:
        """Config errors in the AWS settings at ``where`` (a deployment's or a section's, named
        also by ``label``), found before any call: a profile botocore does not know, and no
        region from anywhere (``region_fixed``: the model string names one) when calls need one
        from here (``needs_region``; a named profile always does: it was named for its region)."""
        profile = params.aws_profile_name
        if profile and not self.profile_exists(profile):
            return [
                f"{where}.aws_profile_name{label}: no profile {profile!r} in the AWS config or "
                "credentials file (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE)"
            ]
        if params.aws_region_name or region_fixed or not (needs_region or profile):
            return []
        if self.default_region_source(profile) is not None:
            return []
        has = f"profile {profile!r} sets no region, and " if profile else ""
        return [
            f"{where}{label}: no AWS region: {has}none of aws_region_name, "
            "general_settings.default_region, AWS_REGION, AWS_DEFAULT_REGION is set"
        ]

    def check_defaults(self, profiles: Iterable[str] = ()) -> list[str]:
        """Config errors for a default region (settings, environment, profile, the
        ``profiles`` of deployments without ``aws_region_name``) that is not one."""
        problems = []
        for profile in (None, *dict.fromkeys(profiles)):
            found = self.default_region_source(profile)
            if found is not None and not is_region(found[0]):
                problems.append(region_problem(found[0], found[1]))
        return list(dict.fromkeys(problems))

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
        if not shared_config_file() and not any(k.startswith(_ENDPOINT_ENV) for k in os.environ):
            return None  # nowhere to configure one: no need for botocore
        from botocore.configprovider import ConfiguredEndpointProvider

        session = new_session(profile) if profile else self.session
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
    found = default_region_source(lambda: session)
    return found[0] if found else None


def default_region_source(
    session: Callable[[], botocore.session.Session], profile: str | None = None
) -> tuple[str, str] | None:
    """The AWS default region and where it came from (for error messages), as botocore reads it
    (``session`` gives the botocore session, of ``profile`` when named; asked only when the AWS
    config file exists; a profile it does not hold has no region)."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(name):
            return os.environ[name], f"{name} (environment)"
    region = None
    if shared_config_file():
        from botocore.exceptions import ProfileNotFound

        try:
            region = session().get_config_variable("region")
        except ProfileNotFound:
            region = None
    if region:
        where = f" (profile {profile})" if profile else ""
        return region, f"the AWS config file's region{where}"
    if os.environ.get("AWS_REGION_NAME"):  # LiteLLM's name, after botocore's own
        return os.environ["AWS_REGION_NAME"], "AWS_REGION_NAME (environment)"
    return None
