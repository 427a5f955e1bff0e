"""The ``outcrop`` command: serve, demo, check-config, plugins, simulate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

from .config import Config, load_config, parse_config
from .errors import ConfigError
from .limits import WORKERS_ENV
from .logs import configure_logging, get_logger
from .loopback import is_loopback
from .serving.options import Listen, ServerOptions

if TYPE_CHECKING:
    from .gateway import Gateway

log = get_logger("outcrop.cli")


def _print_config_errors(exc: ConfigError, source: str | None) -> int:
    print(f"outcrop: invalid configuration{f' in {source}' if source else ''}:", file=sys.stderr)
    for line in exc.errors:
        print(f"  {line}", file=sys.stderr)
    return 2


def _load(path: str | None) -> Config:
    return load_config(path) if path else parse_config({})


def bind_host(requested: str | None, gateway: Gateway) -> str:
    """The address to serve on: ``--host``, else 127.0.0.1 for an open gateway and 0.0.0.0
    (every interface, like LiteLLM) once callers must authenticate. Raises ``ConfigError`` for
    a non-loopback address without client authentication nor ``allow_unauthenticated``."""
    open_ = not gateway.requires_auth
    allowed = gateway.config.general_settings.allow_unauthenticated
    host = requested or ("127.0.0.1" if open_ and not allowed else "0.0.0.0")
    if open_ and not allowed and not is_loopback(host):
        raise ConfigError(
            [
                f"--host {host}: refusing to serve without client authentication on a non-loopback "
                "address; set general_settings.master_key (or OUTCROP_MASTER_KEY), serve on "
                "127.0.0.1, or set general_settings.allow_unauthenticated: true"
            ]
        )
    return host


def _run_server(app: Any, listen: Listen) -> int:
    """hypercorn with Outcrop's transport limits (outcrop.serving); returns the exit code."""
    from .serving.options import hypercorn_config
    from .serving.worker import serve
    from .serving.workers import run_workers

    options = listen.options
    hc = hypercorn_config(options, listen.bind, certfile=listen.certfile, keyfile=listen.keyfile)
    if listen.workers > 1:
        return run_workers(hc, options, listen.workers, listen.log_level)
    loop_factory = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(app, hc, options))
    return 0


def _run_uvicorn(app: Any, listen: Listen) -> int:
    """The optional uvicorn server (``pip install 'outcrop[uvicorn]'``): measurably faster per
    core than hypercorn on this app (see docs/performance.md); HTTP/1.1 only. uvicorn has no
    request-header timeout: ``header_timeout`` applies to hypercorn alone (docs/server.md)."""
    import uvicorn

    from .serving.parent import export_supervisor

    options = listen.options
    settings: dict[str, Any] = {
        "host": listen.host,
        "port": listen.port,
        "access_log": False,  # Outcrop writes its own access log
        "log_level": "warning",
        "timeout_keep_alive": options.keep_alive_timeout,
        "timeout_graceful_shutdown": options.graceful_timeout,
        # uvicorn answers 503 past this many connections plus in-flight requests.
        "limit_concurrency": options.connection_cap,
        "h11_max_incomplete_event_size": 16 * 1024,
        "ssl_certfile": listen.certfile,
        "ssl_keyfile": listen.keyfile,
        "loop": "uvloop" if _importable("uvloop") else "asyncio",
        "http": "httptools" if _importable("httptools") else "h11",
    }
    if listen.workers > 1:
        export_supervisor()  # its workers end with it (outcrop.server)
        uvicorn.run("outcrop.server:app", workers=listen.workers, **settings)
    else:
        uvicorn.run(app, **settings)
    return 0


def _run_granian(app: Any, listen: Listen) -> int:
    """The optional granian server (``pip install 'outcrop[granian]'``), HTTP/1.1 only; its
    workers load ``outcrop.server:app`` (docs/server.md lists what it applies)."""
    from .serving.granian import run_granian

    return run_granian(listen)


_SERVERS = {"hypercorn": _run_server, "uvicorn": _run_uvicorn, "granian": _run_granian}


