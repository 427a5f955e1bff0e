"""The counters' own Redis connection (``outcrop.resp``) against the machine's Redis: replies in
order under pipelining, error replies, a reply split across reads, a lost connection and a
Redis that forgot its scripts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from outcrop import Limit
from outcrop.limits import RedisCounters
from outcrop.resp import _INCOMPLETE, Prepared, RespConnection, RespError, _parse, encode


def test_parse_waits_for_a_whole_reply() -> None:
    reply = b"*3\r\n:1\r\n$5\r\nhello\r\n*2\r\n+OK\r\n$-1\r\n"
    for cut in range(len(reply)):  # every prefix is incomplete, never misread
        assert _parse(reply[:cut], 0) == (_INCOMPLETE, 0), cut
    assert _parse(reply, 0) == ([1, b"hello", [b"OK", None]], len(reply))
    error, _ = _parse(b"-NOSCRIPT no script\r\n", 0)
    assert isinstance(error, RespError) and str(error) == "NOSCRIPT no script"
    assert encode(("GET", b"k", 3)) == b"*3\r\n$3\r\nGET\r\n$1\r\nk\r\n$1\r\n3\r\n"
    # a head encoded once, then only the arguments that change: the same bytes on the wire
    head = Prepared("EVALSHA", "f00", 2, "k1", b"k2", 60000)
    assert encode((head, 1700000000000, "req-1")) == encode(
        ("EVALSHA", "f00", 2, "k1", b"k2", 60000, 1700000000000, "req-1")
    )
    assert encode((Prepared("PING"),)) == b"*1\r\n$4\r\nPING\r\n"
    # an array's integers and bulk strings (parsed inline), a nested array, a null, an error
    reply = b"*6\r\n:-7\r\n$0\r\n\r\n$-1\r\n*1\r\n:2\r\n$4\r\na\r\nb\r\n-ERR x\r\n"
    for cut in range(len(reply) - len(b"-ERR x\r\n")):
        assert _parse(reply[:cut], 0) == (_INCOMPLETE, 0), cut
    value, at = _parse(reply, 0)
    assert value[:5] == [-7, b"", None, [2], b"a\r\nb"] and isinstance(value[5], RespError)
    assert at == len(reply)


def test_url_parts() -> None:
    conn = RespConnection("rediss://user:p%40ss@cache.internal:6380/4")
    assert (conn.host, conn.port, conn.db) == ("cache.internal", 6380, 4)
    assert (conn.username, conn.password, conn.ssl is not None) == ("user", "p@ss", True)
    with pytest.raises(ValueError, match="unsupported Redis URL scheme"):
        RespConnection("unix:///run/redis.sock")


async def test_pipelined_replies_errors_and_reconnect(redis_settings: dict[str, str]) -> None:
    conn = RespConnection(redis_settings["redis_url"])
    key = redis_settings["redis_key_prefix"] + "n"
    try:
        replies = await asyncio.gather(*(conn.execute("INCR", key) for _ in range(50)))
        assert replies == list(range(1, 51))  # each caller got its own reply, in order
        with pytest.raises(RespError, match="ERR"):
            await conn.execute("NOSUCHCOMMAND")
        assert await conn.execute("GET", key) == b"50"  # the stream is still in step
        await conn.execute(
            "CLIENT", "KILL", "SKIPME", "no", "ID", await conn.execute("CLIENT", "ID")
        )
        with pytest.raises(ConnectionError):
            for _ in range(10):  # the killed connection's next command fails, not hangs
                await conn.execute("PING")
        assert await conn.execute("INCR", key) == 51  # the next one reconnects
    finally:
        await conn.close()


async def test_counters_survive_a_script_flush(redis_settings: dict[str, str]) -> None:
    counters = RedisCounters(redis_settings["redis_url"], prefix=redis_settings["redis_key_prefix"])
    await counters.start()
    rpm = Limit(Limit.REQUESTS, "k", 2, "this key's rpm_limit")
    try:
        assert (await counters.admit([rpm], "r1")).refused is None
        assert counters._conn is not None
        await counters._conn.execute("SCRIPT", "FLUSH")  # as after a Redis restart
        assert (await counters.admit([rpm], "r2")).refused is None  # EVAL reloads it
        refused: Any = await counters.admit([rpm], "r3")
        assert refused.refused == rpm and refused.used == 2
    finally:
        await counters.close()


async def test_deferred_commands_keep_their_order(redis_settings: dict[str, str]) -> None:
    conn = RespConnection(redis_settings["redis_url"])
    key = redis_settings["redis_key_prefix"] + "d"
    try:
        await conn.execute("PING")
        first = conn.send("INCR", key, delay=30.0)  # would wait 30 s: the next command takes it
        assert await conn.execute("INCR", key) == 2  # written behind the deferred one
        assert await first == 1
        alone = conn.send("INCR", key, delay=0.01)  # no command follows: the delay sends it
        assert await asyncio.wait_for(alone, 5) == 3
    finally:
        await conn.close()


async def test_a_silent_redis_times_out_and_the_next_command_reconnects(
    redis_settings: dict[str, str],
) -> None:
    """A server that accepts and never answers: the oldest command's deadline fails every
    command in flight (their replies would be out of step) and the connection starts again."""
    accepted: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = RespConnection(f"redis://127.0.0.1:{port}", timeout=0.2)
    try:
        waiting = [asyncio.ensure_future(conn.execute("PING")) for _ in range(3)]
        deadline = asyncio.get_running_loop().time() + 5
        while conn._protocol is None:  # connected (the commands are written)
            assert asyncio.get_running_loop().time() < deadline, "never connected"
            await asyncio.sleep(0.01)
        deferred = conn.send("PING", delay=30.0)
        for future in waiting:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(future, 5)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(deferred, 5)
        with pytest.raises(TimeoutError):  # a new connection (the second accepted), same end
            await asyncio.wait_for(conn.execute("PING"), 5)
        assert len(accepted) == 2
    finally:
        await conn.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_posted_command_reports_only_its_failure(redis_settings: dict[str, str]) -> None:
    """``post``: no future; an error reply or a lost connection reaches ``on_error``, a good
    reply nothing, and the replies behind it stay in step."""
    conn = RespConnection(redis_settings["redis_url"])
    key = redis_settings["redis_key_prefix"] + "posted"
    failures: list[Exception] = []
    try:
        conn.post("PING", on_error=failures.append)  # not connected yet: fails, later
        assert failures == []
        await asyncio.sleep(0)
        assert len(failures) == 1 and isinstance(failures[0], ConnectionError)
        failures.clear()
        await conn.execute("PING")
        conn.post("INCR", key, on_error=failures.append)
        conn.post("NOSUCHCOMMAND", on_error=failures.append)
        conn.post("INCR", key, on_error=failures.append, delay=30.0)  # goes out with the next
        assert await conn.execute("INCR", key) == 3
        assert len(failures) == 1 and isinstance(failures[0], RespError)
        me = await conn.execute("CLIENT", "ID")
        conn.post("BLPOP", key + ":never", 0, on_error=failures.append)  # in flight when lost
        other = RespConnection(redis_settings["redis_url"])
        try:
            await other.execute("CLIENT", "KILL", "ID", me)
        finally:
            await other.close()
        deadline = asyncio.get_running_loop().time() + 5
        while len(failures) < 2:
            assert asyncio.get_running_loop().time() < deadline, failures
            await asyncio.sleep(0.01)
        assert isinstance(failures[1], ConnectionError)
    finally:
        await conn.close()
