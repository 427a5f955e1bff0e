"""The models page shows the router's cooldown state: a deployment that failed is shown cooling
down, the other of its model_name ready; the call's spend row and details page list both attempts."""

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

    # the call's two attempts: the failed one on the deployment now cooling down, then the other
    (row,) = Admin(running.url).get("/spend/logs")
    first, second = row["attempts"]
    assert (first["deployment"], first["status"], first["error"]) == (
        cooling[0],
        500,
        "InternalServerException",
    )
    assert (second["deployment"], second["status"], second["error"]) == (ready[0], 200, None)
    assert first["region"] == "us-west-2" and first["latency_ms"] > 0
    calls = ui.get("/ui/calls").text
    row_id = re.search(r'href="/ui/calls/(\d+)"', calls).group(1)  # type: ignore[union-attr]
    details = ui.get(f"/ui/calls/{row_id}").text
    attempts = re.search(r'<ol class="attempts">(.*?)</ol>', details, re.S).group(1)  # type: ignore[union-attr]
    items = re.findall(r"<li>(.*?)</li>", attempts, re.S)
    assert len(items) == 2
    assert (
        items[0].startswith(f"{cooling[0]} in us-west-2: status 500")
        and "InternalServerException" in items[0]
    )
    assert items[1].startswith(f"{ready[0]} in us-west-2: status 200")
    ui.close()
