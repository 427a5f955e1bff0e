"""Every per-process cache a client's input can grow stays within its bound.

Each test drives one growth path with far more distinct inputs than the bound and checks the
size afterwards (docs/performance.md, "Memory and start-up", lists the caches and their bounds;
the AWS endpoint cache's test is in test_regions.py).
"""

from __future__ import annotations

import itertools
import string

import pytest

from outcrop import regions, sigv4, sigv4_canonical
from outcrop.limits import WINDOW_S, Limit, LocalCounters
from outcrop.sigv4_canonical import CACHED_STRINGS, MAX_CACHED_STRING
from outcrop_admin.web import LoginThrottle
from outcrop_otel import otlp


def _names(count: int, prefix: str = "") -> list[str]:
    letters = itertools.product(string.ascii_lowercase, repeat=3)
    return [prefix + "".join(t) for t in itertools.islice(letters, count)]


@pytest.fixture
def checked_regions():
    saved = set(regions._CHECKED)
    yield regions._CHECKED
    regions._CHECKED.clear()
    regions._CHECKED.update(saved)


def test_checked_regions_are_bounded(checked_regions):
    for name in _names(regions._CHECKED_MAX * 3):
        assert regions.check_region(f"zz-{name}-1", "test") == f"zz-{name}-1"
    assert len(checked_regions) == regions._CHECKED_MAX


def test_signing_caches_hold_a_bounded_number_of_short_strings():
    for fn in (sigv4._split, sigv4_canonical.canonical_uri, sigv4_canonical.canonical_query):
        fn.cached.cache_clear()
    # Model ids with ":" (sent as %3A): a path of plain characters is its own canonical URI and
    # never reaches canonical_uri's cache.
    for name in _names(CACHED_STRINGS * 2):
        url = f"https://bedrock-runtime.us-west-2.amazonaws.com/model/{name}%3A0/converse?a={name}"
        sigv4.canonical_request("POST", url, {"host": "h"}, b"{}")
    for fn in (sigv4._split, sigv4_canonical.canonical_uri, sigv4_canonical.canonical_query):
        assert fn.cached.cache_info().currsize == CACHED_STRINGS
    # a client's long path or query is computed, never kept
    for fn in (sigv4._split, sigv4_canonical.canonical_uri, sigv4_canonical.canonical_query):
        fn.cached.cache_clear()
    for name in _names(50):
        long = name * (MAX_CACHED_STRING // 3 + 1)
        url = f"https://bedrock-runtime.us-west-2.amazonaws.com/model/{long}%3A0/converse?a={long}"
        sigv4.canonical_request("POST", url, {"host": "h"}, b"{}")
    assert sigv4._split.cached.cache_info().currsize == 0
    assert sigv4_canonical.canonical_uri.cached.cache_info().currsize == 0
    assert sigv4_canonical.canonical_query.cached.cache_info().currsize == 0


def test_long_strings_are_canonicalised_like_short_ones():
    path = "/model/" + "a%3Ab" * 400 + "/converse"
    assert len(path) > MAX_CACHED_STRING
    assert sigv4_canonical.canonical_uri(path) == "/model/" + "a%253Ab" * 400 + "/converse"
    query = "&".join(f"k{i:04d}=v" for i in reversed(range(200)))
    assert sigv4_canonical.canonical_query(query) == "&".join(f"k{i:04d}=v" for i in range(200))


def test_otlp_attribute_caches_are_bounded():
    otlp._TEXT.clear()
    otlp._KEYS.clear()
    for name in _names(otlp._MAX_CACHED * 2):
        otlp.attributes(1, {"gen_ai.request.model": name, name: 1})
    assert len(otlp._TEXT) == otlp._MAX_CACHED
    assert len(otlp._KEYS) == otlp._MAX_CACHED
    otlp._TEXT.clear()
    otlp.attributes(1, {"x": "v" * 256})  # a long value is encoded, never kept
    assert otlp._TEXT == {}


def test_admin_login_throttle_is_bounded():
    throttle = LoginThrottle()
    for i in range(25_000):
        throttle.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle._failures) <= 10_001


async def test_in_process_limit_counters_keep_only_live_windows():
    # one window per key and minute: many distinct keys over many minutes must not accumulate
    moment = [0.0]
    counters = LocalCounters(clock=lambda: moment[0])
    sweep = LocalCounters.SWEEP_EVERY
    for minute in range(5):
        for i in range(sweep // 2):
            name = f"key:{minute}-{i}"
            limits = [Limit(Limit.REQUESTS, name, 10, "rpm"), Limit(Limit.PARALLEL, name, 2, "par")]
            verdict = await counters.admit(limits, f"req-{minute}-{i}")
            assert verdict.refused is None
            counters.finish(f"req-{minute}-{i}", verdict.held, tokens=[(name, 5)])
        moment[0] += WINDOW_S
    # live windows (the last minute's) plus those ended since the last sweep, never all of them
    assert len(counters._windows) <= 2 * sweep
    assert counters._slots == {}  # every finished call gave its parallel slot back
