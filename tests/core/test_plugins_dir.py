"""`--plugins-dir DIR`: every DIR/*.py file is a plugin, for trying one out without packaging it."""

import json
import os
import subprocess
import sys
import textwrap

import httpx

from outcrop.plugins import PLUGINS_DIR_ENV, make_plugin_manager, plugin_infos

from .procs import Served

PY = sys.executable
HELLO = textwrap.dedent("""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    import outcrop


    async def hello(request):
        return PlainTextResponse("hello from a plugins dir")


    @outcrop.hookimpl
    def outcrop_register_routes(register, gateway):
        register(Route("/hello", hello))
""")


def plugins_dir(tmp_path):
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "hello.py").write_text(HELLO)
    (directory / "notes.txt").write_text("not a plugin")
    return directory


def test_each_file_is_a_plugin_named_after_it(tmp_path, monkeypatch, gateway_factory):
    directory = plugins_dir(tmp_path)
    monkeypatch.setenv(PLUGINS_DIR_ENV, str(directory))
    infos = {i.name: i for i in plugin_infos(make_plugin_manager())}
    assert infos["hello"].hooks == ["outcrop_register_routes"]
    assert infos["hello"].path == str((directory / "hello.py").resolve())
    assert "notes" not in infos
    assert httpx.get(gateway_factory({}).url + "/hello").text == "hello from a plugins dir"
    monkeypatch.setenv("OUTCROP_DISABLE_PLUGINS", "hello")
    assert "hello" not in {i.name for i in plugin_infos(make_plugin_manager())}


def test_outcrop_serve_and_plugins_take_the_option(tmp_path):
    directory = plugins_dir(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != PLUGINS_DIR_ENV}
    listed = subprocess.run(
        [PY, "-m", "outcrop", "plugins", "--json", "--plugins-dir", str(directory)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    (hello,) = [p for p in json.loads(listed.stdout) if p["name"] == "hello"]
    assert hello["hooks"] == ["outcrop_register_routes"] and hello["path"].endswith("hello.py")

    command = [PY, "-m", "outcrop", "serve", "--plugins-dir", str(directory)]
    with Served([*command, "--host", "127.0.0.1"], env=env) as server:
        assert httpx.get(f"{server.url}/hello").text == "hello from a plugins dir"
        server.stop(timeout=30)


def test_a_missing_directory_is_a_clear_error(tmp_path):
    r = subprocess.run(
        [PY, "-m", "outcrop", "serve", "--plugins-dir", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr
