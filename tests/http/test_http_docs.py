"""/docs and /redoc: pages that load nothing from elsewhere, and the files they need served by
huihua from the fastapi-offline package. (Rendered offline in Chromium: test_http_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from huihua.http.docs import ASSET_PATH, ASSET_VERSION

pytestmark = pytest.mark.anyio


def local_urls(html: str) -> list[str]:
    urls = re.findall(r'(?:src|href|spec-url|data-openapi)="([^"]*)"', html)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    return urls


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_pages_name_only_files_served_here(app: FastAPI, path: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "<script>" not in r.text  # no inline script: the CSP would refuse it
        for url in local_urls(r.text):
            got = await c.get(url)
            assert got.status_code == 200 and got.content, url
            if url.startswith(ASSET_PATH):
                assert "immutable" in got.headers["cache-control"]
                assert got.headers["x-content-type-options"] == "nosniff"


async def test_assets_are_the_packages_and_nothing_else(app: FastAPI) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", ASSET_VERSION)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        js = await c.get(f"{ASSET_PATH}/swagger-ui-bundle.js")
        assert js.headers["content-type"].startswith("text/javascript") and b"SwaggerUIBundle" in js.content
        css = await c.get(f"{ASSET_PATH}/swagger-ui.css")
        assert css.headers["content-type"].startswith("text/css")
        redoc = await c.get(f"{ASSET_PATH}/redoc.standalone.js")
        assert b"Redoc" in redoc.content
        for path in (f"{ASSET_PATH}/core.py", "/docs/assets/0.0.1/swagger-ui.css", "/docs/oauth2-redirect"):
            assert (await c.get(path)).status_code == 404, path
        r = await c.get(f"{ASSET_PATH}/favicon.png", params={"name": "../core.py"})
        assert r.headers["content-type"] == "image/png"  # no parameter picks a file
        paths = (await c.get("/openapi.json")).json()["paths"]
        assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


async def test_pages_follow_root_path(make_app: Callable[..., FastAPI]) -> None:
    transport = httpx.ASGITransport(app=make_app(), root_path="/auth")
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/docs")
        assert all(u.startswith("/auth/") for u in local_urls(r.text)), r.text
