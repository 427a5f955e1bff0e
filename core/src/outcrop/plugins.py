"""The plugin manager: entry-point discovery, allow/block lists, built-in defaults.

``OUTCROP_PLUGINS=a,b`` loads only those entry points (empty string: none);
``OUTCROP_DISABLE_PLUGINS=a,b`` skips those. Built-in defaults are registered through the same
manager and can be blocked the same way. ``OUTCROP_PLUGINS_DIR=DIR`` (``--plugins-dir``) also
loads every ``DIR/*.py`` file as a plugin named after the file, for trying one out unpackaged.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .providers import registered_prefixes

ENTRY_POINT_GROUP = "outcrop"
#: Built-in implementations, registered like any plugin (name -> module).
DEFAULT_PLUGINS = {
    "outcrop.default_signer": "outcrop.default_plugins.signer",
    "outcrop.default_logger": "outcrop.default_plugins.access_log",
    "outcrop.default_pricing": "outcrop.default_plugins.pricing",
}


#: The environment variable ``outcrop --plugins-dir`` sets (workers inherit it).
PLUGINS_DIR_ENV = "OUTCROP_PLUGINS_DIR"
#: Modules loaded from a plugins directory, by resolved path: each file runs once per process.
_dir_modules: dict[Path, ModuleType] = {}

#: Plugin objects registered in-process (tests, embedding): every new manager gets them.
#: Use ``register_extra``/``unregister_extra`` (the ``outcrop_plugin`` pytest fixture does).
_extra: list[tuple[str, object]] = []
#: Bumped on every change to ``_extra``, so caches of built gateways know they are stale.
generation = 0


def register_extra(plugin: object, name: str | None = None) -> str:
    global generation
    name = name or getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin)}"
    _extra.append((name, plugin))
    generation += 1
    return name


def unregister_extra(plugin: object) -> None:
    global generation
    _extra[:] = [(n, p) for n, p in _extra if p is not plugin]
    generation += 1


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    #: The file of a plugin loaded from a plugins directory.
    path: str | None = None
    #: The model-string prefixes it registered (the routing key), with descriptions.
    models: list[dict[str, str]] = field(default_factory=list)


def _csv(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {v.strip() for v in value.split(",") if v.strip()}


def make_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the hook specs, the defaults and the installed plugins."""
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    allow = _csv("OUTCROP_PLUGINS")
    for name in _csv("OUTCROP_DISABLE_PLUGINS") or ():
        pm.set_blocked(name)  # later registrations under this name are ignored
    for name, module in DEFAULT_PLUGINS.items():
        if not pm.is_blocked(name):
            pm.register(importlib.import_module(module), name=name)
    if load_entry_points:
        if allow is None:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        for name in sorted(allow or ()):
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name)
    directory = os.environ.get(PLUGINS_DIR_ENV)
    for name, plugin in [*(_dir_plugins(Path(directory)) if directory else []), *_extra]:
        if not pm.is_blocked(name) and not pm.has_plugin(name):
            pm.register(plugin, name=name)
    pm.check_pending()  # a misspelt hook name fails loudly at start-up
    return pm


def _dir_plugins(directory: Path) -> list[tuple[str, ModuleType]]:
    """(file stem, module) for every ``*.py`` file of ``directory``, in name order."""
    found = []
    for path in sorted(directory.glob("*.py")):
        path = path.resolve()
        module = _dir_modules.get(path)
        if module is None:
            spec = importlib.util.spec_from_file_location(f"outcrop_plugins_dir.{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _dir_modules[path] = module
        found.append((path.stem, module))
    return found


def plugin_infos(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """Name, distribution, version and implemented hooks of every registered plugin."""
    dists: dict[int, Any] = {id(p): d for p, d in pm.list_plugin_distinfo()}
    prefixes = registered_prefixes(pm)
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda x: x[0]):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        out.append(
            PluginInfo(
                name=name,
                distribution=dist.metadata["Name"] if dist else None,
                version=dist.version if dist else None,
                hooks=hooks,
                path=next((str(f) for f, m in _dir_modules.items() if m is plugin), None),
                models=[
                    {"prefix": p.prefix, "description": p.description, "example": p.example}
                    for p in prefixes.get(name, ())
                ],
            )
        )
    return out
