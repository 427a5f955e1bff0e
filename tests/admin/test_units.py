"""The admin page's pieces on their own: pagination, the forms derived from the key API's
fields, session cookies, redirect targets, CSV cells and the charts' escaping."""

from __future__ import annotations

import time

import msgspec
import pytest

from outcrop_admin import charts, forms
from outcrop_admin.auth import safe_next
from outcrop_admin.queries import Page
from outcrop_admin.reports import csv_cell
from outcrop_admin.session import Sessions, cookie_header
from outcrop_keys.manage import KeyFields, TeamFields


@pytest.mark.parametrize("total", [0, 1, 49, 50, 51, 10_000, 10_001])
@pytest.mark.parametrize("size", [1, 50, 1000])
def test_pages_cover_every_row_once(total: int, size: int) -> None:
    first = Page.of(1, size, total)
    seen: list[int] = []
    page = first
    while True:
        assert page.offset == (page.number - 1) * size
        rows = list(range(total))[page.offset : page.offset + size]
        assert len(rows) == (page.last - page.first + 1 if total else 0)
        seen += rows
        if not page.has_next:
            break
        page = Page.of(page.number + 1, size, total)
    assert seen == list(range(total))
    assert page.number == first.pages == max(1, -(-total // size))
    assert not first.has_prev


def test_page_numbers_are_clamped() -> None:
    assert Page.of(0, 50, 120).number == 1
    assert Page.of(-3, 50, 120).number == 1
    assert Page.of(99, 50, 120).number == 3  # past the end: the last page
    assert Page.of(99, 50, 0).number == 1 and Page.of(1, 50, 0).first == 0
    last = Page.of(3, 50, 120)
    assert (last.first, last.last, last.has_next, last.has_prev) == (101, 120, False, True)


def test_every_key_and_team_field_has_a_form_control() -> None:
    assert [f.name for f in forms.key_fields(edit=False)] == list(KeyFields.__struct_fields__)
    assert [f.name for f in forms.team_fields(edit=False)] == list(TeamFields.__struct_fields__)
    edit = {f.name for f in forms.key_fields(edit=True)}
    assert edit == set(KeyFields.__struct_fields__) - forms.KEY_NOT_EDITABLE
    kinds = {f.name: f.kind for f in forms.key_fields(edit=False)}
    assert kinds["aws_sigv4"] == "bool" and kinds["models"] == "list"
    assert kinds["max_budget"] == "float" and kinds["rpm_limit"] == "int"
    assert kinds["metadata"] == "json" and kinds["expires"] == "datetime"
    assert kinds["team_id"] == "team"
    assert {f.name: f.kind for f in forms.team_fields(edit=False)}["team_id"] == "text"


def test_create_body_is_what_key_generate_takes() -> None:
    fields = forms.key_fields(edit=False)
    body = forms.create_body(
        fields,
        {
            "key_alias": " ci ",
            "models": "nova, claude-*\nother",
            "max_budget": "2.5",
            "rpm_limit": "60",
            "metadata": '{"owner": "ci"}',
            "expires": "2030-01-02T03:04",
            "aws_sigv4": "on",
            "admin": "",
            "tags": "",
        },
    )
    assert body == {
        "key_alias": "ci",
        "models": ["nova", "claude-*", "other"],
        "max_budget": 2.5,
        "rpm_limit": 60,
        "metadata": {"owner": "ci"},
        "expires": "2030-01-02T03:04:00+00:00",
        "aws_sigv4": True,
    }
    msgspec.convert(body, KeyFields)  # the API accepts it as is


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("max_budget", "lots", "expected a number"),
        ("rpm_limit", "1.5", "expected a number"),
        ("metadata", "[1]", "must be a JSON object"),
        ("metadata", "{", "not valid JSON"),
        ("expires", "tomorrow", "expected a date and time"),
    ],
)
def test_bad_form_values_name_their_field(name: str, raw: str, message: str) -> None:
    with pytest.raises(forms.FormError) as caught:
        forms.create_body(forms.key_fields(edit=False), {name: raw})
    assert caught.value.field == name and message in caught.value.message


