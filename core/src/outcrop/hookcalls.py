"""Per-request hooks called without pluggy's dispatch: the implementations, resolved at start-up.

A pluggy hook call costs a few microseconds even with no implementation; on the request path
(``outcrop_admit``, ``outcrop_sign_request``, ``outcrop_after_call`` ...) the gateway instead
calls each implementation's function directly, in pluggy's order, and skips a hook nobody
implements. A hook with a wrapper implementation keeps pluggy's dispatch (wrappers need it).
The list is rebuilt whenever the plugin set changes (``Gateway.register_plugin``, start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

HookFunction = Callable[..., Any]


def direct(impl: pluggy.HookImpl) -> HookFunction:
    """Call one implementation with the hook's keyword arguments, passing only the ones it
    declares (as pluggy does)."""
    function = impl.function
    names = impl.argnames

    def call(**kwargs: Any) -> Any:
        return function(*[kwargs[n] for n in names])

    return call


def callers(pm: pluggy.PluginManager, name: str) -> list[HookFunction] | None:
    """The implementations of hook ``name`` as direct callables in pluggy's call order (empty:
    nobody implements it), or ``None`` when a wrapper needs pluggy's own dispatch."""
    impls = getattr(pm.hook, name).get_hookimpls()
    if any(i.wrapper or i.hookwrapper for i in impls):
        return None
    return [direct(i) for i in reversed(impls)]  # pluggy calls the last registered first


def first(fns: list[HookFunction] | None, hook: Any, **kwargs: Any) -> Any:
    """A first-result-wins hook's answer (``hook``, pluggy's caller, when ``fns`` is ``None``)."""
    if fns is None:
        return hook(**kwargs)
    for fn in fns:
        result = fn(**kwargs)
        if result is not None:
            return result
    return None


def every(fns: list[HookFunction] | None, hook: Any, **kwargs: Any) -> list[Any]:
    """Every implementation's answer that is not ``None``, as pluggy collects them."""
    if fns is None:
        return hook(**kwargs)  # type: ignore[no-any-return]
    results = []
    for fn in fns:
        result = fn(**kwargs)
        if result is not None:
            results.append(result)
    return results
