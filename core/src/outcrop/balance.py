"""Load balancing between the deployments of one model name (``litellm_params.weight``)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from .config import Deployment


def weighted_choice(deployments: Sequence[Deployment]) -> Deployment:
    """One of ``deployments`` (not empty), at random in proportion to their weights."""
    if len(deployments) == 1:
        return deployments[0]
    return random.choices(deployments, weights=[d.params.weight for d in deployments])[0]


def cumulative_weights(deployments: Sequence[Deployment]) -> list[float] | None:
    """The running sums of ``deployments``' weights, for ``choose``; ``None`` when they are all
    equal (a plain random choice then does the same, faster)."""
    weights = [d.params.weight for d in deployments]
    if len(set(weights)) <= 1:
        return None
    return list(itertools.accumulate(weights))


def choose(deployments: Sequence[Deployment], cumulative: list[float] | None) -> Deployment:
    """``weighted_choice`` with the weights summed once beforehand (``cumulative_weights``)."""
    if len(deployments) == 1:
        return deployments[0]
    if cumulative is None:
        return deployments[int(random.random() * len(deployments))]
    return random.choices(deployments, cum_weights=cumulative)[0]
