"""Request dependencies: the database session and the authenticated user."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from nas.settings import Settings
from nas.store import Database, repo
from nas.store.models import Job, User

MAX_INT = 2**31 - 1  # integer ids and offsets above this are out of range for PostgreSQL's INTEGER: a 422, not a 500
bearer = HTTPBearer(auto_error=False, description="an API token: Authorization: Bearer <token>")


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request, db: Annotated[Database, Depends(get_db)]) -> Iterator[Session]:
    """The request's one transaction. A request that may write starts it as a write (SQLite: BEGIN
    IMMEDIATE), so it waits for the lock instead of failing when a worker wrote after its first read."""
    with db.session(readonly=request.method in ("GET", "HEAD", "OPTIONS")) as s:
        yield s


# scope="function": the transaction commits before the response is sent, so a failed commit is an error
# response (503 when the database is busy), never a 2xx for a write that did not happen
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and secrets.compare_digest(str(given), str(expected))


def token_from(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """A bearer token, or the dashboard's signed session cookie. A cookie authenticates a request that may
    change something only with the session's CSRF token in X-CSRF-Token: another site can make a browser
    send the cookie, but cannot read the token."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return credentials.credentials
    session = request.scope.get("session") or {}
    token = session.get("token")
    if token and request.method not in SAFE_METHODS:
        if not same_token(request.headers.get("x-csrf-token"), session.get("csrf")):
            raise HTTPException(403, "a request made with the dashboard's cookie needs the page's CSRF token "
                                     "(X-CSRF-Token); API clients use 'Authorization: Bearer <token>'")
    return token


class TokenCache:
    """Whose a token is, remembered until `ttl` seconds have passed or the token expires, so that most
    requests make no token query. Revoking a token here forgets every entry at once (another server
    process notices within `ttl`). Entries are plain values; each request gets its own detached User."""

    def __init__(self, ttl: float = 30.0, size: int = 4096):
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[float, int, str, bool]] = {}  # key -> (valid until, id, name, admin)
        self._lock = threading.Lock()

    def user(self, token: str, db: Database) -> User | None:
        key = repo.hash_token(token)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and time.time() < hit[0]:
            return User(id=hit[1], name=hit[2], is_admin=hit[3])
        with db.session(readonly=True) as s:  # a short read of its own: the route's transaction (maybe a write) starts later
            found = repo.token_owner(s, token)
            if found is None:
                return None
            user, row = found
            expires = row.expires_at
        until = time.time() + self.ttl
        if expires is not None:
            until = min(until, repo.aware(expires).timestamp())
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()  # simple and bounded; the next requests refill it
            self._entries[key] = (until, user.id, user.name, user.is_admin)
        return user

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


TOKENS = TokenCache()


def current_user(
    request: Request, db: Annotated[Database, Depends(get_db)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    token = token_from(request, credentials)
    if not token:
        raise HTTPException(401, "missing API token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    user = TOKENS.user(token, db)  # cached: most requests make no query to authenticate
    if user is None:
        raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
    return user


def owned_job(s: Session, job_id: str, user: User, kind: str | None = None) -> Job:
    """The user's job (admins: any), of `kind` if given; someone else's job is indistinguishable from a
    missing one."""
    job = repo.get_job(s, job_id, owner=user, kind=kind)
    if job is None:
        raise HTTPException(404, f"{kind or 'job'} {job_id} not found")
    return job


def owned_search(s: Session, search_id: str, user: User) -> Job:
    return owned_job(s, search_id, user, kind="search")


def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise HTTPException(403, "only an admin can do this")
    return user


def event_cursor(
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INT)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> int:
    """Where an event stream starts: after Last-Event-ID when a client resumes, else after `after`."""
    return last_event_id if last_event_id is not None else after


DB = Annotated[Database, Depends(get_db)]
CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EventCursor = Annotated[int, Depends(event_cursor)]
