"""`huihua serve` as an operator starts it: what it exposes, the files it creates, what it logs
(issue 9 item 8 and the Low bullets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from servicekit import ServeProcess, free_port, wait_for_port

Serve = Callable[..., ServeProcess]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on TCP `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(_address(address, width))
    return found


def _address(hex_address: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_address)
    if width == 8:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # four little-endian words
    return str(ipaddress.IPv6Address(words))


# -- item 8: the emulator started by serve is on loopback whatever --host is ----------------------
def test_serve_emulator_listens_on_loopback_only(serve: Serve) -> None:
    emulator_port = free_port()
    server = serve(args=("--host", "0.0.0.0", "--emulator", "--emulator-port", str(emulator_port)))
    wait_for_port(emulator_port, server.proc)
    assert listening_addresses(server.port) == {"0.0.0.0"}  # --host applies to the service
    assert listening_addresses(emulator_port) == {"127.0.0.1"}
    assert f"WeChat emulator on http://127.0.0.1:{emulator_port}" in server.log()
    # the service uses it there
    r = httpx.post(f"http://127.0.0.1:{emulator_port}/_emulator/login", json={"openid": "o_test"})
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    r = httpx.post(f"{server.url}/v1/auth/wechat", json={"code": code},
                   headers={"X-Session-Transport": "header"})  # fmt: skip
    assert r.status_code == 200, r.text


# -- JSON bodies: malformed or deeper than 32 levels is a 400 on every route ------------------------
def nested(levels: int) -> str:
    """A JSON body for PATCH /v1/session/data nesting `levels` levels in all."""
    assert levels >= 3
    inner = "[" * (levels - 2) + "1" + "]" * (levels - 2)
    return '{"set": {"deep": ' + inner + "}}"


def test_json_nesting_is_capped_at_32_levels(serve: Serve) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, headers={"X-Session-Transport": "header",
                                                    "Content-Type": "application/json"}) as c:  # fmt: skip
        r = c.patch("/v1/session/data", content=nested(32))
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        r = c.patch("/v1/session/data", content=nested(33), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep"
        for path in (
            "/v1/auth/login",
            "/v1/accounts",
            "/v1/session/data",
            "/v1/introspect",
            "/v1/auth/logout",
        ):
            for body in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
                r = c.request("PATCH" if path == "/v1/session/data" else "POST", path, content=body)
                assert r.status_code == 400, (path, r.text)
                assert r.json()["error"]["code"] == "json_too_deep"
                assert "32" in r.json()["error"]["message"]
        # the stored data is still the 32-level one
        r = c.get("/v1/session/data", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["data"]["deep"] == json.loads(nested(32))["set"]["deep"]
    assert "Traceback" not in server.log()


def test_malformed_json_is_a_400(serve: Serve) -> None:
    server = serve()
    for body in (b"{bad", b'{"username": "a",}', b"\xff\xfe{", b'{"a": 1} trailing'):
        for path in ("/v1/auth/login", "/v1/accounts", "/v1/session/data"):
            r = httpx.request("PATCH" if path == "/v1/session/data" else "POST", f"{server.url}{path}", content=body,
                              headers={"Content-Type": "application/json", "X-Session-Transport": "header"})  # fmt: skip
            assert r.status_code == 400, (path, body, r.text)
            assert r.json()["error"]["code"] == "invalid_json"
            assert r.json()["error"]["message"].startswith("the request body is not valid JSON")
