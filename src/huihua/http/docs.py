"""`/docs` (Swagger UI) and `/redoc` (ReDoc) with every file served by huihua itself, from the
`fastapi-offline` package (a dependency that ships Swagger UI's and ReDoc's built files), so the
pages work offline and where a CDN is slow or blocked. FastAPI's own pages load them from a CDN
at run time and are turned off (`docs_url=None, redoc_url=None`).

The pages have no inline script (Swagger UI is started by swagger-init.js; ReDoc starts itself
from its `<redoc spec-url>` element), under a CSP that lets scripts come from this origin only.
The files' URLs carry the package's version, so browsers may keep them for a year.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from html import escape
from importlib.metadata import version
from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import HTMLResponse, Response

ASSET_PACKAGE = "fastapi_offline"
ASSET_VERSION = version("fastapi-offline")
ASSETS = {  # file in the package's static/ -> media type
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
ASSET_PATH = f"/docs/assets/{ASSET_VERSION}"
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
_PAGE_HEADERS = {"Content-Security-Policy": _CSP, "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}
_INIT_SCRIPT = files(__package__).joinpath("static", "swagger-init.js").read_text(encoding="utf-8")

_SWAGGER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{root}/docs/swagger-init.js"></script>
</body>
</html>
"""

_REDOC = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<redoc spec-url="{openapi}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


@cache
def _asset(name: str) -> bytes:
    return files(ASSET_PACKAGE).joinpath("static", name).read_bytes()


def _asset_route(name: str, media_type: str) -> Callable[[], Awaitable[Response]]:
    """One route per file, with no parameter: nothing in the request picks a file."""

    async def asset() -> Response:
        return Response(
            _asset(name),
            media_type=media_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "public, max-age=31536000, immutable",
            },
        )

    return asset


def install_docs(app: FastAPI) -> None:
    """Serve `/docs`, `/redoc` and their files on `app` (made with docs_url=None, redoc_url=None)."""
    router = APIRouter(include_in_schema=False)

    def page(template: str, request: Request, what: str) -> HTMLResponse:
        root = escape(request.scope.get("root_path", "").rstrip("/"))
        html = template.format(
            title=escape(f"{app.title} · {what}"),
            root=root,
            assets=root + ASSET_PATH,
            openapi=root + escape(app.openapi_url or "/openapi.json"),
        )
        return HTMLResponse(html, headers=_PAGE_HEADERS)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        return page(_SWAGGER, request, "API reference")

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        return page(_REDOC, request, "API reference (ReDoc)")

    @router.get("/docs/swagger-init.js")
    async def swagger_init() -> Response:
        return Response(
            _INIT_SCRIPT,
            media_type="text/javascript; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    for name, media_type in ASSETS.items():
        router.add_api_route(f"{ASSET_PATH}/{name}", _asset_route(name, media_type), methods=["GET"])
    app.include_router(router)
