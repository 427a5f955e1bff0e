"""The admin page through raw HTTP (a browser without JavaScript), on SQLite and PostgreSQL:
keys and teams managed through forms and checked through the management API and real clients
(the OpenAI SDK, boto3 with the issued SigV4 pair); spend, calls and models checked against
the recorded spend rows."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import openai
import pytest

from outcrop.testing.replies import ConverseReply, HttpError
from tests.clients import sigv4_client

from .conftest import UI, Admin, flushed, wait_for

KEY = re.compile(r'id="new-key" class="secret" value="(sk-[^"]+)"')
AKID = re.compile(r'id="new-akid" class="secret" value="([^"]+)"')
SECRET = re.compile(r'id="new-secret" class="secret" value="([^"]+)"')
BEDROCK_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def chat(url: str, key: str, model: str = "nova") -> Any:
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello"}]
    )


def created_key(html: str) -> str:
    found = KEY.search(html)
    assert found, html[:3000]
    return found.group(1)


def test_key_lifecycle(gateway: Any, ui: UI, admin: Admin) -> None:
    ui.post("/ui/teams/new", {"team_id": "research", "team_alias": "Research"})
    page = ui.post(
        "/ui/keys/new",
        {
            "key_alias": "ci-bot",
            "team_id": "research",
            "models": "nova, other, anthropic.*",
            "max_budget": "5",
            "budget_duration": "30d",
            "duration": "7d",
            "metadata": '{"owner": "ci"}',
            "tags": "ci, nightly",
            "rpm_limit": "600",
            "tpm_limit": "100000",
            "max_parallel_requests": "8",
            "allowed_routes": "/v1/*, /bedrock/*",
            "aws_sigv4": "on",
        },
        status=200,
    )
    key = created_key(page.text)
    akid, secret = AKID.search(page.text).group(1), SECRET.search(page.text).group(1)  # type: ignore[union-attr]
    assert "no-store" in page.headers["cache-control"]
    info = admin.get("/key/info", key=key)["info"]
    assert info["key_alias"] == "ci-bot" and info["team_id"] == "research"
    assert info["models"] == ["nova", "other", "anthropic.*"] and info["max_budget"] == 5
    assert info["budget_duration"] == "30d" and info["budget_reset_at"] and info["expires"]
    assert info["metadata"] == {"owner": "ci"} and info["tags"] == ["ci", "nightly"]
    assert (info["rpm_limit"], info["tpm_limit"], info["max_parallel_requests"]) == (600, 100000, 8)
    assert info["allowed_routes"] == ["/v1/*", "/bedrock/*"] and info["aws_access_key_id"] == akid
    assert info["admin"] is False and info["blocked"] is False
    token = info["token"]

    # the key and the pair work; no page ever shows them again
    assert chat(gateway.url, key).choices[0].message.content == "Hello there"
    runtime = sigv4_client("bedrock-runtime", gateway.url, akid, secret)
    assert runtime.converse(
        modelId=BEDROCK_ID, messages=[{"role": "user", "content": [{"text": "Hi"}]}]
    )
    for path in ("/ui/keys", f"/ui/keys/{token}", "/ui/teams/research", "/ui/calls", "/ui/spend"):
        text = ui.get(path).text
        assert key not in text and secret not in text, path
    listing = ui.get("/ui/keys").text
    assert "ci-bot" in listing and info["key_name"] in listing and "Research" in listing

    # edit: only the changed fields are sent
    values = ui.get(f"/ui/keys/{token}").text
    assert 'value="nova, other, anthropic.*"' in values and 'value="5"' in values
    ui.post(f"/ui/keys/{token}", _edit_form(values, models="nova", max_budget="7.5"))
    after = admin.get("/key/info", key=key)["info"]
    assert after["models"] == ["nova"] and after["max_budget"] == 7.5
    assert after["metadata"] == {"owner": "ci"} and after["expires"] == info["expires"]
    assert "Saved." in ui.get(f"/ui/keys/{token}", msg="saved").text
    bad = ui.post(f"/ui/keys/{token}", _edit_form(values, rpm_limit="many"), status=400)
    assert "rpm_limit: expected a number" in bad.text and 'value="many"' in bad.text

    # block, unblock
    ui.post(f"/ui/keys/{token}/block", {})
    assert admin.get("/key/info", key=key)["info"]["blocked"] is True
    with pytest.raises(openai.PermissionDeniedError, match="blocked"):
        chat(gateway.url, key)
    ui.post(f"/ui/keys/{token}/unblock", {})
    assert chat(gateway.url, key).choices

    # regenerate: a new key, shown once; the old one stops working
    regenerated = ui.post(f"/ui/keys/{token}/regenerate", {}, status=200)
    new_key = created_key(regenerated.text)
    assert new_key != key and "old key no longer works" in regenerated.text
    with pytest.raises(openai.AuthenticationError):
        chat(gateway.url, key)
    assert chat(gateway.url, new_key).choices
    new_token = admin.get("/key/info", key=new_key)["key"]

    # delete: needs the confirmation box
    refused = ui.post(f"/ui/keys/{new_token}/delete", {}, status=400)
    assert "tick the box" in refused.text
    gone = ui.post(f"/ui/keys/{new_token}/delete", {"confirm": "on"})
    assert gone.headers["location"] == "/ui/keys?msg=deleted"
    admin.get("/key/info", status=404, key=new_key)
    ui.get(f"/ui/keys/{new_token}", expect=404)


def _edit_form(html: str, **changes: str) -> dict[str, str]:
    """The edit form as a browser submits it: every field with its shown value."""
    form = html[html.index("<h2>Edit</h2>") :]
    values: dict[str, str] = {}
    for name, value in re.findall(
        r'<input type="(?:text|number|datetime-local)" id="f-\w+" name="(\w+)" value="([^"]*)"',
        form,
    ):
        values[name] = value
    for name in re.findall(r'<input type="checkbox" id="f-\w+" name="(\w+)" checked', form):
        values[name] = "on"
    for name, value in re.findall(
        r'<textarea id="f-\w+" name="(\w+)"[^>]*>([^<]*)</textarea>', form
    ):
        values[name] = value.replace("&#34;", '"').replace("&quot;", '"')
    selected = re.search(r'name="team_id"[^>]*>.*?<option value="([^"]*)" selected', form, re.S)
    if 'name="team_id"' in form:
        values["team_id"] = selected.group(1) if selected else ""
    return {**values, **changes}


def test_chosen_key_and_bad_input(gateway: Any, ui: UI, admin: Admin) -> None:
    chosen = "sk-chosen-by-the-operator-0001"
    page = ui.post("/ui/keys/new", {"key": chosen, "key_alias": "chosen"}, status=200)
    assert created_key(page.text) == chosen and chat(gateway.url, chosen).choices
    taken = ui.post("/ui/keys/new", {"key_alias": "chosen"}, status=400)
    assert "key_alias is already used" in taken.text and 'value="chosen"' in taken.text
    assert (
        "team_id &#39;nope&#39; does not exist"
        in ui.post("/ui/keys/new", {"team_id": "nope"}, status=400).text
    )
    assert "must be a JSON object" in ui.post("/ui/keys/new", {"metadata": "[]"}, status=400).text
    ui.get("/ui/keys/" + "0" * 64, expect=404)
    ui.get("/ui/teams/nope", expect=404)
    ui.get("/ui/calls/999999", expect=404)
    ui.get("/ui/calls/abc", expect=404)
    assert "expected a date" in ui.get("/ui/spend", expect=400, start="yesterday").text


def test_teams(gateway: Any, ui: UI, admin: Admin) -> None:
    made = ui.post("/ui/teams/new", {"team_alias": "Ops", "max_budget": "10", "models": "nova"})
    team_id = made.headers["location"].split("/ui/teams/")[1].split("?")[0]
    assert admin.get("/team/info", team_id=team_id)["team_info"]["team_alias"] == "Ops"
    assert "Ops" in ui.get("/ui/teams").text
    form = ui.get(f"/ui/teams/{team_id}").text
    assert f'href="/ui/keys/new?team_id={team_id}"' in form
    key = created_key(
        ui.post("/ui/keys/new", {"key_alias": "ops-1", "team_id": team_id}, status=200).text
    )
    members = ui.get(f"/ui/teams/{team_id}").text
    assert "ops-1" in members and key not in members
    ui.post(f"/ui/teams/{team_id}", _edit_form(members, max_budget="20", team_alias="Operations"))
    info = admin.get("/team/info", team_id=team_id)["team_info"]
    assert (
        info["max_budget"] == 20
        and info["team_alias"] == "Operations"
        and info["models"] == ["nova"]
    )
    with pytest.raises(openai.PermissionDeniedError, match="may not use model"):
        chat(gateway.url, key, model="other")  # the team's models apply to its keys
    ui.post(f"/ui/teams/{team_id}/delete", {}, status=400)
    ui.post(f"/ui/teams/{team_id}/delete", {"confirm": "on"})
    admin.get("/team/info", status=404, team_id=team_id)
    admin.get("/key/info", status=404, key=key)  # a team's keys go with it


def _csv(ui: UI, by: str) -> list[dict[str, str]]:
    r = ui.get("/ui/spend.csv", by=by)
    assert r.headers["content-type"].startswith("text/csv")
    assert f"outcrop-spend-by-{by}-" in r.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(r.text)))


def test_spend_calls_and_models(gateway: Any, ui: UI, admin: Admin, bedrock_simulator: Any) -> None:
    ui.post("/ui/teams/new", {"team_id": "blue", "team_alias": "Blue"})
    a = admin.generate(key_alias="alpha", team_id="blue")
    b = admin.generate(key_alias="beta")
    for _ in range(3):
        chat(gateway.url, a["key"])
    chat(gateway.url, b["key"], model="other")
    bedrock_simulator.reset()  # the next Converse fails once, then answers again
    bedrock_simulator.reply(HttpError(500, "InternalServerException", "upstream broke"), times=1)
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))
    with pytest.raises(openai.APIStatusError):
        chat(gateway.url, b["key"])
    flushed(gateway)
    rows = wait_for(lambda: len(admin.get("/spend/logs")) == 5 and admin.get("/spend/logs"))
    assert rows, "five spend rows"
    total = sum(r["spend"] for r in rows)
    assert total > 0

    by_model = {r["model"]: r for r in _csv(ui, "model")}
    assert set(by_model) == {"nova", "other"}
    for model, line in by_model.items():
        mine = [r for r in rows if r["model"] == model]
        assert int(line["requests"]) == len(mine)
        assert float(line["spend_usd"]) == pytest.approx(sum(r["spend"] for r in mine))
    assert by_model["nova"]["errors"] == "1" and by_model["other"]["errors"] == "0"
    by_key = {r["key"]: r for r in _csv(ui, "key")}
    assert int(by_key["alpha"]["requests"]) == 3 and by_key["alpha"]["id"] == a["token"]
    assert int(by_key["beta"]["requests"]) == 2
    by_team = {r["team"]: r for r in _csv(ui, "team")}
    assert int(by_team["Blue"]["requests"]) == 3 and int(by_team["(no team)"]["requests"]) == 2
    days = _csv(ui, "day")
    assert len(days) == 30 and sum(int(d["requests"]) for d in days) == 5
    assert sum(float(d["spend_usd"]) for d in days) == pytest.approx(total)
    page = ui.get("/ui/spend").text
    assert page.count('<svg class="chart"') == 4 and "alpha" in page and "Blue" in page
    assert ">5</b>" in page  # the requests card

    calls = ui.get("/ui/calls").text
    assert calls.count('href="/ui/calls/') == 5
    assert ui.get("/ui/calls", key="alpha").text.count('href="/ui/calls/') == 3
    assert ui.get("/ui/calls", key=b["key"]).text.count('href="/ui/calls/') == 2
    assert ui.get("/ui/calls", model="other").text.count('href="/ui/calls/') == 1
    failed = ui.get("/ui/calls", status="error").text
    assert (
        failed.count('href="/ui/calls/') == 1
        and ui.get("/ui/calls", status="502").text.count('href="/ui/calls/') == 1
    )
    assert (
        ui.get("/ui/calls", start="2000-01-01T00:00", end="2000-01-02T00:00").text.count(
            'href="/ui/calls/'
        )
        == 0
    )
    assert ui.get("/ui/calls", key="no-such-alias").text.count('href="/ui/calls/') == 0
    row_id = re.search(r'href="/ui/calls/(\d+)"', failed).group(1)  # type: ignore[union-attr]
    details = ui.get(f"/ui/calls/{row_id}").text
    error_row = next(r for r in rows if r["status"] >= 400)
    assert error_row["request_id"] in details and "upstream broke" in details
    assert "beta" in details and "nova#0" in details
    assert "<li>nova#0 in us-west-2: status 500" in details  # the failed upstream attempt
    ok_id = re.search(r'href="/ui/calls/(\d+)"', ui.get("/ui/calls", status="ok").text).group(1)  # type: ignore[union-attr]
    assert "one at most (no retry)" in ui.get(f"/ui/calls/{ok_id}").text
    assert ui.get("/ui/calls", size="2").text.count('href="/ui/calls/') == 2
    second = ui.get("/ui/calls", size="2", page="3").text
    assert second.count('href="/ui/calls/') == 1 and "5\u20135 of 5" in second

    models = ui.get("/ui/models").text
    # the router's cooldown state where the gateway reports one, else n/a
    cooldown = "ready" if callable(getattr(gateway.gateway.router, "cooling", None)) else "n/a"
    for expected in ("nova#0", "other#1", "testprov", "us-west-2", cooldown, "25.0%"):
        assert expected in models, expected  # nova: 1 error in 4 calls in the last hour
