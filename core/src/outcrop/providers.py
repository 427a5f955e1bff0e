"""Which plugin serves a model string, and that plugin's own provider hooks.

Each plugin registers the model-string prefixes it serves (``outcrop_register_models``); a model
string belongs to the plugin that registered the longest prefix it starts with. Only that
plugin's ``outcrop_parse_route`` is asked about it, and only its translate and map-error hooks
are called for its calls, so no provider needs to check that a call is its own.

When two plugins register the same prefix, a *provider* (a plugin that translates chat or
embeddings calls) owns it over a plugin that only serves the model on its own routes (the native
pass-through), which then finds the deployments through the gateway. Two providers registering the
same prefix is a configuration error.

Everything is resolved once, when the gateway is built: a call looks its provider up in a dict
and calls the plugin's functions directly (no pluggy dispatch over every installed plugin).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pluggy

from .errors import ConfigError
from .hookcalls import HookFunction, direct
from .types import ModelPrefix

#: The hooks answered only by the plugin that claimed the call's model.
PROVIDER_HOOKS = (
    "outcrop_parse_route",
    "outcrop_translate_request",
    "outcrop_translate_response",
    "outcrop_map_error",
    "outcrop_translate_embeddings_request",
    "outcrop_translate_embeddings_response",
)
#: Implementing one of these makes a plugin a provider (it owns a prefix it shares).
_TRANSLATING = ("outcrop_translate_request", "outcrop_translate_embeddings_request")


@dataclass(slots=True)
class Provider:
    """One plugin's provider hooks (``None`` where it does not implement one)."""

    name: str
    prefixes: list[ModelPrefix] = field(default_factory=list)
    parse_route: HookFunction | None = None
    translate_request: HookFunction | None = None
    translate_response: HookFunction | None = None
    map_error: HookFunction | None = None
    translate_embeddings_request: HookFunction | None = None
    translate_embeddings_response: HookFunction | None = None

    @property
    def translates(self) -> bool:
        return self.translate_request is not None or self.translate_embeddings_request is not None


def registered_prefixes(pm: pluggy.PluginManager) -> dict[str, list[ModelPrefix]]:
    """Plugin name -> the prefixes its ``outcrop_register_models`` registers, in hook order."""
    found: dict[str, list[ModelPrefix]] = {}
    for impl in reversed(pm.hook.outcrop_register_models.get_hookimpls()):  # call order
        direct(impl)(register=found.setdefault(impl.plugin_name, []).append)
    return found


class ModelClaims:
    """The registered prefixes, longest first, each with the plugin that owns it."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.providers: dict[str, Provider] = {}
        #: Every registration, in the order the hooks answered (``outcrop plugins``, demo).
        self.prefixes: list[ModelPrefix] = []
        for name, prefixes in registered_prefixes(pm).items():
            self.providers[name] = Provider(name, prefixes)
            self.prefixes.extend(prefixes)
        for hook in PROVIDER_HOOKS:
            for impl in getattr(pm.hook, hook).get_hookimpls():
                provider = self.providers.get(impl.plugin_name)
                if provider is not None:
                    setattr(provider, hook.removeprefix("outcrop_"), direct(impl))
        owners: dict[str, Provider] = {}
        clashes: list[str] = []
        for provider in self.providers.values():
            for p in provider.prefixes:
                held = owners.get(p.prefix)
                if (
                    held is None
                    or held is provider
                    or (provider.translates and not held.translates)
                ):
                    owners[p.prefix] = provider
                elif provider.translates == held.translates:
                    clashes.append(
                        f"model prefix {p.prefix!r} is registered by plugins {held.name!r} and "
                        f"{provider.name!r}: disable one (OUTCROP_DISABLE_PLUGINS)"
                    )
        if clashes:
            raise ConfigError(clashes)
        self._owners = owners
        #: (prefix, owner), longest prefix first: the first match is the routing key.
        self._table = sorted(owners.items(), key=lambda item: len(item[0]), reverse=True)

    def owners(self) -> list[tuple[str, Provider]]:
        """Every registered prefix with the plugin that owns it, in registration order."""
        return list(self._owners.items())

    def owner(self, model: str) -> tuple[str, Provider] | None:
        """The longest registered prefix ``model`` starts with, and the plugin that owns it."""
        for prefix, provider in self._table:
            if model.startswith(prefix):
                return prefix, provider
        return None
