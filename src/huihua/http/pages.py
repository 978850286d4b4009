"""The web pages: sign up, log in, see and revoke your sessions, log out (browser transport)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from starlette.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
_ACCOUNT_PAGE = files(__package__).joinpath("static/account.html").read_text(encoding="utf-8")


@router.get("/")
async def account_page() -> HTMLResponse:
    return HTMLResponse(
        _ACCOUNT_PAGE,
        headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'unsafe-inline'; frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
        },
    )
