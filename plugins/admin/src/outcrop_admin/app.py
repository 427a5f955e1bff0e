"""The admin page's routes under /ui."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from outcrop import GatewayAPI, OutcropError
from outcrop_keys.plugin import service_for
from outcrop_keys.service import KeyService

from .auth import Auth
from .keys import KeyPages
from .reports import ReportPages
from .session import SESSION_PURPOSE, Sessions
from .web import Ctx, Web


class AdminApp:
    def __init__(self, gateway: GatewayAPI) -> None:
        secret = gateway.derived_secret(SESSION_PURPOSE)
        assert secret is not None, "the admin page needs a master key"
        self.gateway = gateway
        self.web = Web(gateway, Sessions(secret))
        self.web.still_admin = self._still_admin
        self.auth = Auth(self.web)
        self.keys = KeyPages(self.web, self.service)
        self.reports = ReportPages(self.web, gateway, self.service)

    def service(self) -> KeyService:
        """The keys plugin's service (looked up per request: plugins register in any order)."""
        service = service_for(self.gateway)
        if service is None or service.engine is None:
            raise OutcropError("the key store is not open yet", 503)
        return service

    def _still_admin(self, token: str) -> bool:
        service = service_for(self.gateway)
        return service is not None and service.admin_principal(token) is not None

    async def home(self, ctx: Ctx) -> Response:
        return RedirectResponse("/ui/keys", status_code=303)

    def routes(self) -> list[BaseRoute]:
        get, post = ["GET"], ["POST"]
        k, r, page = self.keys, self.reports, self.web.page
        table = [
            ("/ui", self.home, get),
            ("/ui/", self.home, get),
            ("/ui/logout", self.auth.logout, post),
            ("/ui/keys", k.list_keys, get),
            ("/ui/keys/new", k.new_key_form, get),
            ("/ui/keys/new", k.create_key, post),
            ("/ui/keys/{token}", k.key_page, get),
            ("/ui/keys/{token}", k.update_key, post),
            ("/ui/keys/{token}/block", k.block, post),
            ("/ui/keys/{token}/unblock", k.unblock, post),
            ("/ui/keys/{token}/regenerate", k.regenerate, post),
            ("/ui/keys/{token}/delete", k.delete, post),
            ("/ui/teams", k.list_teams, get),
            ("/ui/teams/new", k.new_team_form, get),
            ("/ui/teams/new", k.create_team, post),
            ("/ui/teams/{team_id}", k.team_page, get),
            ("/ui/teams/{team_id}", k.update_team, post),
            ("/ui/teams/{team_id}/delete", k.delete_team, post),
            ("/ui/spend", r.spend, get),
            ("/ui/spend.csv", r.spend_csv, get),
            ("/ui/calls", r.calls, get),
            ("/ui/calls/{row_id}", r.call, get),
            ("/ui/models", r.models, get),
        ]
        routes: list[BaseRoute] = [
            Route("/ui/login", page(self.auth.login_form, signed_in=False), methods=get),
            Route("/ui/login", page(self.auth.login, signed_in=False), methods=post),
        ]
        routes += [Route(path, page(fn), methods=methods) for path, fn, methods in table]
        return routes
