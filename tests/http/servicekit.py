"""Helpers for the HTTP service tests: an app on a per-test SQLite file with a fake clock, and the
two kinds of client the service knows (docs/http-api.md#transports).

- `BrowserClient`: a cookie jar, and `Origin: http://testserver` on every write, as a browser
  sends it; it never sees a token (the cookie is HttpOnly and the body has none).
- `HeaderClient`: a mini program or backend: `X-Session-Transport: header` until it has a
  token, then `Authorization: Bearer <token>`; it picks new tokens from `X-Session-Token`.

Route tests take the `client` fixture, parametrised over both with ids `browser` and `header`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

SERVICE_KEY = "test-service-key-7b1f0c9e"
PASSWORD = "correct horse battery"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
START_TIMEOUT = 120.0  # a loaded CI machine can take half a minute just to import the app


class ApiClient:
    kind = "base"

    def __init__(self, app: FastAPI, *, base_url: str = "http://testserver", **transport: Any) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, **transport), base_url=base_url)
        self.token: str | None = None

    def headers(self, method: str) -> dict[str, str]:
        raise NotImplementedError

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        sent = self.headers(method)
        sent.update(headers or {})
        response = await self.http.request(method, path, json=json, headers=sent, **kw)
        self.saw(response)
        return response

    def saw(self, response: httpx.Response) -> None:
        pass

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("POST", path, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kw)

    async def register(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        r = await self.post("/v1/accounts", {"username": username, "password": password})
        assert r.status_code == 201, r.text
        user: dict[str, Any] = r.json()["user"]
        return user

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        r = await self.post("/v1/auth/login", {"username": username, "password": password})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def signup(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        await self.register(username, password)
        return await self.login(username, password)

    @property
    def credential(self) -> str | None:
        """The token this client would present now (cookie or bearer)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.http.aclose()


class BrowserClient(ApiClient):
    kind = "browser"

    def headers(self, method: str) -> dict[str, str]:
        return {} if method in SAFE else {"Origin": self.base_url}

    @property
    def cookie_name(self) -> str:
        return "__Host-sid" if self.base_url.startswith("https") else "sid"

    @property
    def credential(self) -> str | None:
        return self.http.cookies.get(self.cookie_name)

    def present(self, token: str | None) -> None:
        """Put `token` in the cookie jar (or empty it), as a browser that kept an old cookie."""
        self.http.cookies.clear()
        if token is not None:
            self.http.cookies.set(self.cookie_name, token)


class HeaderClient(ApiClient):
    kind = "header"

    def headers(self, method: str) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        return {"X-Session-Transport": "header"}

    def saw(self, response: httpx.Response) -> None:
        if new := response.headers.get("x-session-token"):
            body_token = None
            if response.headers.get("content-type", "").startswith("application/json"):
                body = response.json()
                body_token = body.get("token") if isinstance(body, dict) else None
            assert body_token in (None, new), "the body and X-Session-Token disagree"
            self.token = new

    @property
    def credential(self) -> str | None:
        return self.token

    def present(self, token: str | None) -> None:
        self.token = token


CLIENT_KINDS = {"browser": BrowserClient, "header": HeaderClient}


# -- real processes ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


def huihua_command() -> list[str]:
    return [str(Path(sys.executable).parent / "huihua")]


class ServeProcess:
    """`huihua serve` in a subprocess on a free loopback port."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        cwd: Path,
        port: int | None = None,
        log_level: str | None = "warning",  # None: no --log-level, serve's own default
        args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.args = args  # more `serve` options (--workers 2, ...)
        self.log_level = log_level
        self.args = list(args)  # more `huihua serve` options: --workers 2, --emulator ...
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = cwd / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        self._log = self.stderr_path.open("ab")
        level = ["--log-level", self.log_level] if self.log_level is not None else []
        self.proc = subprocess.Popen(
            [*huihua_command(), "serve", "--port", str(self.port), *level, *self.args],
            env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.port, self.proc, timeout=START_TIMEOUT)
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if hasattr(self, "_log"):
            self._log.close()

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIHUA_")}
    env.update({"HUIHUA_STORE": f"sqlite:///{tmp_path}/huihua.db", "HUIHUA_SERVICE_KEY": SERVICE_KEY,
                "NO_COLOR": "1", "COLUMNS": "200"})  # fmt: skip
    env.update(extra)
    return env


# -- raw ASGI, for bytes no HTTP client would send -----------------------------------------------
class RawResponse:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.raw_headers = headers
        self.body = body

    def header_values(self, name: str) -> list[str]:
        return [
            v.decode("latin-1") for k, v in self.raw_headers if k.decode("latin-1").lower() == name.lower()
        ]

    def json(self) -> Any:
        import json

        return json.loads(self.body)


async def raw_request(
    app: Any,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    scheme: str = "http",
) -> RawResponse:
    """Call the ASGI app with exactly these header bytes (CR, LF, invalid UTF-8 included)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": scheme, "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    sent = False
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return RawResponse(start["status"], list(start.get("headers", [])), payload)
