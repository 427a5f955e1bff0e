"""Sign-in and sign-out."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from outcrop import OutcropError

from .session import COOKIE, LOGIN_COOKIE
from .web import Ctx, Web, set_cookie

LOGIN_PATH = "/ui/login"


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a page of this UI only (never another site)."""
    if (
        target
        and (target == "/ui" or target.startswith(("/ui/", "/ui?")))
        and not target.startswith("/ui/login")
        and "//" not in target
        and "\\" not in target
    ):
        return target
    return "/ui/keys"


class Auth:
    def __init__(self, web: Web) -> None:
        self.web = web

    async def login_form(self, ctx: Ctx) -> Response:
        if ctx.session is not None:
            return RedirectResponse(safe_next(ctx.query.get("next")), status_code=303)
        return self._form(ctx, 200, "")

    def _form(self, ctx: Ctx, status: int, error: str) -> Response:
        nonce = self.web.sessions.login_nonce()
        response = self.web.render(
            ctx,
            "login.html",
            status=status,
            error=error,
            login_csrf=self.web.sessions.login_token(nonce),
            next=safe_next(ctx.form.get("next") or ctx.query.get("next")),
        )
        return set_cookie(response, LOGIN_COOKIE, nonce, secure=ctx.secure, path=LOGIN_PATH)

    async def login(self, ctx: Ctx) -> Response:
        client = ctx.request.client.host if ctx.request.client else "?"
        if self.web.throttle.blocked(client):
            return self._form(ctx, 429, "too many failed sign-ins: wait a minute")
        nonce = ctx.request.cookies.get(LOGIN_COOKIE)
        if not self.web.sessions.check_login_token(nonce, ctx.form.get("csrf")):
            return self.web.fail(
                ctx, 403, "the sign-in form's CSRF token is missing or wrong: reload and try again"
            )
        key = ctx.form.get("key", "").strip()
        try:
            principal = self.web.gateway.authenticate({"authorization": f"Bearer {key}"})
        except OutcropError:
            principal = None
        if principal is None or not key:
            self.web.throttle.failed(client)
            return self._form(ctx, 401, "wrong key: use the master key or a key with admin: true")
        if principal.kind == "master_key":
            cookie = self.web.sessions.issue("master_key", None)
        elif principal.admin and principal.kind == "virtual_key" and principal.id:
            cookie = self.web.sessions.issue("virtual_key", principal.id, principal.alias)
        else:
            self.web.throttle.failed(client)
            return self._form(
                ctx, 403, "this key may not sign in: it needs admin: true (or use the master key)"
            )
        response = RedirectResponse(safe_next(ctx.form.get("next")), status_code=303)
        set_cookie(response, LOGIN_COOKIE, "", secure=ctx.secure, max_age=0, path=LOGIN_PATH)
        lifetime = self.web.sessions.lifetime_s
        return set_cookie(response, COOKIE, cookie, secure=ctx.secure, max_age=lifetime)

    async def logout(self, ctx: Ctx) -> Response:
        if ctx.session is not None:
            self.web.sessions.revoke(ctx.session)
        response = RedirectResponse(f"{LOGIN_PATH}?msg=signed_out", status_code=303)
        return set_cookie(response, COOKIE, "", secure=ctx.secure, max_age=0)
