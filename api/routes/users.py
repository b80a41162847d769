"""Users: an admin creates users and receives each one's API token once."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import AdminUser, CurrentUser, SessionDep
from api.errors import InvalidField, error_responses
from api.models import UserCreate, UserCreated
from nas.store import repo

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
