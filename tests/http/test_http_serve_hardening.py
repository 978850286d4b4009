"""`huihua serve` as an operator starts it: what it exposes, the files it creates, what it logs
(issue 9 item 8 and the Low bullets)."""

from __future__ import annotations

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
