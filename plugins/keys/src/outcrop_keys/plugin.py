"""The entry point: turns virtual keys on for a gateway that has a master key, and adds
``outcrop keys`` / ``outcrop db`` to the command line.

Heavy imports (SQLAlchemy, Alembic) happen only when a gateway actually uses keys, so the
plugin costs nothing to a gateway without a master key or to ``outcrop --help``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from starlette.routing import BaseRoute

import outcrop
from outcrop import GatewayAPI

if TYPE_CHECKING:
    from .service import KeyService

log = structlog.get_logger("outcrop.keys")


@outcrop.hookimpl
def outcrop_register_routes(register: Callable[[BaseRoute], None], gateway: GatewayAPI) -> None:
    if not gateway.has_master_key:
        log.info(
            "keys_off",
            message="virtual keys need a master key (general_settings.master_key, "
            "OUTCROP_MASTER_KEY or LITELLM_MASTER_KEY)",
        )
        return
    from .api import ManagementApi
    from .service import KeyService
    from .settings import Settings

    service = KeyService(gateway, Settings.from_gateway(gateway))
    # The per-request hooks belong to this gateway only (a process may run several gateways).
    gateway.register_plugin(service, _service_name(gateway))
    for route in ManagementApi(service).routes():
        register(route)


def _service_name(gateway: GatewayAPI) -> str:
    return f"outcrop_keys.service.{id(gateway)}"


def service_for(gateway: GatewayAPI) -> KeyService | None:
    """The key service of ``gateway`` (``None`` when keys are off: no master key). Other
    plugins (the admin page) use it to manage keys in-process; see ``outcrop_keys``."""
    return gateway.get_plugin(_service_name(gateway))  # type: ignore[no-any-return]


@outcrop.hookimpl
def outcrop_register_config_sections(register: Callable[[outcrop.ConfigSection], None]) -> None:
    # the core refuses a database_url that no installed plugin stores anything in
    register(outcrop.ConfigSection(DATABASE_URL_SETTING, "where virtual keys and spend live"))


DATABASE_URL_SETTING = "general_settings.database_url"


@outcrop.hookimpl
def outcrop_register_commands(subparsers: Any) -> None:
    from .cli import register

    register(subparsers)
