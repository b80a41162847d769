"""The FastAPI application: REST API under /api/v1, health and metrics, the dashboard at /."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api.dashboard import routes as dashboard
from api.errors import BodySizeLimit, install_error_handlers, truthful_openapi
from api.routes import datasets, hardware, health, jobs, searches, spaces, users
from api.streams import StreamSlots
from nas import __version__
from nas.settings import Settings
from nas.store import Database, migrate
from workers.dispatcher import Dispatcher


def create_app(settings: Settings, run_workers: bool = True) -> FastAPI:
    """The app; with run_workers, its lifespan also runs the dispatcher (and a local Ray)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    migrate(db.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        dispatcher = None
        if run_workers:
            dispatcher = Dispatcher(db, settings)
            dispatcher.start()
        yield
        if dispatcher:
            dispatcher.stop()
        db.dispose()

    app = FastAPI(title="hybrid-nas", version=__version__, lifespan=lifespan,
                  description="Hardware-aware NAS for hybrid conv / attention / state-space networks.")
    app.state.db, app.state.settings = db, settings
    app.state.streams = StreamSlots(settings.max_streams_per_user)
    install_error_handlers(app)
    truthful_openapi(app)
    for module in (health, users, spaces, jobs, searches, datasets, hardware):
        app.include_router(module.router)
    dashboard.install(app, settings.data_dir, settings.session_secret, settings.secure_cookies)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    return app
