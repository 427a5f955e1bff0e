"""A wildcard never takes over a configured model_name: asking whether it serves one (as a
native surface does with ``bedrock/{id}``) leaves the configured deployments routed."""

from outcrop import Gateway
from outcrop.config import parse_config

CLAUDE = "bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0"


def test_match_wildcard_leaves_a_configured_name_to_its_deployments():
    gateway = Gateway(
        parse_config(
            {
                "model_list": [
                    {
                        "model_name": "bedrock/*",
                        "litellm_params": {"model": "bedrock/*", "aws_region_name": "us-west-2"},
                        "model_info": {"allowed_models": ["bedrock/us.anthropic.*"]},
                    },
                    {
                        "model_name": CLAUDE,
                        "litellm_params": {"model": CLAUDE, "aws_region_name": "eu-west-1"},
                    },
                ]
            }
        )
    )
    explicit = gateway.deployments(CLAUDE)
    assert [d.params.aws_region_name for d in explicit] == ["eu-west-1"]
    for _ in range(3):  # a wildcard allows it, but its configured deployments keep it
        assert gateway.match_wildcard(CLAUDE) is True
        assert gateway.deployments(CLAUDE) == explicit
        assert gateway.pick(CLAUDE) in explicit
    assert gateway.wildcards.routes == {}  # nothing derived, nothing kept
    # another id the wildcard allows is still its
    other = "bedrock/us.anthropic.claude-3-haiku-20240307-v1:0"
    assert gateway.match_wildcard(other) is True
    assert [d.params.aws_region_name for d in gateway.deployments(other)] == ["us-west-2"]
