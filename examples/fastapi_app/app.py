"""A shop backend that uses huihua for its sessions and accounts.

Run it:  uvicorn app:app --no-proxy-headers   (from this folder; settings from HUIHUA_* as for
`huihua serve`, e.g. HUIHUA_STORE=sqlite:///./shop.db)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from huihua.fastapi import User, current_user, install

ORDERS = {  # the shop's own data, by username; a real shop keeps it in its own database
    "alice": [{"id": "o-1001", "item": "龙井茶 250g", "total_fen": 16800}],
}


class Order(BaseModel):
    id: str
    item: str
    total_fen: int


class Orders(BaseModel):
    user_id: str
    orders: list[Order]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.catalogue = ["龙井茶 250g", "碧螺春 100g"]  # the shop's own start-up: huihua keeps it
    yield


app = FastAPI(title="A shop", lifespan=lifespan)
install(app)  # /v1/accounts, /v1/auth/*, /v1/sessions ... and the session middleware


@app.get("/catalogue")
async def catalogue() -> list[str]:
    """Public: no session needed."""
    return list(app.state.catalogue)


@app.get("/orders", response_model=Orders)
async def orders(user: User = Depends(current_user)) -> Orders:
    """The signed-in user's orders; 401 in huihua's format (the SDK logs in again) otherwise."""
    mine = ORDERS.get(user.username or "", [])
    return Orders(user_id=user.id, orders=[Order.model_validate(o) for o in mine])
