"""A virtual key's ``tags`` join the tags of every call it makes, so tag routing
(``router_settings.enable_tag_filtering``) sends a key's calls to the deployments of its tags,
as LiteLLM's key tags do; the request's own tags still count. Through the OpenAI SDK (a
virtual key) and boto3 (the key's issued SigV4 pair) against the simulator, both engines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from outcrop.testing import ConverseReply
from tests.clients import sigv4_client

from .conftest import MASTER, Admin

NOVA = "bedrock/amazon.nova-lite-v1:0"
#: The region each tag's deployment is signed for: what tells them apart at the simulator.
PAID, FREE = "us-east-1", "eu-west-1"
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def gw(
    gateway_factory: Callable[..., Any],
    simulator_params: Callable[..., dict[str, Any]],
    bedrock_simulator: Any,
    database_url: str,
) -> Any:
    bedrock_simulator.reset()
    bedrock_simulator.reply(ConverseReply("Hello", usage=(3, 2)), operation="Converse")
    return gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "nova",
                    "litellm_params": simulator_params(NOVA, aws_region_name=PAID, tags=["paid"]),
                },
                {
                    "model_name": "nova",
                    "litellm_params": simulator_params(NOVA, aws_region_name=FREE, tags=["free"]),
                },
            ],
            "router_settings": {"enable_tag_filtering": True},
            "general_settings": {"master_key": MASTER, "database_url": database_url},
        }
    )


def _regions(bedrock_simulator: Any, call: Callable[[], Any], times: int = 6) -> set[str]:
    regions = set()
    for _ in range(times):
        call()
        regions.add(bedrock_simulator.last("Converse").region)
    return regions


def test_a_keys_tags_route_its_calls_on_every_surface(gw: Any, bedrock_simulator: Any) -> None:
    admin = Admin(gw.url)
    for tag, region in (("paid", PAID), ("free", FREE)):
        created = admin.generate(tags=[tag], aws_sigv4=True)
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key=created["key"], max_retries=0)
        chat = _regions(
            bedrock_simulator, lambda c=client: c.chat.completions.create(model="nova", messages=HI)
        )
        assert chat == {region}, tag
        boto3 = sigv4_client(
            "bedrock-runtime",
            gw.url,
            created["aws_access_key_id"],
            created["aws_secret_access_key"],
        )
        converse = _regions(
            bedrock_simulator,
            lambda b=boto3: b.converse(
                modelId="nova", messages=[{"role": "user", "content": [{"text": "Hi"}]}]
            ),
        )
        assert converse == {region}, tag


def test_the_requests_own_tags_join_the_keys(gw: Any, bedrock_simulator: Any) -> None:
    """With ``tag_filtering_match_any`` (the default) a deployment with any of the tags serves:
    a key tagged ``free`` asking for ``paid`` too may get either; a key without tags gets what
    its request asks for."""
    admin = Admin(gw.url)
    untagged = admin.generate()
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=untagged["key"], max_retries=0)
    paid = _regions(
        bedrock_simulator,
        lambda: client.chat.completions.create(
            model="nova", messages=HI, extra_body={"tags": ["paid"]}
        ),
    )
    assert paid == {PAID}
    free_key = admin.generate(tags=["free"])
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=free_key["key"], max_retries=0)
    both = _regions(
        bedrock_simulator,
        lambda: client.chat.completions.create(
            model="nova", messages=HI, extra_headers={"x-litellm-tags": "paid"}
        ),
        times=24,
    )
    assert both == {PAID, FREE}
