"""Plugins touch only the public API: names exported from ``outcrop``, the hook specs, the test
helpers of ``outcrop.testing``, and on the gateway only what ``GatewayAPI`` declares.

Every module of every plugin in the repository (``plugins/*`` and ``docs/examples/*``, sources
and the example's tests) is parsed; any import of another ``outcrop`` module, any unexported
name, and (in sources) any attribute of a gateway outside ``GatewayAPI`` fails the test with its
file and line.
"""

from __future__ import annotations

import ast
import importlib.resources
from pathlib import Path

import pytest

import outcrop
import outcrop.testing
from outcrop import GatewayAPI

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIRS = sorted(
    [*(ROOT / "plugins").iterdir(), *(ROOT / "docs" / "examples").iterdir()],
    key=lambda p: p.name,
)
#: Public modules and what each exports.
PUBLIC = {
    "outcrop": set(outcrop.__all__),
    "outcrop.testing": set(outcrop.testing.__all__),
    "outcrop.hookspecs": None,  # the contract: any hook spec name
}
GATEWAY_API = {name for name in dir(GatewayAPI) if not name.startswith("_")}
#: Names a plugin's code gives the gateway object it was handed.
GATEWAY_NAMES = {"gateway", "_gateway"}


def _files(plugin: Path) -> list[Path]:
    return sorted(p for p in plugin.rglob("*.py") if "migrations" not in p.parts)


def _problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT)
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> outcrop module it names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "outcrop" or alias.name.startswith("outcrop."):
                    if alias.name not in PUBLIC:
                        found.append(f"{where}:{node.lineno}: import {alias.name}")
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = node.module
            if module != "outcrop" and not module.startswith("outcrop."):
                continue
            if module not in PUBLIC:
                found.append(f"{where}:{node.lineno}: from {module} import ...")
                continue
            exported = PUBLIC[module]
            for alias in node.names:
                if exported is not None and alias.name not in exported:
                    found.append(f"{where}:{node.lineno}: {module}.{alias.name} is not exported")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in aliases:
            module = aliases[base.id]
            exported = PUBLIC.get(module)
            if exported is not None and node.attr not in exported:
                found.append(f"{where}:{node.lineno}: {module}.{node.attr} is not exported")
        gateway = (isinstance(base, ast.Name) and base.id in GATEWAY_NAMES) or (
            isinstance(base, ast.Attribute) and base.attr in GATEWAY_NAMES
        )
        # in a plugin's own tests ``gateway`` is the served test gateway, not the object
        if gateway and "src" in path.parts and node.attr not in GATEWAY_API:
            found.append(f"{where}:{node.lineno}: gateway.{node.attr} is not in GatewayAPI")
    return found


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda p: p.name)
def test_plugins_use_only_the_public_api(plugin):
    files = _files(plugin)
    assert files, f"{plugin} has no Python files"
    problems = [line for path in files for line in _problems(path)]
    assert not problems, "private outcrop API used:\n" + "\n".join(problems)


def test_the_checker_catches_private_use(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "src").mkdir()
    bad = tmp_path / "src" / "bad.py"
    bad.write_text(
        "import outcrop\n"
        "from outcrop.eventstream import EventStreamDecoder\n"
        "from outcrop import Router\n"
        "outcrop.gateway\n"
        "def f(gateway):\n"
        "    return gateway.router, gateway.deployments()\n"
    )
    problems = _problems(bad)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "from outcrop.eventstream import ...",
        "outcrop.Router is not exported",
        "outcrop.gateway is not exported",
        "gateway.router is not in GatewayAPI",
    ]


def test_the_gateway_implements_gateway_api():
    gateway = outcrop.Gateway(outcrop.parse_config({}))
    missing = [name for name in GATEWAY_API if not hasattr(gateway, name)]
    assert not missing


def test_the_package_is_typed():
    assert importlib.resources.files("outcrop").joinpath("py.typed").is_file()
