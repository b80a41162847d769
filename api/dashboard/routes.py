"""Dashboard pages. The browser holds the API token in a signed, HttpOnly session cookie; the
pages' JavaScript calls the same REST API, which accepts that cookie."""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import DB, TOKENS, SessionDep, SettingsDep, owned_search, same_token
from api.errors import log_unavailable
from api.routes.searches import search_result
from nas.export import FORMATS
from nas.rundir import RESULT, job_workdir
from nas.search.strategies import STRATEGIES
from nas.store import repo
from nas.store.models import FINISHED, User, utcnow
from search_spaces import BLOCKS, get_space, list_presets, space_from_dict

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)
SESSION_SECONDS = 14 * 24 * 3600  # a dashboard login lasts two weeks (its token expires with it)


class LoginRequired(Exception):
    """Raised by page dependencies; the app answers with a redirect to /login."""


def page_user(request: Request, db: DB) -> User:
    token = request.session.get("token")
    if token:
        with db.session(readonly=True) as s:
            user = repo.user_for_token(s, token)
        if user is not None:
            return user
    raise LoginRequired()


PageUser = Annotated[User, Depends(page_user)]


def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed plotly package: the dashboard works offline."""
    import plotly

    return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                        media_type="application/javascript")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    files = {"app.js": "application/javascript", "style.css": "text/css"}
    if name not in files:
        raise HTTPException(404, "not found")
    return FileResponse(HERE / "static" / name, media_type=files[name])


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, db: DB, token: Annotated[str, Form()] = "") -> Response:
    with db.session() as s:
        user = repo.user_for_token(s, token.strip()) if token.strip() else None
        if user is not None:  # the cookie carries a session token of its own, never the API token
            _, session_token = repo.create_token(s, user_id=user.id, name="dashboard session",
                                                 expires_at=utcnow() + timedelta(seconds=SESSION_SECONDS))
    if user is None:
        return render(request, "login.html", status_code=401, error="That token is not valid.")
    request.session["token"] = session_token
    request.session["csrf"] = secrets.token_urlsafe(24)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, db: DB, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
    """Revokes the session's token, so a copied cookie stops working too."""
    token = request.session.get("token")
    if token and not same_token(csrf, request.session.get("csrf")):
        raise HTTPException(403, "the logout form's CSRF token is missing or wrong; reload the page")
    if token:
        with db.session() as s:
            found = repo.token_owner(s, token)
            if found:
                repo.revoke_token(s, user_id=found[0].id, token=token)
        TOKENS.forget()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
def searches_page(request: Request, user: PageUser, s: SessionDep, status: str | None = None) -> HTMLResponse:
    rows, total = repo.list_jobs(s, owner=user, status=status or None, kind="search", limit=200)
    return render(request, "searches.html", user=user, searches=rows, total=total, status=status or "")


@router.get("/searches/new", response_class=HTMLResponse)
def new_search_page(request: Request, user: PageUser, s: SessionDep) -> HTMLResponse:
    spaces = [(name, get_space(name).description.strip()) for name in list_presets()]
    return render(request, "new_search.html", user=user, spaces=spaces, tables=repo.latency_tables(s, user),
                  profiles=repo.profiles(s), strategies=STRATEGIES.names())


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(request: Request, search_id: str, user: PageUser, s: SessionDep, settings: SettingsDep) -> HTMLResponse:
    search = owned_search(s, search_id, user)
    result = search_result(settings, search.id) if search.status == "succeeded" else None
    return render(request, "search.html", user=user, search=search, objectives=search.config.get("objectives", []),
                  trust=result.trust if result else None)


