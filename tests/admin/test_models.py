"""The models page shows the router's cooldown state: a deployment that failed is shown cooling
down, the other of its model_name ready; the recorded error rate agrees."""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY
from outcrop.testing.replies import ConverseReply, HttpError

from .conftest import MASTER, UI, Admin, flushed


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/outcrop.db"


def test_cooldown_state(
    gateway_factory: Any,
    simulator_params: Any,
    bedrock_simulator: Any,
    chat_plugin: Any,
    database_url: str,
) -> None:
    pair = [
        {"model_name": "pair", "litellm_params": simulator_params("testprov/amazon.nova-lite-v1:0")}
        for _ in range(2)
    ]
    running = gateway_factory(
        {
            "model_list": pair,
            "general_settings": {"master_key": MASTER, "database_url": database_url},
            "router_settings": {"allowed_fails": 0, "cooldown_time": 600, "num_retries": 1},
            "bedrock_passthrough": {
                "aws_region_name": "us-west-2",
                "aws_access_key_id": TEST_ACCESS_KEY,
                "aws_secret_access_key": TEST_SECRET_KEY,
                "api_base": bedrock_simulator.url,
            },
        }
    )
    bedrock_simulator.reply(HttpError(500, "InternalServerException", "broke"), times=1)
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))
    key = Admin(running.url).generate(key_alias="pair-user")["key"]
    client = openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.create(
        model="pair", messages=[{"role": "user", "content": "Hello"}]
    )
    assert answer.choices[0].message.content == "Hello there"  # failed over to the other one
    flushed(running)
    ui = UI(running.url)
    ui.login()
    page = ui.get("/ui/models").text
    rows = {
        name: row
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
        for name in re.findall(r"<td>(pair#\d)</td>", row)
    }
    assert sorted(rows) == ["pair#0", "pair#1"]
    cooling = [name for name, row in rows.items() if "cooling down" in row]
    ready = [name for name, row in rows.items() if "ready" in row]
    assert len(cooling) == 1 and len(ready) == 1, rows
    ui.close()
