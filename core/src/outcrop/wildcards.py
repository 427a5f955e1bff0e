"""Wildcard deployments: a ``model_name`` with ``*`` (LiteLLM's wildcard routing) serves every
model string it matches that its operator allowed.

A caller's model string is matched against each wildcard ``model_name`` (``*`` matches any
text; the whole string must match), most specific pattern first (LiteLLM's order: the longest
pattern). Each ``*`` of the deployment's ``litellm_params.model`` is filled in with what the
corresponding ``*`` matched (a model without ``*`` is used as it is), and the result must
match one of the deployment's ``model_info.allowed_models`` (``fnmatch`` patterns, as keys'
``models``): a key holder reaches only the model ids the operator listed. The concrete model
string then goes to the plugin that claims it, like a configured one (its checks, region and
ARN validation included).

Each concrete model string that served becomes a group of *derived* deployments (one per
wildcard deployment that allows it, with its settings), routed by the router like any
``model_name``: retries, failover between them, cooldowns. ``Deployment.id`` stays the
wildcard deployment's (its caps and counters are the configured deployment's). At most
``MAX_GROUPS`` groups are kept; the least recently used goes first.
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from .config import Deployment
from .errors import OutcropError, clip
from .routing import Router
from .types import ModelRoute

#: Concrete model strings kept with their derived deployments (least recently used dropped).
MAX_GROUPS = 1024


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """``bedrock/*`` -> ``bedrock/(.*)``: each ``*`` captures what it matched."""
    return re.compile(re.escape(pattern).replace(r"\*", "(.*)"), re.DOTALL)


def fill_in(template: str, parts: tuple[str, ...], requested: str) -> str:
    """``template`` (a deployment's model) with its ``*`` replaced by ``parts`` in order
    (LiteLLM's rule: no ``*``: the template itself; more parts than ``*``: the request)."""
    if "*" not in template:
        return template
    if len(parts) > template.count("*"):
        return requested
    for part in parts:
        template = template.replace("*", part, 1)
    return template


def allowed(model: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(model, p) for p in patterns)


def allowed_models(deployment: Deployment) -> list[str]:
    """A wildcard deployment's ``model_info.allowed_models`` (checked at load time)."""
    return list(deployment.model_info.get("allowed_models") or ())


class Wildcards:
    """The wildcard deployments, and the groups derived from them so far (registered with
    the router under the concrete model string, so ``Router.pick`` serves them)."""

    def __init__(
        self,
        deployments: list[Deployment],
        first_index: int,
        parse: Callable[[Deployment], ModelRoute],
        router: Router,
    ) -> None:
        patterns: dict[str, list[Deployment]] = {}
        for d in deployments:
            patterns.setdefault(d.model_name, []).append(d)
        # LiteLLM's specificity: longer patterns first, then more wildcards
        ordered = sorted(patterns.items(), key=lambda p: (len(p[0]), p[0].count("*")), reverse=True)
        self._patterns = [(pattern_regex(name), group) for name, group in ordered]
        self._parse = parse
        self._router = router
        #: The configured model_names and aliases: theirs, never a wildcard's (a group derived
        #: under one of these names would replace its deployments in the router).
        self._configured = frozenset(router.names())
        self._next_index = first_index
        #: model string -> its derived deployments, most recently used last.
        self._groups: OrderedDict[str, list[Deployment]] = OrderedDict()
        #: derived deployment index -> its route (kept while its group is).
        self.routes: dict[int, ModelRoute] = {}

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, model: str) -> bool:
        """Whether a wildcard serves ``model`` (then the router has a group of that name).
        Raises ``OutcropError`` (400) when patterns match but none of their deployments may
        call it, with the reason (not allowed, or the claiming plugin's own error). A
        configured ``model_name`` (or alias) keeps its own deployments: the answer says
        whether a wildcard allows it, and no group is derived (one would replace them)."""
        configured = model in self._configured
        if not configured and model in self._groups:
            self._groups.move_to_end(model)
            return True
        refusals: list[str] = []
        routes: dict[int, ModelRoute] = {}
        for regex, templates in self._patterns:
            found = regex.fullmatch(model)
            if found is None:
                continue
            derived = []
            for template in templates:
                concrete = fill_in(template.params.model, found.groups(), model)
                patterns = allowed_models(template)
                if not allowed(concrete, patterns):
                    refusals.append(
                        f"{clip(concrete)!r} is not in the allowed_models of wildcard "
                        f"{template.model_name!r} ({', '.join(patterns)})"
                    )
                    continue
                d = self._derive(template, model, concrete)
                try:
                    routes[d.index] = self._parse(d)
                except OutcropError as exc:
                    refusals.append(exc.message)
                    continue
                derived.append(d)
            if derived:
                if not configured:
                    self.routes.update(routes)
                    self._keep(model, derived)
                return True
        if not refusals:
            return False
        raise OutcropError(
            f"model {clip(model)!r} is not served: {'; '.join(dict.fromkeys(refusals))}",
            400,
            code="model_not_found",
            param="model",
        )

    def _derive(self, template: Deployment, model: str, concrete: str) -> Deployment:
        index = self._next_index
        self._next_index += 1
        return Deployment(
            model_name=model,
            params=msgspec.structs.replace(template.params, model=concrete),
            index=index,
            model_info={**template.model_info, "id": template.id},
        )

    def _keep(self, model: str, derived: list[Deployment]) -> None:
        self._groups[model] = derived
        self._router.add_group(model, derived)
        while len(self._groups) > MAX_GROUPS:
            name, old = self._groups.popitem(last=False)
            self._router.drop_group(name)
            for d in old:
                self.routes.pop(d.index, None)
