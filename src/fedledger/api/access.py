"""Access control for the API routes: every data route depends on :func:`require_reader`.

A request carries ``Authorization: Bearer <token>``: a member's session token (from sign-in) or the auditor token.
No token, or one this server does not know (expired, signed out, made up): 401. A member whose membership was
revoked since sign-in: 403. Nothing is read from the ledger for a refused request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fedledger.api.auth import AuditorToken, Identity, NonceBook, Sessions
from fedledger.api.view import LedgerView

__all__ = ["ApiState", "Reader", "api_state", "bearer_token", "require_reader"]

_bearer = HTTPBearer(auto_error=False, description="A member's session token (sign-in) or the auditor token.")


@dataclass
class ApiState:
    """What the routes share: the ledger view, sign-in nonces, sessions and the auditor token (if configured)."""

    view: LedgerView
    nonces: NonceBook
    sessions: Sessions
    auditor: AuditorToken | None


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.fedledger
    return state


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The request's bearer token; 401 without one."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise _unauthorized("sign in: send Authorization: Bearer <session or auditor token>")
    return credentials.credentials


def require_reader(
    token: Annotated[str, Depends(bearer_token)], state: Annotated[ApiState, Depends(api_state)]
) -> Identity:
    """Who the request reads as; 401 for an unknown token, 403 for a member no longer active."""
    if state.auditor is not None and state.auditor.matches(token):
        return Identity("auditor", None, None)
    identity = state.sessions.get(token)
    if identity is None or identity.address is None:
        raise _unauthorized("unknown or expired token: sign in again")
    if not state.view.is_active_member(identity.address):
        state.sessions.close(token)
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"{identity.address} is no longer an active member")
    return identity


Reader = Annotated[Identity, Depends(require_reader)]
