"""The sign-in identities linked to my account (WeChat): see them, remove one (ASVS 7.5.1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from starlette.responses import JSONResponse, Response

from ..context import SessionContext
from ..errors import ApiError
from ..limits import reauthenticate
from ..schemas import IdentitiesOut, UnlinkIn, errors
from ..services import Services, services, session_context
from .auth import signed_in, unlink

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
    if identity_id not in {i.id for i in await svc.accounts.linked_identities(user.id)}:
        raise ApiError(404, "identity_not_found", "no identity linked to your account has this id")
    if user.password_hash is None:
        raise ApiError(
            409,
            "last_sign_in_method",
            "this account has no password: removing its WeChat identity would leave no way to sign in",
        )
    await reauthenticate(svc, ctx, user, body.password)
    if await unlink(svc, user, identity_id):
        await svc.manager.revoke_user(user.id, except_id=session.id, reason="identity_unlinked")
    return Response(status_code=204)
