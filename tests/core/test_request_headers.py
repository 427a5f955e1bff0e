"""``RequestHeaders.get`` answers as Starlette's ``Headers.get`` does (its own faster scan)."""

from starlette.datastructures import Headers

from outcrop.headers import RequestHeaders

RAW = [
    (b"authorization", b"Bearer sk-one"),
    (b"x-outcrop-tags", b"a"),
    (b"x-outcrop-tags", b"b"),
    (b"x-latin", "caf\u00e9".encode("latin-1")),
]


def test_get_matches_starlette_for_present_repeated_absent_and_mixed_case_names():
    ours, theirs = RequestHeaders(raw=RAW), Headers(raw=RAW)
    for name in ("authorization", "Authorization", "X-OUTCROP-TAGS", "x-latin", "x-api-key"):
        assert ours.get(name) == theirs.get(name)
        assert ours.get(name, "fallback") == theirs.get(name, "fallback")
    assert ours.get("x-outcrop-tags") == "a"  # the first of repeated headers
    assert ours.get("x-api-key") is None
    assert ours.getlist("x-outcrop-tags") == ["a", "b"]  # the rest of Headers is Starlette's
    assert "Authorization" in ours and ours["x-latin"] == "caf\u00e9"


def test_scope_headers_are_read_from_the_asgi_scope():
    scope = {"type": "http", "headers": RAW}
    assert RequestHeaders(scope=scope).get("AUTHORIZATION") == "Bearer sk-one"
