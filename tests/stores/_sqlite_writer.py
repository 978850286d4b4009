"""A writer process for tests/stores/test_sqlite_processes.py; prints each acknowledged write.

python _sqlite_writer.py PATH load            create/update/revoke until killed
python _sqlite_writer.py PATH k6 FLAVOUR TOKEN N   N creates and N increments of TOKEN
"""

from __future__ import annotations

import asyncio
import sys

from huihua.core.async_manager import AsyncSessionManager
from huihua.core.manager import SessionManager
from huihua.stores import async_store_from_url, store_from_url


def ack(*parts: object) -> None:
    print(*parts, flush=True)  # only after the store returned: the write is committed


def load(path: str) -> None:
    m = SessionManager(store_from_url(f"sqlite:///{path}"), events=())
    tokens: list[str] = []
    i = 0
    while True:
        i += 1
        s = m.create(user_id=f"u{i % 7}", data={"i": i, "pad": "x" * (i % 50)})
        assert s.token is not None
        tokens.append(s.token)
        ack("C", s.token, i)
        old = tokens[i // 2]
        try:
            m.update(m.load(old, touch=False), set={"u": i})
            ack("U", old, i)
        except Exception:  # revoked earlier: fine
            pass
        if i % 5 == 0:
            victim = tokens[i - 3]
            m.revoke(victim)
            ack("R", victim, i)


async def k6_async(path: str, token: str, n: int) -> None:
    m = AsyncSessionManager(async_store_from_url(f"sqlite:///{path}"), events=())
    for _ in range(n):
        await m.create(data={"by": "async"})
        await m.update(await m.load(token, touch=False), incr={"n": 1})


def k6_sync(path: str, token: str, n: int) -> None:
    m = SessionManager(store_from_url(f"sqlite:///{path}"), events=())
    for _ in range(n):
        m.create(data={"by": "sync"})
        m.update(m.load(token, touch=False), incr={"n": 1})


if __name__ == "__main__":
    if sys.argv[2] == "load":
        load(sys.argv[1])
    elif sys.argv[3] == "async":
        asyncio.run(k6_async(sys.argv[1], sys.argv[4], int(sys.argv[5])))
    else:
        k6_sync(sys.argv[1], sys.argv[4], int(sys.argv[5]))
    print("done", flush=True)
