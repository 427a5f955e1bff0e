"""``outcrop demo``: every installed plugin, served against an in-process Bedrock simulator.

Needs no AWS account: the simulator verifies the gateway's SigV4 signatures with test keys.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import yaml

from .app import create_app
from .config import parse_config
from .gateway import Gateway
from .serving.options import Listen
from .testing import TEST_ACCESS_KEY, TEST_SECRET_KEY
from .testing.server import ServerThread
from .testing.simulator import BedrockSimulator


def demo_config(simulator_url: str, master_key: str, gateway: Gateway) -> dict[str, Any]:
    """One deployment per model prefix the installed plugins register (with an example)."""
    model_list = []
    for prefix in gateway.model_prefixes:
        if not prefix.example:
            continue
        name = "demo-" + prefix.prefix.strip("/").replace("/", "-")
        model_list.append(
            {
                "model_name": name,
                "litellm_params": {
                    "model": prefix.example,
                    "aws_region_name": "us-west-2",
                    "aws_access_key_id": TEST_ACCESS_KEY,
                    "aws_secret_access_key": TEST_SECRET_KEY,
                    "api_base": simulator_url,
                },
            }
        )
    return {"model_list": model_list, "general_settings": {"master_key": master_key}}


def run_demo(*, host: str, port: int, run_server: Callable[..., object]) -> int:
    simulator = ServerThread(BedrockSimulator())
    simulator.start()
    path: str | None = None
    try:
        master_key = "sk-demo-" + secrets.token_hex(8)
        probe = Gateway(parse_config({}))
        config = demo_config(simulator.url, master_key, probe)
        with tempfile.NamedTemporaryFile(
            "w", suffix=".yaml", prefix="outcrop-demo-", delete=False
        ) as f:
            path = f.name
            yaml.safe_dump(config, f, sort_keys=False)
        app = create_app(parse_config(config, source=f.name))
        gateway = app.state.gateway
        chat = {d.model_name for d in gateway.config.model_list if gateway.routes[d.index].chat}
        base = f"http://{host}:{port}"
        print(_instructions(base, master_key, config, f.name, simulator.url, chat), flush=True)
        run_server(app, Listen(host, port))
    finally:
        simulator.stop()
        if path is not None:  # it holds the demo's master key: never left behind
            with contextlib.suppress(OSError):
                os.unlink(path)
    return 0


def _instructions(
    base: str, key: str, config: dict[str, Any], path: str, sim_url: str, chat: set[str]
) -> str:
    """How to call each demo model: the chat route for those a chat provider serves, the
    pass-through for the others."""
    lines = [
        "",
        f"Outcrop demo: gateway on {base}, Bedrock simulator on {sim_url}",
        f"Config written to {path}",
        f"Master key: {key}",
        "",
    ]
    models = [m["model_name"] for m in config["model_list"]]
    if not models:
        lines += [
            "No provider plugin is installed, so no model is served. Install one, for example:",
            "  pip install outcrop-bedrock-agent outcrop-bedrock-agentcore outcrop-bedrock-passthrough",
            "",
            f"curl {base}/v1/models -H 'Authorization: Bearer {key}'",
            "",
            "Press Ctrl+C to stop.",
        ]
        return "\n".join(lines)
    for entry in config["model_list"]:
        name, model = entry["model_name"], entry["litellm_params"]["model"]
        lines.append(f"# {name}  ({model})")
        if name in chat:
            lines.append(
                f"curl {base}/v1/chat/completions -H 'Authorization: Bearer {key}' "
                f"-H 'Content-Type: application/json' "
                f'-d \'{{"model": "{name}", "messages": [{{"role": "user", "content": "Hello"}}]}}\''
            )
        else:
            lines.append(
                f"curl -X POST {base}/bedrock/model/{name}/converse -H 'Authorization: Bearer {key}' "
                f"-H 'Content-Type: application/json' "
                '-d \'{"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}\''
            )
        lines.append("")
    first_chat = next(
        (m["model_name"] for m in config["model_list"] if m["model_name"] in chat), None
    )
    if first_chat:
        lines += [
            "# OpenAI SDK",
            f"{shlex.quote(sys.executable)} - <<'EOF'",  # the python that has the openai SDK
            "from openai import OpenAI",
            f"client = OpenAI(base_url='{base}', api_key='{key}')",
            f"r = client.chat.completions.create(model='{first_chat}', messages=[{{'role': 'user', 'content': 'Hello'}}])",
            "print(r.choices[0].message.content)",
            "EOF",
            "",
        ]
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)
