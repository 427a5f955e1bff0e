"""The request plumbing every page shares: the session check, CSRF and same-origin checks on
every POST, form parsing, template rendering and the security headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, quote

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from outcrop import ClientDisconnected, GatewayAPI, OutcropError, read_body
from outcrop_keys.manage import ManageError

from . import charts
from .session import COOKIE, Session, Sessions, cookie_header

if TYPE_CHECKING:
    import jinja2

log = structlog.get_logger("outcrop.admin")

MAX_FORM = 64 * 1024  # admin forms are small: a larger body is refused, not buffered
_STYLE = resources.files("outcrop_admin").joinpath("admin.css").read_text()
_SCRIPT = resources.files("outcrop_admin").joinpath("admin.js").read_text()


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: Inline style and script, allowed by hash: no static route, nothing loaded from elsewhere.
CSP = (
    "default-src 'none'; "
    f"style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

#: ``?msg=`` codes a redirect after a change carries (never free text from the URL).
MESSAGES = {
    "signed_out": "Signed out.",
    "saved": "Saved.",
    "unchanged": "Nothing changed.",
    "blocked": "The key is blocked: its calls are refused.",
    "unblocked": "The key is unblocked.",
    "deleted": "Deleted.",
    "team_created": "Team created.",
}

NAV = (
    ("/ui/keys", "Keys"),
    ("/ui/teams", "Teams"),
    ("/ui/spend", "Spend"),
    ("/ui/calls", "Calls"),
    ("/ui/models", "Models"),
)


def environment() -> jinja2.Environment:
    import jinja2  # on the first page rendered: Jinja costs ~80 ms of CPU and 1 MB to import

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("outcrop_admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(nav=NAV, style=_STYLE, script=_SCRIPT)
    env.filters["money"] = charts.money
    env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if v else ""
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


@dataclass
class Ctx:
    """One request to a page."""

    request: Request
    session: Session | None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https"


Handler = Callable[[Ctx], Awaitable[Response]]
T = TypeVar("T")


class LoginThrottle:
    """At most ``limit`` failed sign-ins per client address per minute (guessing keys is slow
    already; this keeps the logs and the key cache quiet)."""

    def __init__(self, limit: int = 20, window_s: float = 60.0) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, list[float]] = {}

    def blocked(self, client: str) -> bool:
        moment = time.monotonic()
        recent = [t for t in self._failures.get(client, ()) if moment - t < self.window_s]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return len(recent) >= self.limit

    def failed(self, client: str) -> None:
        if len(self._failures) > 10_000:  # many addresses: forget the oldest entries
            self._failures.clear()
        self._failures.setdefault(client, []).append(time.monotonic())


class Web:
    def __init__(self, gateway: GatewayAPI, sessions: Sessions) -> None:
        self.gateway = gateway
        self.sessions = sessions
        self.throttle = LoginThrottle()
        #: Checks a virtual key's session on each request (set by the app: the key service).
        self.still_admin: Callable[[str], bool] = lambda token: False

    # -- rendering ---------------------------------------------------------------------------
    @cached_property
    def env(self) -> jinja2.Environment:
        return environment()

    def render(self, ctx: Ctx, template: str, status: int = 200, **values: Any) -> Response:
        session = ctx.session
        html = self.env.get_template(template).render(
            csrf=session.csrf if session else "",
            who=_who(session),
            path=ctx.request.url.path,
            notice=MESSAGES.get(ctx.query.get("msg", ""), ""),
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def fail(self, ctx: Ctx, status: int, message: str) -> Response:
        return self.render(ctx, "error.html", status=status, status_code=status, message=message)

    # -- the wrapper every route goes through ------------------------------------------------
    def page(
        self, handler: Handler, *, signed_in: bool = True
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            response = await self._serve(request, handler, signed_in)
            response.headers.update(SECURITY_HEADERS)
            return response

        return endpoint

    async def _serve(self, request: Request, handler: Handler, signed_in: bool) -> Response:
        session = self.current(request)
        ctx = Ctx(request, session)
        try:
            if signed_in and session is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    await self._form(request)  # read, never used: the connection stays usable
                    target = request.url.path if request.url.path != "/ui/logout" else "/ui"
                return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
            if request.method == "POST":
                ctx.form = await self._form(request)  # read first: a refusal keeps the connection
                refused = self._check_post(request)
                if refused:
                    return self.fail(ctx, 403, refused)
                if signed_in and not _same(ctx.form.get("csrf"), session.csrf if session else None):
                    log.warning("admin_csrf_refused", path=request.url.path)
                    return self.fail(
                        ctx,
                        403,
                        "the form's CSRF token is missing or wrong: reload the page and try again",
                    )
            return await handler(ctx)
        except ClientDisconnected:
            return Response(status_code=499)
        except (OutcropError, ManageError) as exc:
            return self.fail(ctx, exc.status, exc.message)
        except Exception:  # the database went away, a bug: an error page, never a crash
            log.exception("admin_page_failed", path=request.url.path)
            return self.fail(ctx, 500, "the page failed: see the gateway's log")

    def current(self, request: Request) -> Session | None:
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        claims = session.claims
        if claims.kind == "master_key":
            return session
        if claims.kind == "virtual_key" and claims.sub and self.still_admin(claims.sub):
            return session
        return None  # the key was deleted, blocked, expired or lost admin: signed out

    @staticmethod
    def _check_post(request: Request) -> str | None:
        """A POST must come from this site: browsers send ``Sec-Fetch-Site`` and ``Origin``."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site form posts are refused"
        origin = request.headers.get("origin")
        if origin is not None:
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if origin != own:
                return "cross-origin form posts are refused"
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return "forms are posted as application/x-www-form-urlencoded"
        return None

    async def _form(self, request: Request) -> dict[str, str]:
        body = await read_body(
            request.receive,
            limit=MAX_FORM,
            headers=request.scope["headers"],
            timeout=self.gateway.settings.body_timeout,
        )
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            raise OutcropError("the form is not valid UTF-8 form data", 400) from None
        return dict(pairs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A synchronous database call, off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def int_param(raw: str | None, default: int, low: int = 1, high: int = 10**9) -> int:
    """A page number or size from the query string, clamped (a bad one falls back)."""
    try:
        return min(max(int(raw or default), low), high)
    except ValueError:
        return default


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and hmac.compare_digest(a or "", b or "")


def _who(session: Session | None) -> str:
    if session is None:
        return ""
    claims = session.claims
    if claims.kind == "master_key":
        return "master key"
    return f"admin key {claims.alias}" if claims.alias else "admin key"


def set_cookie(response: Response, *args: Any, **kwargs: Any) -> Response:
    response.headers.append("set-cookie", cookie_header(*args, **kwargs))
    return response
