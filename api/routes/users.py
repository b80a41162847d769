"""Users: an admin creates users and receives each one's API token once; each user manages their tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from api.deps import MAX_INT, TOKENS, AdminUser, CurrentUser, SessionDep
from api.errors import InvalidField, error_responses
from api.models import TokenCreate, TokenCreated, TokenOut, UserCreate, UserCreated
from nas.store import repo
from nas.store.models import utcnow

router = APIRouter(prefix="/api/v1/users", tags=["users"])


@router.post("", status_code=201, response_model=UserCreated, responses=error_responses(401, 403, 409, 422))
def create_user(body: UserCreate, admin: AdminUser, s: SessionDep) -> UserCreated:
    name = body.name.strip()
    if not name or len(name) > 100:
        raise InvalidField(("body", "name"), "must be 1 to 100 characters")
    if repo.user_by_name(s, name):
        raise HTTPException(409, f"user {name!r} already exists")
    user, token = repo.create_user(s, name=name, is_admin=body.is_admin)
    return UserCreated(id=user.id, name=user.name, is_admin=user.is_admin, token=token)


@router.get("/me", responses=error_responses(401))
def me(user: CurrentUser) -> dict:
    return {"id": user.id, "name": user.name, "is_admin": user.is_admin}


@router.post("/me/tokens", status_code=201, response_model=TokenCreated, responses=error_responses(401, 422))
def create_token(body: TokenCreate, user: CurrentUser, s: SessionDep) -> TokenCreated:
    """A new API token for you; the token is shown once (only its hash is kept)."""
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    row, token = repo.create_token(s, user_id=user.id, name=body.name, expires_at=expires)
    return TokenCreated(**TokenOut.of(row).model_dump(), token=token)


@router.get("/me/tokens", response_model=list[TokenOut], responses=error_responses(401))
def list_tokens(user: CurrentUser, s: SessionDep) -> list[TokenOut]:
    """Your live tokens (not revoked), newest first: names, first characters, expiry; never the tokens."""
    return [TokenOut.of(row) for row in repo.list_tokens(s, user.id)]


@router.delete("/me/tokens/{token_id}", status_code=204, responses=error_responses(401, 404, 422))
def revoke_token(token_id: Annotated[int, Path(ge=1, le=MAX_INT)], user: CurrentUser, s: SessionDep) -> Response:
    """Revoke one of your tokens: it stops working at once."""
    if not repo.revoke_token(s, user_id=user.id, token_id=token_id):
        raise HTTPException(404, f"token {token_id} not found")
    TOKENS.forget()
    return Response(status_code=204)