@router.get("/searches/{search_id}/candidates/{arch_id}", response_class=HTMLResponse)
def candidate_page(request: Request, search_id: str, arch_id: str, user: PageUser, s: SessionDep,
                   settings: SettingsDep) -> HTMLResponse:
    search = owned_search(s, search_id, user)
    cand = repo.candidate(s, search.id, arch_id)
    if cand is None:
        raise HTTPException(404, f"candidate {arch_id} not found")
    result = job_workdir(settings.data_dir, search.id) / RESULT
    store = settings.artifact_store()
    store.pull(result)
    if search.config.get("hardware"):
        store.pull(search.config["hardware"], refresh=search.status in FINISHED)  # searches may have grown it
    breakdown = latency_breakdown(search, cand, result)
    return render(request, "candidate.html", user=user, search=search, cand=cand, breakdown=breakdown, families=BLOCKS,
                  formats=FORMATS.names())


@functools.lru_cache(maxsize=8)
def _predictor(path: str, mtime: float, result: str, result_mtime: float):
    """One predictor per table file and search space (and version of them): each JSON is parsed once. The
    space is the search's as re-targeted to its dataset (its result.json), or the preset before it ends."""
    from nas.latency import LatencyTable
    from nas.latency.predictor import LatencyPredictor
    from nas.schemas import SearchResult

    space = space_from_dict(SearchResult.model_validate_json(Path(result).read_text()).space)
    return LatencyPredictor(LatencyTable.load(path), space)


def latency_breakdown(search, cand, result: Path) -> list[dict] | None:
    """Each layer's latency from the search's table (None when the search used no table or has not ended)."""
    path = search.config.get("hardware")
    if not path or not Path(path).exists() or not result.exists():
        return None
    from nas.latency import TableError

    try:
        predictor = _predictor(path, Path(path).stat().st_mtime, str(result), result.stat().st_mtime)
        rows = predictor.layer_breakdown(predictor.space.parse(cand.arch))
    except (TableError, ValueError):
        return None
    if any(r["ms"] is None for r in rows):
        return None
    return [{"type": r["layer"]["type"], "channels": f"{r['layer'].get('cin', '')}→{r['layer'].get('cout', '')}",
             "input_size": r["input_size"], "ms": r["ms"]} for r in rows]


@router.get("/hardware", response_class=HTMLResponse)
def hardware_page(request: Request, user: PageUser, s: SessionDep) -> HTMLResponse:
    return render(request, "hardware.html", user=user, tables=repo.latency_tables(s, user), profiles=repo.profiles(s))


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, user: PageUser, s: SessionDep, ids: str = "") -> HTMLResponse:
    rows, _ = repo.list_jobs(s, owner=user, status="succeeded", kind="search", limit=200)
    chosen = [i for i in ids.split(",") if i]
    return render(request, "compare.html", user=user, searches=rows, chosen=chosen)


def session_secret(data_dir: Path, configured: str | None) -> str:
    """NAS_SESSION_SECRET, or a random one kept (owner-only) in the data dir so cookies survive restarts."""
    if configured:
        return configured
    import secrets

    path = data_dir / "session-secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def install(app, data_dir: Path, configured_secret: str | None, secure: bool = False) -> None:
    """Mount the dashboard: pages, the signed session cookie and HTML error pages."""
    from sqlalchemy.exc import OperationalError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.sessions import SessionMiddleware

    app.include_router(router)
    app.add_middleware(SessionMiddleware, secret_key=session_secret(data_dir, configured_secret),
                       session_cookie="nas_session", same_site="lax", https_only=secure, max_age=SESSION_SECONDS)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    def wants_page(request: Request) -> bool:
        return (not request.url.path.startswith(("/api/", "/healthz", "/metrics", "/static/"))
                and "text/html" in request.headers.get("accept", ""))

    json_http, json_busy = app.exception_handlers[StarletteHTTPException], app.exception_handlers[OperationalError]

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if wants_page(request):
            return render(request, "error.html", status_code=exc.status_code, status=exc.status_code,
                          message=str(exc.detail), user=None)
        return await json_http(request, exc)

    @app.exception_handler(OperationalError)
    async def _busy(request: Request, exc: OperationalError):
        if not wants_page(request):
            return await json_busy(request, exc)
        log_unavailable(request, exc)
        return render(request, "error.html", status_code=503, status=503, user=None,
                      message="The database is busy or unreachable; nothing was changed. Go back and try "
                              "again in a moment.")
