"""The admin page's security: every page needs a session; only the master key or an admin key
signs in; the session cookie is HttpOnly, SameSite=Strict, scoped to /ui and Secure over TLS;
every form needs its CSRF token and a same-origin post; sign-out and a key's loss of admin end
the session; no page shows a key after its one-time display."""

from __future__ import annotations

import re
import ssl
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.routing import Route

from outcrop_admin.app import AdminApp

from ..bedrock_passthrough.conftest import tls_files  # noqa: F401 (fixture)
from .conftest import MASTER, UI, Admin, csrf_of


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    """Sessions and forms do not depend on the database engine (the page tests run both)."""
    return f"sqlite:///{tmp_path}/outcrop.db"


def ui_routes(gateway: Any) -> list[tuple[str, str]]:
    """(method, path) of every /ui route, path parameters filled in."""
    out = []
    for route in AdminApp(gateway.gateway).routes():
        assert isinstance(route, Route)
        path = re.sub(r"\{\w+\}", "x" * 64, route.path)
        out += [(m, path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return out


def test_every_page_redirects_to_sign_in_without_a_session(gateway: Any, admin: Admin) -> None:
    token = admin.generate(key_alias="victim")["token"]
    routes = ui_routes(gateway)
    assert len(routes) >= 25
    with httpx.Client(base_url=gateway.url) as client:
        for method, path in routes:
            if path == "/ui/login":
                continue
            form = {"csrf": "forged"} if method == "POST" else None
            r = client.request(method, path.replace("x" * 64, token), data=form)
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/ui/login?next="), (method, path)
            assert "outcrop_admin=" not in r.headers.get("set-cookie", "")
        r = client.get("/ui/calls?model=nova")
        assert r.headers["location"] == "/ui/login?next=" + quote("/ui/calls?model=nova", safe="")
        assert client.get("/ui/login").status_code == 200
    assert admin.get("/key/info", key=token)["info"]["blocked"] is False  # nothing happened


def test_forged_or_foreign_session_cookies_are_refused(gateway: Any) -> None:
    signed = UI(gateway.url)
    signed.login()
    cookie = signed.client.cookies["outcrop_admin"]
    payload, mac = cookie.split(".")
    for forged in (payload + ".AAAA", "garbage", payload[:-2] + "xx." + mac, ""):
        with httpx.Client(base_url=gateway.url, cookies={"outcrop_admin": forged}) as client:
            assert client.get("/ui/keys").status_code == 303, forged
    signed.close()


def test_wrong_keys_cannot_sign_in(gateway: Any, admin: Admin) -> None:
    plain = admin.generate(key_alias="plain")["key"]
    for key, status, text in (
        ("sk-wrong-master-key-000000", 401, "wrong key"),
        (MASTER + "x", 401, "wrong key"),
        ("", 401, "wrong key"),
        (plain, 403, "needs admin: true"),
    ):
        ui = UI(gateway.url)
        r = ui.login(key, expect=status)
        assert text in r.text and "outcrop_admin=" not in r.headers.get("set-cookie", "")
        assert ui.client.get("/ui/keys").status_code == 303
        ui.close()


def test_an_admin_key_signs_in_until_it_loses_admin(gateway: Any, admin: Admin) -> None:
    boss = admin.generate(key_alias="boss", admin=True)
    ui = UI(gateway.url)
    ui.login(boss["key"])
    page = ui.get("/ui/keys").text
    assert "Signed in with the admin key boss" in page and boss["key"] not in page
    created = ui.post("/ui/keys/new", {"key_alias": "made-by-boss"}, status=200)
    assert "made-by-boss" in created.text
    made = admin.get("/key/list", return_full_object="true")["keys"]
    assert next(k for k in made if k["key_alias"] == "made-by-boss")["created_by"] == boss["token"]
    admin.post("/key/update", {"key": boss["key"], "admin": False})
    assert ui.client.get("/ui/keys").status_code == 303  # signed out at once
    admin.post("/key/update", {"key": boss["key"], "admin": True})
    assert ui.client.get("/ui/keys").status_code == 200
    admin.post("/key/block", {"key": boss["key"]})
    assert ui.client.get("/ui/keys").status_code == 303
    ui.close()


def test_cookie_attributes_over_http(gateway: Any) -> None:
    ui = UI(gateway.url)
    r = ui.login()
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("outcrop_admin="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/ui" in session
    assert "Secure" not in session  # plain HTTP: a Secure cookie would never come back
    login = ui.client.get("/ui/login")  # signed in: straight to the keys
    assert login.status_code == 303 and login.headers["location"] == "/ui/keys"
    ui.close()


def test_cookies_are_secure_over_tls(
    gateway_factory: Any,
    make_config: Any,
    tls_files: dict[str, str],  # noqa: F811
) -> None:
    running = gateway_factory(make_config(), certfile=tls_files["cert"], keyfile=tls_files["key"])
    assert running.url.startswith("https://")
    ui = UI(running.url, verify=ssl.create_default_context(cafile=tls_files["ca"]))
    form = ui.client.get("/ui/login")
    assert "Secure" in form.headers["set-cookie"]  # the sign-in form's CSRF cookie too
    r = ui.login()
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("outcrop_admin="))
    assert "Secure" in session and "HttpOnly" in session and "SameSite=Strict" in session
    assert ui.get("/ui/keys").status_code == 200
    ui.close()


def test_forms_need_their_csrf_token(gateway: Any, ui: UI, admin: Admin) -> None:
    victim = admin.generate(key_alias="victim")
    path = f"/ui/keys/{victim['token']}/block"
    for data in ({"no": "token"}, {"csrf": ""}, {"csrf": "forged"}, {"csrf": ui.csrf[:-1]}):
        r = ui.client.post(path, data=data)
        assert r.status_code == 403 and "CSRF token is missing or wrong" in r.text
    other = UI(gateway.url)
    other.login()
    assert other.csrf != ui.csrf  # each session has its own token
    assert ui.client.post(path, data={"csrf": other.csrf}).status_code == 403
    other.close()
    assert admin.get("/key/info", key=victim["key"])["info"]["blocked"] is False
    ui.post(path, {})  # with the token: done
    assert admin.get("/key/info", key=victim["key"])["info"]["blocked"] is True


def test_sign_in_form_needs_its_csrf_token(gateway: Any) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        r = client.post("/ui/login", data={"key": MASTER})
        assert r.status_code == 403 and "outcrop_admin=" not in r.headers.get("set-cookie", "")
        token = csrf_of(client.get("/ui/login").text)
        client.cookies.clear()  # a token without the cookie it belongs to
        assert client.post("/ui/login", data={"key": MASTER, "csrf": token}).status_code == 403


def test_cross_site_posts_are_refused(gateway: Any, ui: UI, admin: Admin) -> None:
    victim = admin.generate(key_alias="victim")
    path = f"/ui/keys/{victim['token']}/block"
    form = {"csrf": ui.csrf}
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": gateway.url.replace("127.0.0.1", "localhost")},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        r = ui.client.post(path, data=form, headers=headers)
        assert r.status_code == 403 and "refused" in r.text, headers
    json_post = ui.client.post(path, json=form)
    assert json_post.status_code == 403
    assert admin.get("/key/info", key=victim["key"])["info"]["blocked"] is False
    same = ui.client.post(
        path, data=form, headers={"origin": gateway.url, "sec-fetch-site": "same-origin"}
    )
    assert same.status_code == 303


def test_sign_out_ends_the_session(gateway: Any, ui: UI) -> None:
    cookie = ui.client.cookies["outcrop_admin"]
    r = ui.post("/ui/logout", {})
    assert r.headers["location"] == "/ui/login?msg=signed_out"
    assert "outcrop_admin=;" in r.headers["set-cookie"] and "Max-Age=0" in r.headers["set-cookie"]
    assert "Signed out." in ui.client.get("/ui/login?msg=signed_out").text
    with httpx.Client(base_url=gateway.url, cookies={"outcrop_admin": cookie}) as replay:
        assert replay.get("/ui/keys").status_code == 303  # the old cookie is revoked


def test_failed_sign_ins_are_throttled(gateway: Any) -> None:
    ui = UI(gateway.url)
    for _ in range(20):
        ui.login("sk-guess-0000000000000000", expect=401)
    assert "too many failed sign-ins" in ui.login(MASTER, expect=429).text
    ui.close()


def test_pages_carry_security_headers(ui: UI) -> None:
    for path in ("/ui/keys", "/ui/login", "/ui/spend"):
        r = ui.client.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_escaping(gateway: Any, ui: UI, admin: Admin) -> None:
    admin.post("/team/new", {"team_id": "t1", "team_alias": "<script>alert(1)</script>"})
    admin.generate(key_alias='"><img src=x onerror=alert(1)>', team_id="t1")
    for path in ("/ui/keys", "/ui/teams", "/ui/teams/t1"):
        text = ui.get(path).text
        assert "<script>alert(1)</script>" not in text and "<img src=x" not in text
        assert "&lt;script&gt;" in text or "&#34;&gt;&lt;img" in text
