"""The sign-in identities linked to my account (WeChat): see them, remove one (ASVS 7.5.1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.responses import JSONResponse, Response

from ..context import SessionContext
from ..schemas import IdentitiesOut, UnlinkIn, errors
from ..services import Services, services, session_context
from .auth import signed_in

router = APIRouter(tags=["accounts"])


@router.get("/v1/auth/identities", response_model=IdentitiesOut, responses=errors(401))
async def my_identities(
    svc: Services = Depends(services), ctx: SessionContext = Depends(session_context)
) -> JSONResponse:
    """The WeChat identities that log in as this account. No openid and no session_key: the
    `id` is a public id of the link, for `DELETE /v1/auth/identities/{id}`."""
    _, user = await signed_in(ctx, svc)
    linked = await svc.accounts.linked_identities(user.id)
    return JSONResponse({"identities": [i.public() for i in linked]})


@router.delete(
    "/v1/auth/identities/{identity_id}", status_code=204, responses=errors(401, 403, 404, 409, 429)
)
async def unlink_identity(
    body: UnlinkIn,
    identity_id: str = Path(max_length=64),
    svc: Services = Depends(services),
    ctx: SessionContext = Depends(session_context),
) -> Response:
    """Remove a linked identity after re-entering the password (throttled like a login). That
    WeChat user logs in as a new, separate account from then on. Every other session of the
    account ends too: sessions do not record which identity opened them, so this is the only
    way to be sure none opened through it survives."""
    session, user = await signed_in(ctx, svc)
    await svc.passwords.unlink_identity(session, user, identity_id, body.password, ip=ctx.ip)
    return Response(status_code=204)
