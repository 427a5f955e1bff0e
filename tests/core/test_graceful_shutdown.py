"""Stopping the server lets an in-flight stream finish (hypercorn's graceful timeout)."""

import threading

import httpx

from outcrop.app import create_app
from outcrop.config import parse_config
from outcrop.testing.replies import ConverseReply
from outcrop.testing.server import ServerThread

from .converse_plugin import ConversePlugin


def test_in_flight_stream_finishes_on_shutdown(outcrop_plugin, simulator_params, bedrock_simulator):
    outcrop_plugin(ConversePlugin(), "testprov")
    app = create_app(
        parse_config(
            {"model_list": [{"model_name": "m", "litellm_params": simulator_params("testprov/x")}]}
        )
    )
    bedrock_simulator.reply(ConverseReply("one two three four", delay=0.2))
    server = ServerThread(app, graceful_timeout=10).start()
    stopper = None
    events = []
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line)
            if stopper is None:  # shut down while the stream is in flight
                stopper = threading.Thread(target=server.stop)
                stopper.start()
    stopper.join(15)
    assert events[-1] == "data: [DONE]"
    text = "".join(e for e in events)
    assert "four" in text
    try:
        httpx.get(server.url + "/health/liveliness", timeout=1)
        raise AssertionError("server still accepting after shutdown")
    except httpx.HTTPError:
        pass
