"""The access-token manager: shared through the store, one refresher at a time, refreshed ahead of
expiry, and replaced once after 40001/42001."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, cast

import anyio
import httpx
import pytest

from huihua.core.clock import FakeClock
from huihua.core.store import AsyncStore
from huihua.stores.inline import InlineAsyncStore
from huihua.stores.memory import MemoryStore
from huihua.wechat import AsyncWeChatClient, InvalidToken, WeChatClient, WeChatUnavailable
from huihua.wechat.emulator import Emulator

Calls = Callable[[str], list[dict[str, Any]]]
MakeClient = Callable[..., WeChatClient]
MakeAsync = Callable[..., AsyncWeChatClient]
STABLE = "/cgi-bin/stable_token"


def fault(
    emu: Emulator, path: str, *, errcode: int | None = None, latency_ms: float = 0, times: int = 1
) -> None:
    emu.add_fault(path, errcode=errcode, latency_ms=latency_ms, http_status=None, times=times)


def test_one_token_for_many_calls_and_clients_sharing_a_store(make_client: MakeClient, calls: Calls) -> None:
    store = MemoryStore()
    first, second = make_client(token_store=store), make_client(token_store=store)
    token = first.access_token()
    assert first.access_token() == token == second.access_token() == second.tokens.get()
    assert len(calls(STABLE)) == 1
    assert make_client().access_token() == token  # its own cache; stable_token: the same token
    assert len(calls(STABLE)) == 2


@pytest.mark.parametrize("where", ["asgi", "http"])
def test_threads_in_many_processes_make_one_refresh(
    where: str, request: pytest.FixtureRequest, make_client: MakeClient, emu: Emulator, calls: Calls
) -> None:
    kwargs = {"api_base": request.getfixturevalue("live_url")} if where == "http" else {}
    store = MemoryStore()
    clients = [make_client(token_store=store, **kwargs) for _ in range(8)]  # one per "process"
    fault(emu, STABLE, latency_ms=150)  # the refresh is in flight while the others arrive
    barrier = threading.Barrier(len(clients) * 2)
    tokens: list[str] = []

    def work(client: WeChatClient) -> None:
        barrier.wait()
        tokens.append(client.access_token())

    threads = [threading.Thread(target=work, args=(c,)) for c in clients for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(tokens) == 16 and len(set(tokens)) == 1
    assert len(calls(STABLE)) == 1
    assert store.kv_get(clients[0]._token_cache.lock_key, now=0) is None  # released


@pytest.mark.anyio
async def test_tasks_in_many_processes_make_one_refresh(
    make_async_client: MakeAsync, emu: Emulator, calls: Calls
) -> None:
    store = cast(AsyncStore, InlineAsyncStore(MemoryStore()))
    clients = [make_async_client(token_store=store) for _ in range(8)]
    fault(emu, STABLE, latency_ms=150)
    tokens: list[str] = []

    async def work(client: AsyncWeChatClient) -> None:
        tokens.append(await client.access_token())

    async with anyio.create_task_group() as group:
        for client in clients * 2:
            group.start_soon(work, client)
    assert len(tokens) == 16 and len(set(tokens)) == 1
    assert len(calls(STABLE)) == 1


def test_refreshed_300_s_ahead_of_expiry(make_client: MakeClient, clock: FakeClock, calls: Calls) -> None:
    client = make_client()
    token = client.access_token()
    clock.advance(7200 - 300 - 1)
    assert client.access_token() == token
    assert len(calls(STABLE)) == 1
    clock.advance(2)  # 299 s left: due; WeChat rotates the stable token 5 minutes early too
    fresh = client.access_token()
    assert fresh != token
    assert len(calls(STABLE)) == 2
    clock.advance(7200 - 300 - 1)
    assert client.access_token() == fresh


def test_a_due_token_is_used_while_another_process_refreshes(
    make_client: MakeClient, clock: FakeClock, calls: Calls
) -> None:
    store = MemoryStore()
    client = make_client(token_store=store)
    token = client.access_token()
    clock.advance(7000)  # due, not expired
    store.kv_set(client._token_cache.lock_key, "another-process", now=clock.now(), ttl=30)
    assert client.access_token() == token  # no waiting
    assert len(calls(STABLE)) == 1


class FinishesFirst(MemoryStore):
    """Another process stores a fresh token just before we get the lock it released."""

    def __init__(self, lock_key: str, key: str, clock: FakeClock) -> None:
        super().__init__()
        self.lock_key, self.key, self.clock = lock_key, key, clock

    def kv_set(self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False) -> bool:
        if key == self.lock_key and only_if_absent and self.kv_get(self.key, now=now) is None:
            item = {"access_token": "THEIRS", "refresh_at": now + 6900, "expires_at": now + 7200}
            super().kv_set(self.key, json.dumps(item), now=now, ttl=7200)
        return super().kv_set(key, value, now=now, ttl=ttl, only_if_absent=only_if_absent)


def test_the_cache_is_read_again_under_the_lock(
    make_client: MakeClient, clock: FakeClock, calls: Calls
) -> None:
    client = make_client()
    cache = client._token_cache
    client._store = FinishesFirst(cache.lock_key, cache.key, clock)
    assert client.access_token() == "THEIRS"
    assert calls(STABLE) == []


def test_the_lock_is_released_when_the_fetch_fails(
    make_client: MakeClient, emu: Emulator, clock: FakeClock, calls: Calls
) -> None:
    store = MemoryStore()
    client = make_client(token_store=store)
    fault(emu, STABLE, errcode=-1, times=3)
    with pytest.raises(WeChatUnavailable):
        client.access_token()
    assert store.kv_get(client._token_cache.lock_key, now=clock.now()) is None
    assert client.access_token()
    assert len(calls(STABLE)) == 4


def test_waiters_give_up_when_the_refresher_never_finishes(
    make_client: MakeClient, clock: FakeClock, calls: Calls
) -> None:
    store = MemoryStore()
    client = make_client(token_store=store, timeout=0.01, retries=0)
    client._token_cache._wait = 0.05
    store.kv_set(client._token_cache.lock_key, "stuck", now=clock.now(), ttl=30)
    with pytest.raises(WeChatUnavailable, match="another process"):
        client.access_token()
    assert calls(STABLE) == []
    clock.advance(30)  # the holder's lock lapses: the next caller takes over
    assert client.access_token()


def test_unreadable_cache_entries_are_refetched(
    make_client: MakeClient, clock: FakeClock, calls: Calls
) -> None:
    store = MemoryStore()
    client = make_client(token_store=store)
    store.kv_set(client._token_cache.key, "{not json", now=clock.now(), ttl=100)
    assert client.access_token()
    assert json.loads(store.kv_get(client._token_cache.key, now=clock.now()) or "")["access_token"]
    assert len(calls(STABLE)) == 1


def test_a_40001_is_refreshed_once_and_retried_once(
    make_client: MakeClient, emu: Emulator, calls: Calls
) -> None:
    client = make_client()
    user = emu.login()
    key = client.code2session(user["code"]).session_key
    fault(emu, "/wxa/checksession", errcode=40001)
    assert client.check_session_key(user["openid"], key) is True
    assert len(calls(STABLE)) == 2  # the first fetch, and one refresh
    assert [c["errcode"] for c in calls("/wxa/checksession")] == [40001, 0]


@pytest.mark.parametrize("errcode", [40001, 42001])
def test_a_second_token_error_is_raised_not_looped(
    make_client: MakeClient, emu: Emulator, calls: Calls, errcode: int
) -> None:
    client = make_client()
    user = emu.login()
    key = client.code2session(user["code"]).session_key
    fault(emu, "/wxa/checksession", errcode=errcode, times=5)
    with pytest.raises(InvalidToken) as caught:
        client.check_session_key(user["openid"], key)
    assert caught.value.errcode == errcode
    assert len(calls(STABLE)) == 2
    assert len(calls("/wxa/checksession")) == 2


@pytest.mark.parametrize("errcode", [40014, 41001])
def test_other_token_errors_are_not_refreshed(
    make_client: MakeClient, emu: Emulator, calls: Calls, errcode: int
) -> None:
    client = make_client()
    fault(emu, "/wxa/checksession", errcode=errcode)
    with pytest.raises(InvalidToken):
        client.check_session_key("o", "AAAAAAAAAAAAAAAAAAAAAA==")
    assert len(calls(STABLE)) == 1


def test_a_token_invalidated_elsewhere_is_replaced(
    make_client: MakeClient, emu: Emulator, calls: Calls
) -> None:
    """A real 40001: someone force-refreshes; the cached token dies at once."""
    client = make_client()
    user = emu.login()
    key = client.code2session(user["code"]).session_key
    old = client.access_token()
    forced = make_client().get_stable_access_token(force_refresh=True)
    assert forced.value != old
    assert client.check_session_key(user["openid"], key) is True
    assert client.access_token() == forced.value
    assert [c["errcode"] for c in calls("/wxa/checksession")] == [40001, 0]


def test_one_replacement_for_many_callers_of_the_rejected_token(
    make_client: MakeClient, emu: Emulator, calls: Calls
) -> None:
    store = MemoryStore()
    clients = [make_client(token_store=store) for _ in range(3)]
    old = clients[0].access_token()
    clients[0].get_stable_access_token(force_refresh=True)  # old is dead now
    new = clients[1].tokens.replace(old)
    assert clients[2].tokens.replace(old) == new == clients[0].tokens.replace(old)
    assert len(calls(STABLE)) == 3  # first fetch, the forced one, ONE replacement


@pytest.mark.anyio
async def test_async_reactive_refresh(make_async_client: MakeAsync, emu: Emulator, calls: Calls) -> None:
    client = make_async_client()
    user = emu.login()
    key = (await client.code2session(user["code"])).session_key
    fault(emu, "/wxa/checksession", errcode=42001)
    assert await client.check_session_key(user["openid"], key) is True
    fault(emu, "/wxa/checksession", errcode=40001, times=2)
    with pytest.raises(InvalidToken):
        await client.check_session_key(user["openid"], key)
    assert len(calls(STABLE)) == 3
    await client.tokens.clear()
    assert await client.tokens.get()
    assert len(calls(STABLE)) == 4


def test_classic_mode_uses_cgi_bin_token(
    make_client: MakeClient, emu: Emulator, clock: FakeClock, calls: Calls
) -> None:
    store = MemoryStore()
    client = make_client(token_store=store, stable_token=False)
    user = emu.login()
    key = client.code2session(user["code"]).session_key
    token = client.access_token()
    assert calls(STABLE) == [] and len(calls("/cgi-bin/token")) == 1
    client.get_access_token()  # an uncoordinated fetch: the cached token dies in 5 minutes
    clock.advance(301)
    assert client.check_session_key(user["openid"], key) is True  # 40001, refreshed, retried
    assert client.access_token() != token
    assert len(calls("/cgi-bin/token")) == 3
    stable = make_client(token_store=store)
    assert stable.access_token() != client.access_token()  # separate cache entries


def test_the_cache_key_names_the_api_base(make_client: MakeClient) -> None:
    real = WeChatClient("wxa", "s")
    assert real._token_cache.key == "huihua:wechat:stable_token:wxa"
    real.close()
    emulated = make_client(appid="wxa")
    assert emulated._token_cache.key.startswith("huihua:wechat:stable_token:wxa@")


def test_mock_transport_tokens_and_expires_in(make_client: MakeClient, clock: FakeClock) -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={"access_token": f"T{len(sent)}", "expires_in": 400})

    client = make_client(api_base="http://wechat", transport=httpx.MockTransport(answer))
    assert client.access_token() == "T1"
    clock.advance(199)  # a short-lived token is refreshed at half its life
    assert client.access_token() == "T1"
    clock.advance(2)
    assert client.access_token() == "T2"
