"""``outcrop keys create|list|info|update|delete|block|unblock`` and ``outcrop db upgrade``.

``keys`` commands talk to the database directly (``--config`` / ``--database-url``, or the same
defaults as the gateway), or to a running gateway with ``--url`` and the master key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .settings import NO_MIGRATE_ENV


class _NoMigrate(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        os.environ[NO_MIGRATE_ENV] = "1"  # read at start-up, by every worker
        setattr(namespace, self.dest, True)


def register(subparsers: Any) -> None:
    serve = subparsers.choices.get("serve")
    if serve is not None:
        serve.add_argument(
            "--no-migrate",
            action=_NoMigrate,
            nargs=0,
            default=False,
            help="refuse to start when the key database needs a migration "
            "(outcrop-keys); run `outcrop db upgrade` instead",
        )

    d = subparsers.add_parser("db", help="the key and spend database (outcrop-keys)")
    dsub = d.add_subparsers(dest="db_command", required=True)
    for name, helptext in (
        ("upgrade", "apply every pending migration"),
        ("current", "print the schema revision"),
    ):
        p = dsub.add_parser(name, help=helptext)
        _db_options(p)
        p.set_defaults(func=_db_command)

    k = subparsers.add_parser("keys", help="virtual keys (outcrop-keys)")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key (printed once)")
    _key_fields(create)
    create.add_argument("--aws-sigv4", action="store_true", help="also issue a SigV4 key pair")
    lst = ksub.add_parser("list", help="list keys (never the keys themselves)")
    lst.add_argument("--team", dest="team_id")
    info = ksub.add_parser("info", help="one key, with its spend")
    info.add_argument("key", help="the key or its SHA-256 hash")
    update = ksub.add_parser("update", help="change a key's fields")
    update.add_argument("key", help="the key or its SHA-256 hash")
    _key_fields(update)
    delete = ksub.add_parser("delete", help="delete keys")
    delete.add_argument("keys", nargs="+", help="keys or their SHA-256 hashes")
    for name in ("block", "unblock"):
        p = ksub.add_parser(name, help=f"{name} a key")
        p.add_argument("key", help="the key or its SHA-256 hash")
    for p in (create, lst, info, update, delete, *(ksub.choices[n] for n in ("block", "unblock"))):
        _db_options(p)
        p.add_argument("--url", help="a running gateway (uses its API instead of the database)")
        p.add_argument(
            "--master-key",
            default=os.environ.get("OUTCROP_MASTER_KEY") or os.environ.get("LITELLM_MASTER_KEY"),
            help="with --url (default: $OUTCROP_MASTER_KEY or $LITELLM_MASTER_KEY)",
        )
        p.set_defaults(func=_keys_command)


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="the gateway's config file (for general_settings.database_url)")
    p.add_argument(
        "--database-url", help="sqlite:///path or postgresql://... (overrides the config)"
    )


def _key_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alias", dest="key_alias")
    p.add_argument("--models", help="comma-separated model names or patterns")
    p.add_argument("--max-budget", type=float)
    p.add_argument("--budget-duration", help="30s, 1h, 1d, 30d")
    p.add_argument("--duration", help="expires after this long (30d)")
    p.add_argument("--team", dest="team_id")
    p.add_argument("--tags", help="comma-separated")
    p.add_argument("--allowed-routes", help="comma-separated route patterns (/bedrock/*)")
    p.add_argument("--rpm-limit", type=int)
    p.add_argument("--tpm-limit", type=int)
    p.add_argument("--max-parallel-requests", type=int)
    p.add_argument("--admin", action="store_true", default=None, help="may use the management API")
    p.add_argument("--metadata", help="a JSON object")


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in (
        "key_alias",
        "max_budget",
        "budget_duration",
        "duration",
        "team_id",
        "rpm_limit",
        "tpm_limit",
        "max_parallel_requests",
        "admin",
    ):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    for name in ("models", "tags", "allowed_routes"):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = [v.strip() for v in value.split(",") if v.strip()]
    if getattr(args, "metadata", None):
        body["metadata"] = json.loads(args.metadata)
    if getattr(args, "aws_sigv4", False):
        body["aws_sigv4"] = True
    return body


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, body) of the API call a ``keys`` command is."""
    cmd = args.keys_command
    if cmd == "create":
        return "POST", "/key/generate", _fields(args)
    if cmd == "list":
        query = {"return_full_object": "true", "size": "1000"}
        if args.team_id:
            query["team_id"] = args.team_id
        return "GET", "/key/list?" + urllib.parse.urlencode(query), None
    if cmd == "info":
        return "GET", "/key/info?" + urllib.parse.urlencode({"key": args.key}), None
    if cmd == "update":
        return "POST", "/key/update", {**_fields(args), "key": args.key}
    if cmd == "delete":
        return "POST", "/key/delete", {"keys": args.keys}
    return "POST", f"/key/{cmd}", {"key": args.key}


def _keys_command(args: argparse.Namespace) -> int:
    method, path, body = _request(args)
    try:
        result = (
            _over_http(args, method, path, body) if args.url else _direct(args, method, path, body)
        )
    except _Failed as exc:
        print(f"outcrop keys: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


class _Failed(Exception):
    pass


def _over_http(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None
) -> Any:
    if not args.master_key:
        raise _Failed("--url needs --master-key (or OUTCROP_MASTER_KEY / LITELLM_MASTER_KEY)")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        args.url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"authorization": f"Bearer {args.master_key}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except Exception:
            message = exc.reason
        raise _Failed(f"{exc.code}: {message}") from None
    except OSError as exc:
        raise _Failed(f"cannot reach {args.url}: {exc}") from None


def _engine(args: argparse.Namespace) -> Any:
    from outcrop import ConfigError, load_config

    from . import db

    try:
        config = load_config(args.config) if args.config else None
    except ConfigError as exc:
        raise _Failed("invalid configuration: " + "; ".join(exc.errors)) from None
    url = args.database_url or db.database_url(
        config.general_settings.database_url if config else None, args.config
    )
    return db.make_engine(url), config


def _direct(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None) -> Any:
    from . import db, manage, tokens

    engine, config = _engine(args)
    try:
        db.upgrade(engine)
        cmd = args.keys_command
        if cmd == "create":
            salt = tokens.salt_key(config.general_settings.salt_key if config else None)
            return manage.generate_key(engine, body or {}, salt_key=salt, created_by="cli")
        if cmd == "list":
            return manage.list_keys(
                engine, team_id=args.team_id, key_alias=None, page=1, size=1000, full=True
            )
        if cmd == "info":
            return manage.key_info(engine, args.key)
        if cmd == "update":
            return manage.update_key(engine, body or {})
        if cmd == "delete":
            return manage.delete_keys(engine, body or {})
        return manage.set_blocked(engine, args.key, cmd == "block")
    except manage.ManageError as exc:
        raise _Failed(f"{exc.status}: {exc.message}") from None
    finally:
        engine.dispose()


def _db_command(args: argparse.Namespace) -> int:
    from . import db

    try:
        engine, _ = _engine(args)
    except _Failed as exc:
        print(f"outcrop db: {exc}", file=sys.stderr)
        return 1
    try:
        if args.db_command == "upgrade":
            db.upgrade(engine)
        print(f"{db.describe(str(engine.url))}: revision {db.current(engine)} (head {db.head()})")
        return 0
    except Exception as exc:
        print(f"outcrop db: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
