"""The web pages: sign up, log in, see and revoke your sessions and linked sign-ins, log out
(browser transport). The script is a file of its own, so the page's CSP allows no inline script."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)
_STATIC = files(__package__).joinpath("static")
_ACCOUNT_PAGE = _STATIC.joinpath("account.html").read_text(encoding="utf-8")
_ACCOUNT_SCRIPT = _STATIC.joinpath("account.js").read_text(encoding="utf-8")


@router.get("/")
async def account_page() -> HTMLResponse:
    return HTMLResponse(
        _ACCOUNT_PAGE,
        headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
            "style-src 'unsafe-inline'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
        },
    )


@router.get("/account.js")
async def account_script() -> Response:
    return Response(
        _ACCOUNT_SCRIPT,
        media_type="text/javascript; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
