"""Peer (f): the floor. One FastAPI route on huihua's own server stack (uvicorn with the
settings `huihua serve` uses) answering a constant JSON body shaped and sized like huihua's
GET /v1/auth/me answer, touching no session, no store and no middleware."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import JSONResponse

_ISO = "2025-01-01T00:00:00.000000+00:00"
BODY = {
    "user": {"id": "u_AAAAAAAAAAAAAAAA", "username": "bench", "email": None, "phone": None,
             "created_at": _ISO},
    "session": {"id": "AAAAAAAAAAAAAAAAAAAAAA", "client": "miniprogram", "created_at": _ISO,
                "last_seen_at": _ISO, "idle_expires_at": _ISO, "expires_at": _ISO},
}  # fmt: skip

app = FastAPI()


@app.get("/v1/auth/me")
async def me() -> JSONResponse:
    return JSONResponse(BODY)
