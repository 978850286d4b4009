"""huihua.client.Introspector against a real `huihua serve`: answers, the cache and its limits
(a revoked session is accepted for at most the TTL; ttl=0 sees it at once), errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from servicekit import PASSWORD, SERVICE_KEY, ServeProcess, free_port, serve_env

from huihua.client import Introspector, ServiceRefused, ServiceUnavailable, token_key

pytestmark = pytest.mark.slow


class Counting(httpx.HTTPTransport):
    calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return super().handle_request(request)


class AsyncCounting(httpx.AsyncHTTPTransport):
    calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return await super().handle_async_request(request)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("introspector")
    proc = ServeProcess(serve_env(tmp), cwd=tmp).start()
    try:
        yield proc.url
    finally:
        proc.stop()


def login(url: str, username: str) -> tuple[str, str]:
    """(user id, bearer token) of a new account."""
    header = {"X-Session-Transport": "header"}
    with httpx.Client(base_url=url, headers=header, timeout=30) as http:
        r = http.post("/v1/accounts", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = http.post("/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["user"]["id"]), str(r.json()["token"])


def logout(url: str, token: str) -> None:
    r = httpx.post(f"{url}/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 204


def test_active_answers_are_cached_for_the_ttl(service: str) -> None:
    user_id, token = login(service, "carol")
    clock, transport = Clock(), Counting()
    intro = Introspector(service, SERVICE_KEY, ttl=5, clock=clock, client=httpx.Client(transport=transport))
    answer = intro.introspect(token)
    assert answer.active and answer.user_id == user_id and answer.reason is None
    assert answer.session is not None and answer.user is not None and answer.user["username"] == "carol"
    clock.now += 4.9
    assert intro.introspect(token) == answer and transport.calls == 1  # from the cache
    assert all(len(key) == 32 for key in intro._cache) and token not in repr(intro._cache)
    assert token_key(token) in intro._cache

    logout(service, token)
    assert intro.introspect(token).active, "the documented trade-off: accepted until the TTL"
    clock.now += 0.2  # past the TTL
    answer = intro.introspect(token)
    assert not answer.active and answer.reason == "session_revoked" and transport.calls == 2
    intro.introspect(token)
    assert transport.calls == 2  # a negative answer is cached too, never longer than a positive
    clock.now += 5.0
    intro.introspect(token)
    assert transport.calls == 3
    intro.close()


def test_ttl_zero_sees_a_logout_at_once(service: str) -> None:
    _, token = login(service, "dave")
    transport = Counting()
    with Introspector(service, SERVICE_KEY, ttl=0, client=httpx.Client(transport=transport)) as intro:
        assert intro.introspect(token).active and intro.introspect(token).active
        logout(service, token)
        answer = intro.introspect(token)
        assert not answer.active and answer.reason == "session_revoked"
        assert transport.calls == 3 and not intro._cache
        assert intro.introspect("no-such-token").reason == "not_authenticated"


def test_negative_answers_never_outlive_positive_ones(service: str) -> None:
    clock, transport = Clock(), Counting()
    intro = Introspector(
        service, SERVICE_KEY, ttl=1, negative_ttl=60, clock=clock, client=httpx.Client(transport=transport)
    )
    assert intro.negative_ttl == 1
    assert not intro.introspect("unknown").active and not intro.introspect("unknown").active
    assert transport.calls == 1
    clock.now += 1.0
    intro.introspect("unknown")
    assert transport.calls == 2
    assert not intro.introspect("").active and transport.calls == 2  # no call for no token
    intro.close()


@pytest.mark.anyio
async def test_async(service: str) -> None:
    user_id, token = login(service, "erin")
    clock, transport = Clock(), AsyncCounting()
    client = httpx.AsyncClient(transport=transport)
    async with Introspector(service, SERVICE_KEY, ttl=2, clock=clock, async_client=client) as intro:
        assert (await intro.aintrospect(token)).user_id == user_id
        assert (await intro.aintrospect(token)).active and transport.calls == 1
        logout(service, token)
        intro.forget(token)  # a backend told of the logout need not wait for the TTL
        assert (await intro.aintrospect(token)).reason == "session_revoked"
    await client.aclose()


@pytest.mark.anyio
async def test_service_down_and_wrong_key(service: str) -> None:
    down = Introspector(f"http://127.0.0.1:{free_port()}", SERVICE_KEY, timeout=2)
    with pytest.raises(ServiceUnavailable, match="cannot reach huihua"):
        down.introspect("some-token")
    with pytest.raises(ServiceUnavailable, match="cannot reach huihua"):
        await down.aintrospect("some-token")
    await down.aclose()
    with Introspector(service, "wrong-key") as wrong, pytest.raises(ServiceRefused, match="service key"):
        wrong.introspect("some-token")


def test_ttl_is_checked() -> None:
    with pytest.raises(ValueError):
        Introspector("http://x", "k", ttl=-1)
