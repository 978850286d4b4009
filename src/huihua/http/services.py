"""What the routes share: settings, the session manager, accounts, metrics, WeChat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from ..accounts.password_login import PasswordAccounts
from ..accounts.service import Accounts
from ..config import Settings
from ..core.async_manager import AsyncSessionManager
from .context import SessionContext
from .metrics import Metrics
from .middleware import context_of


@dataclass
class Services:
    settings: Settings
    manager: AsyncSessionManager
    accounts: Accounts
    metrics: Metrics
    wechat: Any = None  # huihua.http.wechat_login.ServiceWeChat when configured

    @property
    def passwords(self) -> PasswordAccounts:
        """Password login and account changes, counted in the service's metrics."""
        logins = self.metrics.logins
        return PasswordAccounts(
            self.accounts, self.manager, observe=lambda outcome: logins.labels("password", outcome).inc()
        )


async def services(request: Request) -> Services:  # async: FastAPI runs sync ones in a thread
    found: Services = request.app.state.huihua
    return found


async def session_context(request: Request) -> SessionContext:
    return context_of(request.scope)
