"""The admin page in a real browser: the machine's Chromium driven by Playwright (never a
downloaded browser; ``scripts/test`` installs Debian's ``chromium`` when it is missing).

An operator signs in (a wrong master key first), creates a key and copies it, uses it through
the OpenAI SDK, sees the call and its spend, blocks the key and sees the next call refused.
Forms without their CSRF token and posts from another site are refused; the page works without
JavaScript, on a phone-sized screen and from the keyboard. The tests write a screenshot of each
page to docs/images/admin-*.png (shown in docs/admin.md).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from .conftest import MASTER, Admin, flushed

expect.set_options(timeout=20_000)  # a loaded machine: wait for conditions, generously
#: Where the screenshots go: docs/images with OUTCROP_UPDATE_SCREENSHOTS=1 (to refresh the ones
#: docs/admin.md shows), else a temporary folder, so a test run leaves the tree clean.
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
#: Chromium resolves no name but localhost: a page can never reach past the loopback.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


def chromium_path() -> str:
    path = os.environ.get("OUTCROP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail(
            f"the browser tests need Chromium at {path}: `apt-get install chromium` "
            "(scripts/test does it) or set OUTCROP_CHROMIUM",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path(),
            args=["--no-sandbox", "--disable-dev-shm-usage", LOOPBACK_ONLY],
        )
        yield browser
        browser.close()


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/outcrop.db"  # the page tests cover both engines


@pytest.fixture
def context(browser: Browser, gateway: Any) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=gateway.url, viewport={"width": 1100, "height": 900}, color_scheme="light"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.url)
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("OUTCROP_UPDATE_SCREENSHOTS") == "1":
        return DOC_IMAGES
    return tmp_path_factory.mktemp("screenshots")


def shot(folder: Path, page: Page, name: str, *secrets: Any) -> None:
    path = folder / f"admin-{name}.png"
    page.screenshot(path=str(path), full_page=True, mask=list(secrets))
    assert path.stat().st_size > 1000, path  # a real picture of the page


def sign_in(page: Page, key: str = MASTER) -> None:
    page.goto("/ui/login")
    page.get_by_label("Master key or admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def chat(url: str, key: str) -> Any:
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    return client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "Hello"}]
    )


def test_operator_flow(gateway: Any, context: BrowserContext, admin: Admin, images: Path) -> None:
    page = context.new_page()
    page.goto("/ui/spend")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Fspend$"))
    shot(images, page, "login")

    # a wrong master key is refused; the right one signs in, from the keyboard
    page.keyboard.type("sk-not-the-master-key-000000")  # the key field has the focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("wrong key")
    page.get_by_label("Master key or admin key").fill(MASTER)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/spend$"))
    expect(page.get_by_text("Signed in with the master key")).to_be_visible()

    # a team, then a key in it with a SigV4 pair; copy the key with the Copy button
    page.goto("/ui/teams/new")
    page.get_by_label("Team", exact=True).fill("research")
    page.get_by_label("Team name").fill("Research")
    page.get_by_label("Budget (USD)").fill("100")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("status")).to_have_text("Team created.")
    page.get_by_role("link", name="New key in this team").click()
    expect(page.get_by_label("Team", exact=True)).to_have_value("research")
    page.get_by_label("Alias", exact=True).fill("ci-bot")
    page.get_by_label("Models").fill("nova")
    page.get_by_label("Budget (USD)").fill("5")
    page.get_by_label("Requests per minute", exact=True).fill("600")
    page.get_by_label("Metadata (JSON object)").fill('{"owner": "ci"}')
    page.get_by_label("Issue a SigV4 key pair").check()
    shot(images, page, "key-new")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name="Key created")).to_be_visible()
    shown = page.get_by_label("Key “ci-bot”")
    page.locator('button[data-copy="new-key"]').click()
    expect(page.locator('button[data-copy="new-key"]')).to_have_text("Copied")
    key = page.evaluate("navigator.clipboard.readText()")
    assert key.startswith("sk-") and key == shown.input_value()
    assert page.get_by_label("Access key id").input_value().startswith("OCK")
    shot(images, page, "key-created", page.locator("input.secret"))

    # the key works through the OpenAI SDK; the call and its spend appear
    assert chat(gateway.url, key).choices[0].message.content == "Hello there"
    flushed(gateway)
    page.goto("/ui/calls")
    row = page.get_by_role("row").filter(has_text="ci-bot")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("nova")
    expect(row).to_contain_text("10/5")
    expect(row).to_contain_text("$0.02")
    shot(images, page, "calls")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Call")).to_be_visible()
    expect(page.locator("dl.details")).to_contain_text("nova#0")
    shot(images, page, "call")
    page.get_by_role("link", name="Spend").click()
    expect(page.locator(".card").first).to_contain_text("$0.02")
    expect(page.locator("#by-key + svg")).to_have_attribute("aria-label", "Spend by key")
    expect(page.get_by_role("table").filter(has_text="Spend by key")).to_contain_text("ci-bot")
    shot(images, page, "spend")

    # the key's page; block it and the next call is refused
    page.get_by_role("link", name="Keys").click()
    expect(page.get_by_role("row").filter(has_text="ci-bot")).to_contain_text("$0.02")
    shot(images, page, "keys")
    page.get_by_role("link", name="ci-bot").click()
    expect(page.get_by_label("Models")).to_have_value("nova")
    assert key not in page.content()
    page.get_by_role("button", name="Block").click()
    expect(page.get_by_role("status")).to_contain_text("blocked")
    shot(images, page, "key")
    with pytest.raises(openai.PermissionDeniedError, match="blocked"):
        chat(gateway.url, key)

    page.get_by_role("link", name="Teams").click()
    shot(images, page, "teams")
    page.get_by_role("link", name="Research").click()
    expect(page.get_by_role("row").filter(has_text="ci-bot")).to_contain_text("blocked")
    shot(images, page, "team")
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("row").filter(has_text="nova#0")).to_contain_text("testprov")
    shot(images, page, "models")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    page.goto("/ui/keys")
    expect(page).to_have_url(re.compile(r"/ui/login"))


def test_missing_csrf_token_is_refused(gateway: Any, context: BrowserContext, admin: Admin) -> None:
    victim = admin.generate(key_alias="victim")
    page = context.new_page()
    sign_in(page)
    page.goto(f"/ui/keys/{victim['token']}")
    page.evaluate(
        """document.querySelectorAll('form[action$="/block"] input[name=csrf]')
           .forEach(e => e.remove())"""
    )
    with page.expect_response(lambda r: r.url.endswith("/block")) as answer:
        page.get_by_role("button", name="Block").click()
    assert answer.value.status == 403
    expect(page.get_by_role("alert")).to_contain_text("CSRF token is missing or wrong")
    assert admin.get("/key/info", key=victim["key"])["info"]["blocked"] is False
    assert chat(gateway.url, victim["key"]).choices


def test_other_sites_cannot_use_the_session(
    gateway: Any, context: BrowserContext, admin: Admin
) -> None:
    """SameSite=Strict: a page on another site that posts a form to the admin page (or links to
    it) reaches it without the session cookie, so nothing happens."""
    victim = admin.generate(key_alias="victim")
    page = context.new_page()
    sign_in(page)
    expect(page.get_by_text("Signed in with the master key")).to_be_visible()
    evil = "http://evil.localhost"  # another site, served by the test itself (never resolved)
    target = f"{gateway.url}/ui/keys/{victim['token']}/block"
    context.route(
        f"{evil}/**",
        lambda route: route.fulfill(
            content_type="text/html",
            body=f"""<form method="post" action="{target}"><input name="csrf" value="x">
            <button>win a prize</button></form><a href="{gateway.url}/ui/keys">keys</a>""",
        ),
    )
    attacker = context.new_page()
    attacker.goto(f"{evil}/prize")
    attacker.get_by_role("button", name="win a prize").click()
    expect(attacker).to_have_url(re.compile(r"/ui/login"))  # arrived without a session
    assert admin.get("/key/info", key=victim["key"])["info"]["blocked"] is False
    attacker.goto(f"{evil}/prize")
    attacker.get_by_role("link", name="keys").click()
    expect(attacker).to_have_url(re.compile(r"/ui/login"))
    cookie = next(c for c in context.cookies() if c["name"] == "outcrop_admin")
    assert cookie["sameSite"] == "Strict" and cookie["httpOnly"] and cookie["path"] == "/ui"
    page.goto("/ui/keys")  # the same browser, same site: still signed in
    expect(page.get_by_role("heading", name="Keys")).to_be_visible()


def test_works_without_javascript(browser: Browser, gateway: Any, admin: Admin) -> None:
    context = browser.new_context(base_url=gateway.url, java_script_enabled=False)
    page = context.new_page()
    sign_in(page)
    page.goto("/ui/keys/new")
    page.get_by_label("Alias", exact=True).fill("no-js")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("Key “no-js”").input_value()
    expect(page.locator('button[data-copy="new-key"]')).to_be_hidden()  # no script, no button
    assert chat(gateway.url, key).choices
    page.get_by_role("link", name="Key details").click()
    page.get_by_role("button", name="Block").click()
    expect(page.get_by_role("status")).to_contain_text("blocked")
    with pytest.raises(openai.PermissionDeniedError):
        chat(gateway.url, key)
    page.get_by_label("I mean it").check()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("Deleted.")
    admin.get("/key/info", status=404, key=key)
    context.close()


PAGES = (
    "/ui/keys",
    "/ui/keys/new",
    "/ui/teams",
    "/ui/teams/new",
    "/ui/spend",
    "/ui/calls",
    "/ui/models",
)


def test_phone_keyboard_and_labels(
    browser: Browser, gateway: Any, admin: Admin, images: Path
) -> None:
    admin.post("/team/new", {"team_id": "blue", "team_alias": "Blue"})
    made = admin.generate(key_alias="phone", team_id="blue")
    chat(gateway.url, made["key"])
    flushed(gateway)
    context = browser.new_context(
        base_url=gateway.url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    sign_in(page)
    for path in (*PAGES, f"/ui/keys/{made['token']}", "/ui/teams/blue"):
        page.goto(path)
        # nothing wider than the screen but the tables, which scroll in their own box
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, (path, wide)
        unlabelled = page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
               .filter(e => e.type !== 'hidden' && e.labels.length === 0)
               .map(e => e.name || e.id)"""
        )
        assert unlabelled == [], (path, unlabelled)
    page.goto("/ui/spend")
    shot(images, page, "phone-spend")
    page.goto("/ui/keys")
    shot(images, page, "phone-keys")

    # the keyboard reaches the skip link, every section and the actions, in order
    page.goto("/ui/keys")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert reached[0] == "Skip to content"
    for name in ("Keys", "Teams", "Spend", "Calls", "Models", "Sign out", "New key"):
        assert name in reached, (name, reached)
    while page.evaluate("document.activeElement.textContent.trim()") != "New key":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/keys/new$"))
    context.close()
