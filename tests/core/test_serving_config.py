"""hypercorn's config as outcrop serve builds it: the response headers made once per second."""

from __future__ import annotations

import pickle

from hypercorn.config import Config

from outcrop.serving.options import ServerOptions, hypercorn_config


def test_response_headers_are_hypercorns_and_a_fresh_list_each_time(monkeypatch):
    import outcrop.serving.connection as connection

    config = hypercorn_config(ServerOptions(), "127.0.0.1:0")
    clock = [1_800_000_000.25]
    monkeypatch.setattr(connection.time, "time", lambda: clock[0])
    import hypercorn.config

    monkeypatch.setattr(hypercorn.config, "time", lambda: clock[0])
    plain = Config()
    first = config.response_headers("h11")
    assert first == plain.response_headers("h11")
    assert dict(first)[b"date"] == b"Fri, 15 Jan 2027 08:00:00 GMT"
    first.append((b"x", b"y"))  # a caller's change stays its own
    assert config.response_headers("h11") == plain.response_headers("h11")
    assert config.response_headers("h2") == plain.response_headers("h2")
    clock[0] += 1
    assert dict(config.response_headers("h11"))[b"date"] == b"Fri, 15 Jan 2027 08:00:01 GMT"


def test_the_config_pickles_for_the_workers():
    config = hypercorn_config(ServerOptions(), "127.0.0.1:0")
    config.response_headers("h11")
    again = pickle.loads(pickle.dumps(config))
    assert type(again) is type(config) and again.bind == ["127.0.0.1:0"]
