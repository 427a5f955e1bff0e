"""Storage on both engines: migrations (start-up, ``outcrop db upgrade``, ``--no-migrate``),
state kept across a restart, and a change made on one instance seen by another within 1 s."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest
import sqlalchemy as sa

import outcrop
from outcrop.cli import main
from outcrop_keys import db, store, tokens

from .conftest import BEDROCK_ID, MASTER, Admin, wait_for

MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]
TABLES = {
    "outcrop_meta",
    "outcrop_keys",
    "outcrop_teams",
    "outcrop_tombstones",
    "outcrop_spend_logs",
    "outcrop_alembic_version",
}


def tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) & (TABLES | {"alembic_version"})
    finally:
        engine.dispose()


def test_migrations_up_down_and_cli(database_url, capsys):
    engine = db.make_engine(database_url)
    try:
        assert db.current(engine) is None
        db.upgrade(engine)
        assert db.current(engine) == db.head() == db.HEAD == "0004"
        assert tables(database_url) == TABLES
        db.upgrade(engine)  # idempotent
        db.downgrade(engine, "base")
        assert tables(database_url) == {"outcrop_alembic_version"}
        assert db.current(engine) is None
    finally:
        engine.dispose()
    assert main(["db", "upgrade", "--database-url", database_url]) == 0
    assert "revision 0004 (head 0004)" in capsys.readouterr().out
    assert tables(database_url) == TABLES
    assert store.current_seq(db.make_engine(database_url)) == 0


def test_no_migrate_refuses_an_unmigrated_database(database_url, monkeypatch, make_config):
    from outcrop.app import create_app

    monkeypatch.setenv("OUTCROP_NO_MIGRATE", "1")

    async def start_stop() -> None:
        gateway = outcrop.Gateway(outcrop.parse_config(make_config()))
        create_app(gateway=gateway)
        try:
            await gateway.start()
        finally:
            await gateway.stop()

    with pytest.raises(outcrop.ConfigError, match=r"schema revision none.*outcrop db upgrade"):
        asyncio.run(start_stop())
    assert tables(database_url) == set()  # nothing was created
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    asyncio.run(start_stop())  # migrated: --no-migrate starts


def test_unreachable_database_refuses_to_start(gateway_factory, make_config):
    config = make_config(database_url="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(Exception, match="cannot open or migrate"):
        gateway_factory(config)


def test_restart_keeps_keys_spend_and_budgets(gateway_factory, make_config, bedrock_simulator):
    first = gateway_factory(make_config())
    admin = Admin(first.url)
    one_call = 10 * 3e-6 + 5 * 15e-6
    created = admin.generate(max_budget=one_call * 2.5, aws_sigv4=True, key_alias="durable")
    url = f"/bedrock/model/{BEDROCK_ID}/converse"
    for _ in range(2):
        r = httpx.post(
            first.url + url, headers={"x-api-key": created["key"]}, json={"messages": MESSAGES}
        )
        assert r.status_code == 200
    first.server.stop()  # flushes the spend rows on shutdown

    second = gateway_factory(make_config())
    info = Admin(second.url).get("/key/info", key=created["key"])["info"]
    assert info["spend"] == pytest.approx(2 * one_call) and info["key_alias"] == "durable"
    assert len(Admin(second.url).get("/spend/logs", api_key=created["token"])) == 2
    ok = httpx.post(
        second.url + url, headers={"x-api-key": created["key"]}, json={"messages": MESSAGES}
    )
    assert ok.status_code == 200  # 2 calls spent: under 2.5 calls' budget
    over = httpx.post(
        second.url + url, headers={"x-api-key": created["key"]}, json={"messages": MESSAGES}
    )
    assert over.status_code == 429
    # the SigV4 secret survived, encrypted: never stored in plaintext
    engine = db.make_engine(make_config()["general_settings"]["database_url"])
    try:
        row = store.get_key(engine, created["token"])
    finally:
        engine.dispose()
    assert row is not None and created["aws_secret_access_key"] not in json.dumps(row, default=str)
    assert created["key"] not in json.dumps(row, default=str)
    box = tokens.SecretBox("keys-test-salt-key-0123456789")
    assert (
        box.open(created["aws_access_key_id"], row["aws_secret_encrypted"])
        == created["aws_secret_access_key"]
    )
    with pytest.raises(Exception):  # noqa: B017 - AES-GCM refuses another salt key
        tokens.SecretBox("another-salt").open(
            created["aws_access_key_id"], row["aws_secret_encrypted"]
        )


def test_second_instance_sees_changes_within_a_second(
    gateway_factory, make_config, bedrock_simulator
):
    one, two = gateway_factory(make_config()), gateway_factory(make_config())
    key = Admin(one.url).generate()["key"]
    headers = {"x-api-key": key}
    assert wait_for(
        lambda: httpx.get(two.url + "/v1/models", headers=headers).status_code == 200, 1.0
    )
    Admin(one.url).post("/key/block", {"key": key})
    blocked_at = time.monotonic()
    assert wait_for(
        lambda: httpx.get(two.url + "/v1/models", headers=headers).status_code == 403, 2.0
    )
    assert time.monotonic() - blocked_at < 1.0
    Admin(two.url).post("/key/delete", {"keys": [key]})
    assert wait_for(
        lambda: httpx.get(one.url + "/v1/models", headers=headers).status_code == 401, 1.0
    )


def test_cli_direct_and_over_http(database_url, gateway_factory, make_config, capsys):
    def run(*args: str) -> dict:
        capsys.readouterr()
        assert main(["keys", *args]) == 0, capsys.readouterr().err
        lines = capsys.readouterr().out.splitlines()  # the gateway thread logs to stdout too
        start, end = lines.index("{"), len(lines) - lines[::-1].index("}")
        return json.loads("\n".join(lines[start:end]))

    direct = ("--database-url", database_url)
    created = run(
        "create",
        "--alias",
        "cli",
        "--models",
        "nova,bedrock/*",
        "--max-budget",
        "5",
        "--budget-duration",
        "30d",
        *direct,
    )
    assert created["key"].startswith("sk-") and created["models"] == ["nova", "bedrock/*"]
    assert created["budget_reset_at"] is not None
    listed = run("list", *direct)
    assert [k["key_alias"] for k in listed["keys"]] == ["cli"] and "key" not in listed["keys"][0]
    assert run("update", created["key"], "--max-budget", "7", *direct)["max_budget"] == 7
    assert run("block", created["token"], *direct)["blocked"] is True
    assert run("info", created["key"], *direct)["info"]["blocked"] is True

    gw = gateway_factory(make_config())
    remote = ("--url", gw.url, "--master-key", MASTER)
    assert run("unblock", created["key"], *remote)["blocked"] is False
    over_http = run("create", "--alias", "remote", *remote)
    r = httpx.get(gw.url + "/v1/models", headers={"x-api-key": over_http["key"]})
    assert r.status_code == 200
    assert run("delete", created["key"], over_http["key"], *remote)["deleted_keys"]
    assert main(["keys", "info", created["key"], *direct]) == 1
    assert "404: key not found" in capsys.readouterr().err
    assert main(["keys", "list", "--url", gw.url, "--master-key", "sk-wrong"]) == 1
    assert "401" in capsys.readouterr().err


def test_serve_no_migrate_flag_reaches_every_worker(monkeypatch):
    from outcrop.cli import build_parser

    monkeypatch.setenv("OUTCROP_NO_MIGRATE", "")  # whatever the flag sets is undone afterwards
    args = build_parser().parse_args(["serve", "--no-migrate", "--port", "4001"])
    assert args.no_migrate is True and args.port == 4001
    assert os.environ["OUTCROP_NO_MIGRATE"] == "1"  # inherited by --workers processes
    os.environ["OUTCROP_NO_MIGRATE"] = ""
    assert build_parser().parse_args(["serve"]).no_migrate is False
    assert os.environ["OUTCROP_NO_MIGRATE"] == ""