def port_problem(host: str, port: int) -> str | None:
    """One line saying why ``host:port`` cannot be served (in use, not an address here), or
    ``None``: checked before serving, so a busy port is not a traceback."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"outcrop: port {port} on {host} is already in use (another outcrop or "
                    "LiteLLM?); stop it or choose another port with --port"
                )
            return f"outcrop: cannot serve on {host}:{port}: {exc.strerror or exc}"
    return None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import create_app
    from .gcfreeze import freeze_after_startup
    from .gcfreeze import resume as resume_collector
    from .serving.shared import shared_dir

    configure_logging(args.log_level)
    if args.server != "hypercorn" and not _importable(args.server):
        print(
            f"outcrop: --server {args.server} needs {args.server}: "
            f"pip install 'outcrop[{args.server}]'",
            file=sys.stderr,
        )
        return 2
    os.environ[WORKERS_ENV] = str(args.workers)  # workers inherit it; checks need the count
    try:
        app = create_app(_load(args.config))
        host = bind_host(args.host, app.state.gateway)
        if args.strict:
            _strict(app.state.gateway)
    except ConfigError as exc:
        return _print_config_errors(exc, args.config)
    if args.config:
        os.environ["OUTCROP_CONFIG"] = os.path.abspath(args.config)
    scheme = "https" if args.certfile else "http"
    log.info(
        "starting",
        url=f"{scheme}://{host}:{args.port}",
        workers=args.workers,
        server=args.server,
        models=app.state.gateway.router.names(),
    )
    options = ServerOptions.from_settings(
        app.state.gateway.config.general_settings, http2=args.http2
    )
    if options.http2 and args.server != "hypercorn":
        print(
            f"outcrop: HTTP/2 (--http2 or general_settings.http2) needs the default server "
            f"(hypercorn), not {args.server}",
            file=sys.stderr,
        )
        return 2
    busy = port_problem(host, args.port)
    if busy:
        print(busy, file=sys.stderr)
        return 2
    run = _SERVERS[args.server]
    if args.workers > 1 or args.server == "granian":
        resume_collector()  # the app starts in worker processes, not in this one
    with shared_dir() if args.workers > 1 else contextlib.nullcontext():
        listen = Listen(
            host,
            args.port,
            certfile=args.certfile,
            keyfile=args.keyfile,
            workers=args.workers,
            options=options,
            log_level=args.log_level,
        )
        return run(freeze_after_startup(app), listen)


def cmd_check_config(args: argparse.Namespace) -> int:
    from .gateway import Gateway

    try:
        gateway = Gateway(load_config(args.file))
        if args.strict:
            _strict(gateway)
    except ConfigError as exc:
        return _print_config_errors(exc, args.file)
    names = gateway.router.names()
    print(
        f"{args.file}: OK ({len(gateway.config.model_list)} deployments, {len(names)} model names)"
    )
    for d in gateway.config.model_list:
        if d.index not in gateway.routes:  # a wildcard: its routes are per model string
            allowed = ", ".join(d.model_info.get("allowed_models") or ())
            print(f"  {d.model_name:30} -> {d.params.model}  [wildcard; allowed: {allowed}]")
            continue
        route = gateway.routes[d.index]
        print(f"  {d.model_name:30} -> {d.params.model}  [{route.provider}]")
    print(f"client authentication: {_auth_summary(gateway)}")
    print(f"router: {_router_summary(gateway)}")
    if gateway.ignored_settings:
        print("accepted for LiteLLM compatibility and ignored:")
        for line in gateway.ignored_settings:
            print(f"  {line}")
    return 0


def _router_summary(gateway: Gateway) -> str:
    r = gateway.config.router_settings
    parts = [r.routing_strategy, f"num_retries {r.num_retries}"]
    limits = gateway.router.retry_limits(None)
    if limits:
        parts.append("retry_policy: " + ", ".join(f"{c} {n}" for c, n in limits.items()))
    for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        pairs = [f"{k} -> {', '.join(v)}" for entry in getattr(r, kind) for k, v in entry.items()]
        if pairs:
            parts.append(f"{kind}: {'; '.join(pairs)}")
    if r.disable_cooldowns:
        parts.append("cooldowns off")
    else:
        parts.append(f"cooldown {r.cooldown_time:g}s after {r.allowed_fails} fails in a minute")
    aliases = [f"{a} -> {t.model}{' (hidden)' if t.hidden else ''}" for a, t in r.aliases().items()]
    if aliases:
        parts.append(f"aliases: {', '.join(aliases)}")
    if gateway.router.tag_routing:
        parts.append("tag routing" + (" (any tag)" if r.tag_filtering_match_any else " (all tags)"))
    return "; ".join(parts)


def _strict(gateway: Gateway) -> None:
    """``--strict``: a LiteLLM key accepted and ignored is an error."""
    if gateway.ignored_settings:
        raise ConfigError(
            [
                f"{line} (accepted for compatibility and ignored; --strict refuses it)"
                for line in gateway.ignored_settings
            ]
        )


def _auth_summary(gateway: Gateway) -> str:
    config = gateway.config
    if gateway.master_key:
        return f"master key (from {config.master_key_source})"
    if gateway.requires_auth:
        return "keys configured by a plugin section; no master key"
    if config.general_settings.allow_unauthenticated:
        return "NONE: every caller is accepted on any address (allow_unauthenticated: true)"
    return "NONE: every caller is accepted, so the gateway serves on loopback only"


def cmd_plugins(args: argparse.Namespace) -> int:
    import msgspec

    from .plugins import make_plugin_manager, plugin_infos

    infos = plugin_infos(make_plugin_manager())
    if not args.all:
        infos = [i for i in infos if not i.name.startswith("outcrop.default")]
    if args.json:
        print(msgspec.json.encode([i.__dict__ for i in infos]).decode())
        return 0
    if not infos:
        print("No plugins installed. Install one, e.g. `pip install outcrop-bedrock-agent`.")
    for info in infos:
        builtin = "built-in" if info.name.startswith("outcrop.") else "in-process"
        where = f"{info.distribution} {info.version}" if info.distribution else info.path or builtin
        print(f"{info.name} ({where})")
        for model in info.models:
            print(f"    serves {model['prefix']}...  {model['description']}")
        for hook in info.hooks:
            print(f"    {hook}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .testing import TEST_ACCESS_KEY, TEST_SECRET_KEY
    from .testing.simulator import BedrockSimulator

    configure_logging(args.log_level)
    print(
        f"Bedrock simulator on http://{args.host}:{args.port} "
        f"(credentials: {TEST_ACCESS_KEY} / {TEST_SECRET_KEY})",
        flush=True,
    )
    _run_server(BedrockSimulator(), Listen(args.host, args.port))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    configure_logging(args.log_level)
    busy = port_problem(args.host, args.port)
    if busy:
        print(busy, file=sys.stderr)
        return 2
    return run_demo(host=args.host, port=args.port, run_server=_run_server)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(
        prog="outcrop", description="A fast, pluggable gateway for Amazon Bedrock."
    )
    p.add_argument("--version", action="version", version=f"outcrop {__version__}")
    # `outcrop --config FILE` serves, like `litellm --config FILE`.
    p.add_argument("--config", help="config file (YAML); serves the gateway")
    _serve_options(p)
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("serve", help="serve the gateway")
    s.add_argument("--config", help="config file (YAML)")
    _serve_options(s)
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("check-config", help="validate a config file without serving")
    c.add_argument("file")
    c.add_argument("--strict", action="store_true", help=_STRICT_HELP)
    _plugins_dir_option(c)
    c.set_defaults(func=cmd_check_config)

    pl = sub.add_parser("plugins", help="list installed plugins and their hooks")
    pl.add_argument("--all", action="store_true", help="include the built-in defaults")
    pl.add_argument("--json", action="store_true")
    _plugins_dir_option(pl)
    pl.set_defaults(func=cmd_plugins)

    sim = sub.add_parser("simulate", help="run the Bedrock simulator (tests, demos)")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9000)
    sim.add_argument("--log-level", default="INFO")
    sim.set_defaults(func=cmd_simulate)

    d = sub.add_parser("demo", help="serve every installed plugin against a built-in simulator")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=4000)
    d.add_argument("--log-level", default="INFO")
    d.set_defaults(func=cmd_demo)

    from .plugins import make_plugin_manager

    make_plugin_manager().hook.outcrop_register_commands(subparsers=sub)
    return p


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        help="address to serve on (default: 127.0.0.1 without client "
        "authentication, 0.0.0.0 with it)",
    )
    p.add_argument("--port", type=int, default=4000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--server",
        choices=tuple(_SERVERS),
        default="hypercorn",
        help="ASGI server (uvicorn and granian are optional extras: "
        "pip install 'outcrop[uvicorn]' or 'outcrop[granian]')",
    )
    p.add_argument("--certfile", help="TLS certificate (PEM); serves HTTPS")
    p.add_argument("--keyfile", help="TLS private key (PEM)")
    p.add_argument(
        "--http2",
        action="store_true",
        help="serve HTTP/2 too (general_settings.http2); off by default",
    )
    p.add_argument("--log-level", default=os.environ.get("OUTCROP_LOG_LEVEL", "INFO"))
    p.add_argument("--strict", action="store_true", help=_STRICT_HELP)
    _plugins_dir_option(p)


_STRICT_HELP = "refuse LiteLLM keys Outcrop accepts for compatibility and ignores"


def _plugins_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--plugins-dir",
        metavar="DIR",
        help="also load every DIR/*.py file as a plugin (try one without packaging it)",
    )


def _use_plugins_dir(argv: list[str] | None) -> str | None:
    """Honour ``--plugins-dir`` before the parser is built (plugins may add commands); the
    environment carries it to the plugin manager of this process and of its workers."""
    pre = argparse.ArgumentParser(add_help=False)
    _plugins_dir_option(pre)
    directory = pre.parse_known_args(argv)[0].plugins_dir
    if directory is None:
        return None
    if not os.path.isdir(directory):
        return f"outcrop: --plugins-dir {directory}: not a directory"
    from .plugins import PLUGINS_DIR_ENV

    os.environ[PLUGINS_DIR_ENV] = os.path.abspath(directory)
    return None


def main(argv: list[str] | None = None) -> int:
    from .gcfreeze import pause_until_started, resume

    problem = _use_plugins_dir(argv)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    pause_until_started()  # `serve` turns it back on once started (outcrop.gcfreeze)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func = getattr(args, "func", None) or cmd_serve  # `outcrop [--config FILE]` serves
        if func is not cmd_serve:
            resume()
        if getattr(args, "certfile", None) and not getattr(args, "keyfile", None):
            parser.error("--certfile needs --keyfile")
        return int(func(args) or 0)
    finally:
        resume()


if __name__ == "__main__":
    sys.exit(main())
