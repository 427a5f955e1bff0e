"""The Python API other plugins use: ``service_for`` finds a gateway's key service, and
``admin_principal`` says whether a key may still administer (the admin page's session check)."""

from __future__ import annotations

from typing import Any

from outcrop_keys.plugin import service_for

from .conftest import Admin, service_of


def test_service_for_and_admin_principal(gateway: Any, admin: Admin) -> None:
    service = service_for(gateway.gateway)
    assert service is not None and service is service_of(gateway)
    boss = admin.generate(key_alias="boss", admin=True)
    plain = admin.generate(key_alias="plain")
    principal = service.admin_principal(boss["token"])
    assert principal is not None and principal.admin and principal.alias == "boss"
    assert service.admin_principal(plain["token"]) is None  # no admin: true
    assert service.admin_principal("0" * 64) is None  # no such key
    admin.post("/key/block", {"key": boss["key"]})
    assert service.admin_principal(boss["token"]) is None  # blocked keys lose it at once
    admin.post("/key/unblock", {"key": boss["key"]})
    assert service.admin_principal(boss["token"]) is not None
    admin.post("/key/delete", {"keys": [boss["key"]]})
    assert service.admin_principal(boss["token"]) is None


def test_service_for_without_keys(gateway_factory: Any) -> None:
    running = gateway_factory({"general_settings": {"allow_unauthenticated": False}})
    assert service_for(running.gateway) is None