def test_edit_body_sends_only_what_changed() -> None:
    fields = forms.key_fields(edit=True)
    current = {
        "key_alias": "ci",
        "models": ["nova"],
        "max_budget": 2.5,
        "metadata": {},
        "admin": False,
        "rpm_limit": None,
    }
    shown = {f.name: f.text(current.get(f.name)) for f in fields}
    assert forms.edit_body(fields, shown, current) == {}
    changed = {**shown, "models": "nova, other", "max_budget": "", "admin": "on"}
    assert forms.edit_body(fields, changed, current) == {
        "models": ["nova", "other"],
        "max_budget": None,  # emptied: the budget is removed
        "admin": True,
    }


def test_sessions_are_signed_expire_and_can_be_revoked() -> None:
    sessions = Sessions(b"secret-one")
    cookie = sessions.issue("virtual_key", "ab" * 32, "ops")
    session = sessions.read(cookie)
    assert session is not None and session.claims.sub == "ab" * 32 and session.claims.alias == "ops"
    assert session.csrf and session.csrf == sessions.read(cookie).csrf  # type: ignore[union-attr]
    assert sessions.read(sessions.issue("master_key", None)).csrf != session.csrf  # type: ignore[union-attr]
    payload, mac = cookie.split(".")
    assert sessions.read(payload + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB")) is None
    assert sessions.read(payload[:-4] + "AAAA." + mac) is None
    assert sessions.read("") is None and sessions.read("x" * 5000) is None
    assert Sessions(b"secret-two").read(cookie) is None  # a new master key ends every session
    sessions.revoke(session)
    assert sessions.read(cookie) is None
    expired = Sessions(b"secret-one", lifetime_s=-1)
    assert expired.read(expired.issue("master_key", None)) is None
    nonce = sessions.login_nonce()
    assert sessions.check_login_token(nonce, sessions.login_token(nonce))
    assert not sessions.check_login_token(nonce, sessions.login_token("other"))
    assert not sessions.check_login_token(None, None)
    assert time.time() < session.claims.exp <= time.time() + sessions.lifetime_s


def test_cookie_attributes() -> None:
    plain = cookie_header("outcrop_admin", "v", secure=False, max_age=60)
    assert plain == "outcrop_admin=v; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60"
    assert cookie_header("outcrop_admin", "v", secure=True).endswith("; Secure")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/calls?model=nova", "/ui/calls?model=nova"),
        (None, "/ui/keys"),
        ("https://evil.example/ui", "/ui/keys"),
        ("//evil.example/ui", "/ui/keys"),
        ("/ui//evil.example", "/ui/keys"),
        ("/ui\\evil", "/ui/keys"),
        ("/uix", "/ui/keys"),
        ("/ui", "/ui"),
        ("/ui/login?next=/ui", "/ui/keys"),
        ("/v1/models", "/ui/keys"),
    ],
)
def test_sign_in_only_redirects_within_the_page(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_csv_cells_never_start_a_formula() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+x", "-2", "@SUM(A1)", "nova", 3)] == [
        "'=1+1",
        "'+x",
        "'-2",
        "'@SUM(A1)",
        "nova",
        3,
    ]


def test_charts_escape_labels() -> None:
    svg = charts.bars([("<script>alert(1)</script>", 2.0), ("b", 1.0)], label="Spend & more")
    assert (
        "<script>" not in svg and "&lt;script&gt;" in svg and 'aria-label="Spend &amp; more"' in svg
    )
    days = charts.columns([("2026-01-01", 0.0), ("2026-01-02", 0.5)], label="by day")
    assert days.count('class="bar"') == 2 and "01-02" in days
    assert charts.columns([], label="x") == "" and charts.bars([], label="x") == ""
    assert charts.money(0.000123) == "$0.000123" and charts.money(1234.5) == "$1,234.50"
