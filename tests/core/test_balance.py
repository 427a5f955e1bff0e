"""Weighted choice between the deployments of one model name: the one helper every picker uses."""

import random
from collections import Counter

from outcrop import parse_config, weighted_choice


def test_picks_in_proportion_to_weight():
    config = parse_config(
        {
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": {"model": "bedrock/agent/A1/B1", "weight": 1},
                },
                {
                    "model_name": "m",
                    "litellm_params": {"model": "bedrock/agent/A2/B2", "weight": 3},
                },
            ]
        }
    )
    random.seed(1234)  # reproducible draws; the bound below holds for any seed with ~4e-7 doubt
    counts = Counter(weighted_choice(config.model_list).index for _ in range(4000))
    assert 0.70 < counts[1] / 4000 < 0.80


def test_a_single_deployment_is_returned_without_a_draw():
    config = parse_config(
        {"model_list": [{"model_name": "m", "litellm_params": {"model": "bedrock/agent/A1/B1"}}]}
    )
    state = random.getstate()
    assert weighted_choice(config.model_list) is config.model_list[0]
    assert random.getstate() == state
