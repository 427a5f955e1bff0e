"""gc.freeze belongs to the server entry (`outcrop serve`, its workers), not to the app factory."""

import gc

import httpx

from outcrop.app import create_app
from outcrop.gcfreeze import freeze_after_startup, pause_until_started, resume
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


def test_the_collector_paused_for_start_up_runs_again_once_started():
    """`outcrop serve` turns the collector off while it builds the app; the freeze after the
    lifespan start-up turns it back on (and only a pause it made itself)."""
    gc.unfreeze()
    pause_until_started()
    try:
        assert not gc.isenabled()
        with ServerThread(freeze_after_startup(create_app({}))) as server:
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0
            assert httpx.get(server.url + "/health/readiness").status_code == 200
    finally:
        resume()
        gc.enable()
        gc.unfreeze()


def test_a_collector_the_host_turned_off_stays_off():
    gc.disable()
    try:
        pause_until_started()  # nothing to pause: the host's choice stands
        resume()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_commands_other_than_serve_run_with_the_collector_on(capsys):
    from outcrop.cli import main

    assert main(["plugins"]) == 0
    assert gc.isenabled()
