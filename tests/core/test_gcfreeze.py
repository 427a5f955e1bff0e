"""gc.freeze belongs to the server entry (`outcrop serve`, its workers), not to the app factory."""

import gc

import httpx

from outcrop.app import create_app
from outcrop.gcfreeze import freeze_after_startup
from outcrop.testing import ServerThread


def test_the_app_factory_leaves_the_host_process_collector_alone(gateway_factory):
    gc.unfreeze()
    gw = gateway_factory({})  # create_app + lifespan start-up, as an embedding process does
    assert httpx.get(gw.url + "/health/readiness").status_code == 200
    assert gc.get_freeze_count() == 0


def test_the_server_entry_freezes_once_started():
    gc.unfreeze()
    app = create_app({})
    wrapped = freeze_after_startup(app)
    try:
        with ServerThread(wrapped) as server:
            assert gc.get_freeze_count() > 0  # ServerThread returns once start-up completed
            assert httpx.get(server.url + "/health/readiness").status_code == 200
    finally:
        gc.unfreeze()
