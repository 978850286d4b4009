"""The client's address and scheme behind the reverse proxies named in HUIHUA_TRUST_PROXY.

The one place forwarded headers are read (uvicorn's own handling is off, see `huihua serve`).
Only a peer that is a trusted proxy is believed. X-Forwarded-For is walked from the right, the
end our own proxies append to, past every hop that is itself a trusted proxy: the first hop that
is not is the client. The left part is whatever the client chose to write, so it never counts. A
hop that is not an IP address stops the walk at the last address we could vouch for.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.addresses import Network, is_trusted, parse_ip


def forwarded_client(peer: str | None, forwarded_for: list[str], proxies: tuple[Network, ...]) -> str | None:
    """The client address for a request from `peer` carrying these X-Forwarded-For headers (in
    order; several headers read as one list)."""
    here = parse_ip(peer) if peer else None
    if not is_trusted(here, proxies):
        return peer
    client: str | None = str(here)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        address = parse_ip(hop)
        if address is None:
            break
        client = str(address)
        if not is_trusted(address, proxies):
            break
    return client


def forwarded_scheme(
    peer: str | None, forwarded_proto: list[str], proxies: tuple[Network, ...]
) -> str | None:
    """`http` or `https` as the trusted proxy in front of us saw it (its value is the rightmost),
    or None to keep the connection's own scheme."""
    if not forwarded_proto or not is_trusted(parse_ip(peer) if peer else None, proxies):
        return None
    proto = forwarded_proto[-1].split(",")[-1].strip().lower()
    return proto if proto in ("http", "https") else None


class TrustedProxyMiddleware:
    """Rewrites the ASGI `client` and `scheme` for requests that come through a trusted proxy."""

    def __init__(self, app: ASGIApp, *, proxies: tuple[Network, ...]) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = scope["client"][0] if scope.get("client") else None
            headers = Headers(scope=scope)
            client = forwarded_client(peer, headers.getlist("x-forwarded-for"), self.proxies)
            scheme = forwarded_scheme(peer, headers.getlist("x-forwarded-proto"), self.proxies)
            if client != peer or scheme is not None:
                port = scope["client"][1] if client == peer and scope.get("client") else 0
                scope = {**scope, "client": (client, port) if client else None}
                if scheme is not None:
                    scope["scheme"] = scheme
        await self.app(scope, receive, send)
