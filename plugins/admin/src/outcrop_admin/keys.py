"""Keys and teams: lists, create, edit, block/unblock, regenerate, delete (through
``outcrop_keys.manage``, the operations behind the management API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from outcrop import OutcropError
from outcrop_keys import manage
from outcrop_keys.manage import ManageError
from outcrop_keys.service import KeyService

from . import forms, queries
from .forms import FormError
from .web import Ctx, Web, int_param

PAGE_SIZE = 50


def _see(path: str, msg: str) -> Response:
    return RedirectResponse(f"{path}?msg={msg}", status_code=303)


class KeyPages:
    def __init__(self, web: Web, service: Callable[[], KeyService]) -> None:
        self.web = web
        self.service = service

    @property
    def engine(self) -> Any:
        return self.service().engine

    async def _write(self, op: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        service = self.service()
        result = await self.web.run(op, service.engine, *args, **kwargs)
        await service.refresh()  # the change applies to this instance's calls at once
        return result

    async def _teams(self) -> dict[str, str]:
        return await self.web.run(queries.team_names, self.engine)

    # -- keys --------------------------------------------------------------------------------
    async def list_keys(self, ctx: Ctx) -> Response:
        team = ctx.query.get("team_id") or None
        alias = ctx.query.get("key_alias") or None
        number = int_param(ctx.query.get("page"), 1)
        found = await self.web.run(
            manage.list_keys,
            self.engine,
            team_id=team,
            key_alias=alias,
            page=number,
            size=PAGE_SIZE,
            full=True,
        )
        page = queries.Page.of(number, PAGE_SIZE, found["total_count"])
        if page.number != number:  # past the end: show the last page
            found = await self.web.run(
                manage.list_keys,
                self.engine,
                team_id=team,
                key_alias=alias,
                page=page.number,
                size=PAGE_SIZE,
                full=True,
            )
        pending = self.service().pending
        rows = [{**k, "spend": k["spend"] + pending.get(k["token"], 0.0)} for k in found["keys"]]
        return self.web.render(
            ctx,
            "keys.html",
            keys=rows,
            page=page,
            teams=await self._teams(),
            team_id=team or "",
            key_alias=alias or "",
        )

    async def new_key_form(self, ctx: Ctx) -> Response:
        values = {"team_id": ctx.query.get("team_id", "")}
        return await self._key_form(ctx, values, "", 200)

    async def _key_form(
        self, ctx: Ctx, values: dict[str, str], error: str, status: int
    ) -> Response:
        return self.web.render(
            ctx,
            "key_new.html",
            status=status,
            fields=forms.key_fields(edit=False),
            values=values,
            teams=await self._teams(),
            error=error,
            sigv4_ready=bool(self.service().settings.salt_key),
        )

    async def create_key(self, ctx: Ctx) -> Response:
        try:
            body = forms.create_body(forms.key_fields(edit=False), ctx.form)
            created = await self._write(
                manage.generate_key,
                body,
                salt_key=self.service().settings.salt_key,
                created_by=_creator(ctx),
            )
        except (FormError, ManageError) as exc:
            return await self._key_form(ctx, ctx.form, _message(exc), 400)
        return self.web.render(ctx, "key_created.html", created=created, regenerated=False)

    async def _info(self, token: str) -> dict[str, Any]:
        try:
            info = await self.web.run(manage.key_info, self.engine, token)
        except ManageError as exc:
            raise OutcropError(exc.message, exc.status) from None
        row: dict[str, Any] = info["info"]
        row["spend"] += self.service().pending.get(row["token"], 0.0)
        return row

    async def key_page(self, ctx: Ctx, error: str = "", status: int = 200) -> Response:
        token = ctx.request.path_params["token"]
        row = await self._info(token)
        fields = forms.key_fields(edit=True)
        values = {f.name: f.text(row.get(f.name)) for f in fields}
        if error:
            values.update(ctx.form)
        return self.web.render(
            ctx,
            "key.html",
            status=status,
            key=row,
            fields=fields,
            values=values,
            teams=await self._teams(),
            error=error,
        )

    async def update_key(self, ctx: Ctx) -> Response:
        token = ctx.request.path_params["token"]
        row = await self._info(token)
        try:
            body = forms.edit_body(forms.key_fields(edit=True), ctx.form, row)
            if not body:
                return _see(f"/ui/keys/{token}", "unchanged")
            await self._write(manage.update_key, {**body, "key": token})
        except (FormError, ManageError) as exc:
            return await self.key_page(ctx, _message(exc), 400)
        return _see(f"/ui/keys/{token}", "saved")

    async def block(self, ctx: Ctx) -> Response:
        return await self._set_blocked(ctx, True)

    async def unblock(self, ctx: Ctx) -> Response:
        return await self._set_blocked(ctx, False)

    async def _set_blocked(self, ctx: Ctx, blocked: bool) -> Response:
        token = ctx.request.path_params["token"]
        try:
            await self._write(manage.set_blocked, token, blocked)
        except ManageError as exc:
            return self.web.fail(ctx, exc.status, exc.message)
        return _see(f"/ui/keys/{token}", "blocked" if blocked else "unblocked")

    async def regenerate(self, ctx: Ctx) -> Response:
        token = ctx.request.path_params["token"]
        try:
            created = await self._write(
                manage.regenerate_key, {"key": token}, salt_key=self.service().settings.salt_key
            )
        except ManageError as exc:
            return self.web.fail(ctx, exc.status, exc.message)
        return self.web.render(ctx, "key_created.html", created=created, regenerated=True)

    async def delete(self, ctx: Ctx) -> Response:
        token = ctx.request.path_params["token"]
        if ctx.form.get("confirm") != "on":
            return await self.key_page(ctx, "tick the box to confirm the deletion", 400)
        try:
            await self._write(manage.delete_keys, {"keys": [token]})
        except ManageError as exc:
            return self.web.fail(ctx, exc.status, exc.message)
        return _see("/ui/keys", "deleted")

    # -- teams -------------------------------------------------------------------------------
    async def list_teams(self, ctx: Ctx) -> Response:
        teams = await self.web.run(manage.list_teams, self.engine)
        counts = await self.web.run(queries.key_counts, self.engine)
        return self.web.render(ctx, "teams.html", teams=teams, counts=counts)

    async def new_team_form(self, ctx: Ctx, error: str = "", status: int = 200) -> Response:
        return self.web.render(
            ctx,
            "team_new.html",
            status=status,
            fields=forms.team_fields(edit=False),
            values=ctx.form,
            error=error,
        )

    async def create_team(self, ctx: Ctx) -> Response:
        try:
            body = forms.create_body(forms.team_fields(edit=False), ctx.form)
            team = await self._write(manage.new_team, body)
        except (FormError, ManageError) as exc:
            return await self.new_team_form(ctx, _message(exc), 400)
        return _see(f"/ui/teams/{quote(team['team_id'], safe='')}", "team_created")

    async def _team(self, team_id: str) -> dict[str, Any]:
        try:
            return await self.web.run(manage.team_info, self.engine, team_id)
        except ManageError as exc:
            raise OutcropError(exc.message, exc.status) from None

    async def team_page(self, ctx: Ctx, error: str = "", status: int = 200) -> Response:
        info = await self._team(ctx.request.path_params["team_id"])
        fields = forms.team_fields(edit=True)
        values = {f.name: f.text(info["team_info"].get(f.name)) for f in fields}
        if error:
            values.update(ctx.form)
        pending = self.service().pending
        members = [{**k, "spend": k["spend"] + pending.get(k["token"], 0.0)} for k in info["keys"]]
        return self.web.render(
            ctx,
            "team.html",
            status=status,
            team=info["team_info"],
            members=members,
            fields=fields,
            values=values,
            error=error,
        )

    async def update_team(self, ctx: Ctx) -> Response:
        team_id = ctx.request.path_params["team_id"]
        info = await self._team(team_id)
        where = f"/ui/teams/{quote(team_id, safe='')}"
        try:
            body = forms.edit_body(forms.team_fields(edit=True), ctx.form, info["team_info"])
            if not body:
                return _see(where, "unchanged")
            await self._write(manage.update_team, {**body, "team_id": team_id})
        except (FormError, ManageError) as exc:
            return await self.team_page(ctx, _message(exc), 400)
        return _see(where, "saved")

    async def delete_team(self, ctx: Ctx) -> Response:
        team_id = ctx.request.path_params["team_id"]
        if ctx.form.get("confirm") != "on":
            return await self.team_page(ctx, "tick the box to confirm the deletion", 400)
        try:
            await self._write(manage.delete_teams, {"team_ids": [team_id]})
        except ManageError as exc:
            return self.web.fail(ctx, exc.status, exc.message)
        return _see("/ui/teams", "deleted")


def _creator(ctx: Ctx) -> str:
    claims = ctx.session.claims if ctx.session else None
    if claims is None or claims.kind == "master_key":
        return "master_key"
    return claims.sub or "admin_key"


def _message(exc: FormError | ManageError) -> str:
    return exc.message if isinstance(exc, ManageError) else str(exc)
