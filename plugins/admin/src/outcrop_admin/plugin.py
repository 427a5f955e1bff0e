"""The entry point: serves the admin page at /ui on a gateway with a master key (virtual keys
on). Without one the page is off and costs nothing."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from starlette.routing import BaseRoute

import outcrop
from outcrop import GatewayAPI

log = structlog.get_logger("outcrop.admin")


@outcrop.hookimpl
def outcrop_register_routes(register: Callable[[BaseRoute], None], gateway: GatewayAPI) -> None:
    if not gateway.has_master_key:
        log.info("admin_off", message="the admin page (/ui) needs a master key, like virtual keys")
        return
    from .app import AdminApp

    for route in AdminApp(gateway).routes():
        register(route)
