"""Load balancing between the deployments of one model name (``litellm_params.weight``)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from .config import Deployment


def weighted_choice(deployments: Sequence[Deployment]) -> Deployment:
    """One of ``deployments`` (not empty), at random in proportion to their weights."""
    if len(deployments) == 1:
        return deployments[0]
    return random.choices(deployments, weights=[d.params.weight for d in deployments])[0]
