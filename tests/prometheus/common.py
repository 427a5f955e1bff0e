"""Shared by the prometheus tests: a gateway config with ``callbacks: ["prometheus"]`` in front of the simulator (chat through
the Converse plugin, ``/bedrock/*`` through the pass-through), and a scrape parsed by
``prometheus_client``'s own text parser."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.clients import deployment_params, passthrough_section, sigv4_client

NOVA = "amazon.nova-lite-v1:0"
MASTER_KEY = "sk-prometheus-master"
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
SDK_KEY_ID = "OUTCROPPROMKEY0001"
SDK_SECRET = "outcrop-prometheus-secret-000000001"


def gateway_config(simulator_url: str, **extra: Any) -> dict[str, Any]:
    """One Converse deployment ``nova`` and the pass-through, both on the simulator."""
    params = deployment_params(
        simulator_url,
        f"bedrock/converse/{NOVA}",
        input_cost_per_token=0.001,
        output_cost_per_token=0.002,
    )
    return {
        "model_list": [{"model_name": "nova", "litellm_params": params}],
        "litellm_settings": {"callbacks": ["prometheus"]},
        "general_settings": {"master_key": MASTER_KEY},
        "bedrock_passthrough": passthrough_section(simulator_url, SDK_KEY_ID, SDK_SECRET),
        **extra,
    }


def runtime_client(url: str) -> Any:
    """boto3 bedrock-runtime on the gateway's ``/bedrock`` (SigV4 with the configured pair)."""
    return sigv4_client("bedrock-runtime", url, SDK_KEY_ID, SDK_SECRET)


class Scrape:
    """One ``/metrics`` answer, parsed."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def scrape(url: str, headers: dict[str, str] | None = None) -> Scrape:
    """``/metrics`` (with the master key unless ``headers`` say otherwise)."""
    r = httpx.get(url + "/metrics", headers=AUTH if headers is None else headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return Scrape(r.text)
