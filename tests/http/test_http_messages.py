"""Issue 15 item 7: 4xx messages that say what to do next, names in any script, the client kind
from the request, and the absolute deadline as its own field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from servicekit import PASSWORD, ApiClient

from huihua.core.clock import FakeClock

pytestmark = pytest.mark.anyio
NewClient = Callable[..., ApiClient]

BODY = b'{"username": "someone", "password": "x"}'


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
async def test_a_json_body_sent_without_the_json_content_type_is_told_which_header_to_send(
    client: ApiClient, content_type: str
) -> None:
    for path in ("/v1/auth/login", "/v1/accounts"):
        r = await client.post(path, content=BODY, headers={"Content-Type": content_type})
        assert r.status_code == 415, r.text
        error = r.json()["error"]
        assert error["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error["message"] and content_type in error["message"]
        assert "valid dictionary" not in error["message"]


async def test_malformed_json_says_where_it_broke_in_plain_words(client: ApiClient) -> None:
    r = await client.post(
        "/v1/auth/login",
        content=b'{"username": "a",\n "password" "x"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    message = r.json()["error"]["message"]
    assert message == "the request body is not valid JSON: line 2, column 13: expected ':'"
    r = await client.post(
        "/v1/auth/login", content=b'{"a": 1} x', headers={"Content-Type": "application/json"}
    )
    assert r.json()["error"]["message"].endswith(
        "line 1, column 10: unexpected text after the end of the JSON value"
    )
    assert "char" not in r.json()["error"]["message"]


async def test_csrf_failed_says_which_setting_lists_the_origin_or_which_transport_to_use(
    new_client: NewClient,
) -> None:
    browser = new_client("browser")
    r = await browser.post(
        "/v1/accounts",
        {"username": "someone", "password": "x" * 12},
        headers={"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    message = r.json()["error"]["message"]
    assert "https://shop.example" in message
    assert "HUIHUA_ALLOWED_ORIGINS" in message and "HUIHUA_CORS_ORIGINS" in message
    assert "X-Session-Transport: header" in message


@pytest.mark.parametrize(
    ("raw", "stored"), [("张三", "张三"), ("ab", "ab"), ("Ｚｏë", "zoë"), ("李", None), ("a b", None)]
)
async def test_usernames_of_two_characters_in_any_script(
    client: ApiClient, raw: str, stored: str | None
) -> None:
    r = await client.post("/v1/accounts", {"username": raw, "password": PASSWORD})
    if stored is None:
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_username"
        assert "2 to 64 characters" in r.json()["error"]["message"]
        assert "letters of any script" in r.json()["error"]["message"]
        return
    assert r.status_code == 201, r.text
    assert r.json()["user"]["username"] == stored
    login = await client.post("/v1/auth/login", {"username": raw, "password": PASSWORD})
    assert login.status_code == 200 and login.json()["user"]["username"] == stored


async def test_the_username_rule_is_in_the_openapi_schema(client: ApiClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    body = schema["paths"]["/v1/accounts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["properties"]["username"]
    assert (name["minLength"], name["maxLength"]) == (2, 64)
    assert "NFKC" in name["description"] and "letters of any script" in name["description"]


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


@pytest.mark.parametrize(
    ("declared", "kind", "idle"),
    [(None, "miniprogram", 2 * 86400), ("service", "service", 15 * 60), ("Browser", "browser", 30 * 60)],
)
async def test_header_clients_say_what_kind_they_are(
    new_client: NewClient, declared: str | None, kind: str, idle: float
) -> None:
    header = new_client("header")
    await header.register(f"k{kind}")
    extra = {"X-Client-Kind": declared} if declared else {}
    r = await header.post("/v1/auth/login", {"username": f"k{kind}", "password": PASSWORD}, headers=extra)
    assert r.status_code == 200, r.text
    session = r.json()["session"]
    assert session["client"] == kind
    assert _seconds(session["idle_expires_at"], session["last_seen_at"]) == idle
    listed = (await header.get("/v1/sessions")).json()["sessions"]
    assert [s["client"] for s in listed] == [kind]


async def test_an_unknown_or_impossible_client_kind_is_a_400_that_says_why(new_client: NewClient) -> None:
    header, browser = new_client("header"), new_client("browser")
    r = await header.patch("/v1/session/data", {"set": {"a": 1}}, headers={"X-Client-Kind": "robot"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_client_kind"
    assert (
        "miniprogram, service, browser" in r.json()["error"]["message"]
        and "robot" in r.json()["error"]["message"]
    )
    assert header.token is None  # nothing was created
    r = await browser.patch("/v1/session/data", {"set": {"a": 1}}, headers={"X-Client-Kind": "service"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_client_kind"
    assert "X-Session-Transport: header" in r.json()["error"]["message"]
    r = await browser.patch("/v1/session/data", {"set": {"a": 1}}, headers={"X-Client-Kind": "browser"})
    assert r.status_code == 200


async def test_the_absolute_deadline_is_its_own_field_and_expires_at_the_earlier(
    new_client: NewClient, clock: FakeClock
) -> None:
    header = new_client("header")
    await header.register("deadline")
    r = await header.post(
        "/v1/auth/login", {"username": "deadline", "password": PASSWORD}, headers={"X-Client-Kind": "service"}
    )
    session = r.json()["session"]
    assert _seconds(session["absolute_expires_at"], session["created_at"]) == 3600
    assert _seconds(session["idle_expires_at"], session["created_at"]) == 900
    assert session["expires_at"] == session["idle_expires_at"]  # idle comes first, for now
    for _ in range(5):  # active all along: the idle deadline moves past the absolute one
        clock.advance(10 * 60)
        assert (await header.get("/v1/auth/me")).status_code == 200
    me = (await header.get("/v1/auth/me")).json()["session"]
    assert _seconds(me["idle_expires_at"], me["absolute_expires_at"]) > 0
    assert me["expires_at"] == me["absolute_expires_at"] == session["absolute_expires_at"]
    listed = (await header.get("/v1/sessions")).json()["sessions"][0]
    assert (
        listed["absolute_expires_at"] == me["absolute_expires_at"]
        and listed["expires_at"] == me["expires_at"]
    )
    schema = (await header.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("SessionOut", "SessionListItem"):
        assert "absolute_expires_at" in schema[name]["required"]
        assert "earlier" in schema[name]["properties"]["expires_at"]["description"]
